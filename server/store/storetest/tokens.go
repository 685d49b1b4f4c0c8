package storetest

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
)

func testRefreshTokens(t *testing.T, newStore func(t *testing.T) store.Store) {
	// setup returns a store with user u-ada and bob's token b1 in another
	// family, which no operation on ada's tokens may touch.
	setup := func(t *testing.T) (store.Store, store.RefreshToken) {
		s := newStore(t)
		mustCreateUser(t, s, "u-ada", "ada")
		mustCreateUser(t, s, "u-bob", "bob")
		bob := newToken("b1", "u-bob", "fb", base)
		mustCreateToken(t, s, bob)
		return s, bob
	}

	t.Run("CreateAndGet", func(t *testing.T) {
		s, _ := setup(t)
		tests := []store.RefreshToken{
			newToken("t1", "u-ada", "f1", base),
			{
				ID: "t2", Hash: hash("t2"), UserID: "u-ada", FamilyID: "f1",
				Kind: refresh.KindPhone, AMR: "qr",
				AuthTime:  base.Add(-time.Hour),
				CreatedAt: base.In(time.FixedZone("UTC+1", 3600)),
				ExpiresAt: base.Add(time.Hour + time.Microsecond),
				UsedAt:    base.Add(time.Minute),
				RevokedAt: base.Add(2 * time.Minute),
			},
		}
		for _, rt := range tests {
			mustCreateToken(t, s, rt)
			checkToken(t, "RefreshToken", mustToken(t, s, rt), rt)
		}
		_, err := s.RefreshToken(t.Context(), hash("unknown"))
		checkErr(t, "RefreshToken(unknown)", err, store.ErrNotFound)
	})

	t.Run("DuplicateHash", func(t *testing.T) {
		s, _ := setup(t)
		first := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, first)
		dup := newToken("t2", "u-ada", "f2", base)
		dup.Hash = first.Hash
		checkErr(t, "CreateRefreshToken with a taken hash", s.CreateRefreshToken(t.Context(), dup), store.ErrConflict)
		checkToken(t, "first token", mustToken(t, s, first), first)
	})

	// policy is the rules the server runs inside UpdateRefreshToken.
	policy := refresh.Policy{TTL: 30 * 24 * time.Hour, MaxAge: 90 * 24 * time.Hour}
	// rotate runs policy.Rotate on the token with hash at now, offering a
	// successor with id.
	rotate := func(s store.Store, h []byte, id string, now time.Time) (store.RefreshToken, error) {
		return s.UpdateRefreshToken(t.Context(), h, func(rt *store.RefreshToken) (*store.RefreshToken, error) {
			next, err := policy.Rotate(rt, "", id, hash("refresh-"+id), now)
			return &next, err
		})
	}
	revoke := func(s store.Store, h []byte, now time.Time) (store.RefreshToken, error) {
		return s.UpdateRefreshToken(t.Context(), h, func(rt *store.RefreshToken) (*store.RefreshToken, error) {
			refresh.Revoke(rt, now)
			return nil, nil
		})
	}

	t.Run("Rotate", func(t *testing.T) {
		s, bob := setup(t)
		old := newToken("t1", "u-ada", "f1", base)
		old.AMR = "qr"
		mustCreateToken(t, s, old)

		now := base.Add(time.Hour)
		got, err := rotate(s, old.Hash, "t2", now)
		checkErr(t, "rotate", err, nil)
		wantOld := old
		wantOld.UsedAt = now
		checkToken(t, "UpdateRefreshToken's answer", got, wantOld)
		checkToken(t, "rotated token", mustToken(t, s, old), wantOld)
		// The successor keeps the family's user, kind, method and first
		// sign-in.
		wantNext := newToken("t2", old.UserID, old.FamilyID, now)
		wantNext.AMR, wantNext.AuthTime = "qr", base
		checkToken(t, "successor", mustToken(t, s, wantNext), wantNext)
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)

		// The successor rotates in turn.
		_, err = rotate(s, wantNext.Hash, "t3", now.Add(time.Hour))
		checkErr(t, "rotate successor", err, nil)
		third := mustToken(t, s, newToken("t3", "", "", now))
		if third.FamilyID != old.FamilyID || third.UserID != old.UserID || third.AMR != "qr" || !third.AuthTime.Equal(base) {
			t.Errorf("third token = %+v, want family %q of %q, amr qr, auth time %v", third, old.FamilyID, old.UserID, base)
		}
	})

	t.Run("Reuse", func(t *testing.T) {
		s, bob := setup(t)
		t1 := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, t1)
		other := newToken("o1", "u-ada", "f-other", base) // ada's sign-in on another device
		mustCreateToken(t, s, other)
		_, err := rotate(s, t1.Hash, "t2", base.Add(time.Hour))
		checkErr(t, "rotate t1", err, nil)
		_, err = rotate(s, hash("refresh-t2"), "t3", base.Add(2*time.Hour))
		checkErr(t, "rotate t2", err, nil)

		// t1 is presented again: someone kept a copy. The answer carries
		// the token (its user, for the log) as revoked.
		now := base.Add(3 * time.Hour)
		got, err := rotate(s, t1.Hash, "t4", now)
		checkErr(t, "rotate t1 again", err, store.ErrTokenReused)
		if got.ID != "t1" || got.UserID != "u-ada" || !got.RevokedAt.Equal(now) {
			t.Errorf("UpdateRefreshToken on reuse returned %+v, want t1 of u-ada revoked at %v", got, now)
		}
		for _, id := range []string{"t1", "t2", "t3"} {
			if got := mustToken(t, s, newToken(id, "", "", base)); !got.RevokedAt.Equal(now) {
				t.Errorf("%s after reuse: RevokedAt %v, want %v", id, got.RevokedAt, now)
			}
		}
		_, err = s.RefreshToken(t.Context(), hash("refresh-t4"))
		checkErr(t, "token offered on reuse", err, store.ErrNotFound)
		checkToken(t, "ada's other family", mustToken(t, s, other), other)
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)

		// The live end of the chain is dead too.
		_, err = rotate(s, hash("refresh-t3"), "t4", now.Add(time.Second))
		checkErr(t, "rotate t3 after reuse", err, store.ErrTokenInvalid)
	})

	t.Run("Invalid", func(t *testing.T) {
		now := base.Add(time.Hour)
		tests := []struct {
			name  string
			setup func(*store.RefreshToken)
		}{
			{"revoked", func(rt *store.RefreshToken) { rt.RevokedAt = base.Add(time.Minute) }},
			{"expired", func(rt *store.RefreshToken) { rt.ExpiresAt = now.Add(-time.Second) }},
			// Like a login session, a token is live strictly before ExpiresAt.
			{"expires now", func(rt *store.RefreshToken) { rt.ExpiresAt = now }},
			{"chain past max age", func(rt *store.RefreshToken) { rt.AuthTime = now.Add(-policy.MaxAge) }},
			{"phone cookie", func(rt *store.RefreshToken) { rt.Kind = refresh.KindPhone }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, _ := setup(t)
				old := newToken("t1", "u-ada", "f1", base)
				tt.setup(&old)
				mustCreateToken(t, s, old)
				got, err := rotate(s, old.Hash, "t2", now)
				checkErr(t, "rotate", err, store.ErrTokenInvalid)
				checkToken(t, "UpdateRefreshToken's answer", got, old)
				checkToken(t, "refused token", mustToken(t, s, old), old)
				_, err = s.RefreshToken(t.Context(), hash("refresh-t2"))
				checkErr(t, "successor of a refused rotation", err, store.ErrNotFound)
			})
		}
	})

	// An error from fn other than reuse saves nothing, not even changes
	// fn made before failing.
	t.Run("UpdateAborts", func(t *testing.T) {
		s, _ := setup(t)
		t1 := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, t1)
		errStop := errors.New("stop")
		got, err := s.UpdateRefreshToken(t.Context(), t1.Hash, func(rt *store.RefreshToken) (*store.RefreshToken, error) {
			rt.UsedAt, rt.RevokedAt = base.Add(time.Minute), base.Add(time.Minute)
			next := newToken("t2", rt.UserID, rt.FamilyID, base)
			return &next, errStop
		})
		checkSame(t, "UpdateRefreshToken", err, errStop)
		checkToken(t, "answer", got, t1)
		checkToken(t, "token", mustToken(t, s, t1), t1)
		_, err = s.RefreshToken(t.Context(), hash("refresh-t2"))
		checkErr(t, "successor of an aborted update", err, store.ErrNotFound)
	})

	t.Run("UpdateUnknown", func(t *testing.T) {
		s, _ := setup(t)
		called := false
		_, err := s.UpdateRefreshToken(t.Context(), hash("unknown"), func(*store.RefreshToken) (*store.RefreshToken, error) {
			called = true
			return nil, nil
		})
		checkErr(t, "UpdateRefreshToken(unknown)", err, store.ErrNotFound)
		if called {
			t.Error("fn was called for an unknown token")
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		s, bob := setup(t)
		t1 := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, t1)
		other := newToken("o1", "u-ada", "f-other", base)
		mustCreateToken(t, s, other)
		_, err := rotate(s, t1.Hash, "t2", base.Add(time.Minute))
		checkErr(t, "rotate t1", err, nil)

		now := base.Add(time.Hour)
		got, err := revoke(s, hash("refresh-t2"), now)
		checkErr(t, "revoke", err, nil)
		if got.ID != "t2" || got.UserID != t1.UserID || got.FamilyID != t1.FamilyID || !got.RevokedAt.Equal(now) {
			t.Errorf("revoke returned %+v, want token t2 of %s in %s revoked at %v", got, t1.UserID, t1.FamilyID, now)
		}
		for _, id := range []string{"t1", "t2"} {
			if got := mustToken(t, s, newToken(id, "", "", base)); !got.RevokedAt.Equal(now) {
				t.Errorf("%s after revoke: RevokedAt %v, want %v", id, got.RevokedAt, now)
			}
		}
		checkToken(t, "ada's other family", mustToken(t, s, other), other)
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)

		_, err = rotate(s, hash("refresh-t2"), "t3", now.Add(time.Second))
		checkErr(t, "rotate a revoked token", err, store.ErrTokenInvalid)

		// Revoking again is fine and keeps the first revocation time.
		_, err = revoke(s, hash("refresh-t2"), now.Add(time.Hour))
		checkErr(t, "revoke again", err, nil)
		if got := mustToken(t, s, newToken("t2", "", "", base)); !got.RevokedAt.Equal(now) {
			t.Errorf("RevokedAt after a second revoke = %v, want the first one %v", got.RevokedAt, now)
		}
	})

	t.Run("Kinds", func(t *testing.T) {
		s, _ := setup(t)
		phone := newToken("p1", "u-ada", "fp", base)
		phone.Kind = refresh.KindPhone
		mustCreateToken(t, s, phone)
		checkToken(t, "phone cookie", mustToken(t, s, phone), phone)
		if err := policy.Live(mustToken(t, s, phone), refresh.KindPhone, base); err != nil {
			t.Errorf("phone cookie not live as a phone cookie: %v", err)
		}
	})

	t.Run("RevokeUserTokens", func(t *testing.T) {
		s, bob := setup(t)
		t1 := newToken("t1", "u-ada", "f1", base)
		phone := newToken("p1", "u-ada", "fp", base)
		phone.Kind = refresh.KindPhone
		for _, rt := range []store.RefreshToken{t1, phone} {
			mustCreateToken(t, s, rt)
		}
		// Sub-microsecond digits are dropped: both backends keep
		// microseconds.
		now := base.Add(time.Hour + 123456789*time.Nanosecond)
		checkErr(t, "RevokeUserTokens", s.RevokeUserTokens(t.Context(), "u-ada", now), nil)
		u, err := s.User(t.Context(), "u-ada")
		checkErr(t, "User", err, nil)
		if want := now.Truncate(time.Microsecond); !u.TokensValidAfter.Equal(want) {
			t.Errorf("TokensValidAfter = %v, want %v", u.TokensValidAfter, want)
		}
		for _, rt := range []store.RefreshToken{t1, phone} {
			if got := mustToken(t, s, rt); got.RevokedAt.IsZero() {
				t.Errorf("%s not revoked", rt.ID)
			}
		}
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)
		if b, _ := s.User(t.Context(), "u-bob"); !b.TokensValidAfter.IsZero() {
			t.Errorf("bob's TokensValidAfter = %v, want zero", b.TokensValidAfter)
		}

		// It never moves back (two servers, one clock behind).
		checkErr(t, "RevokeUserTokens earlier", s.RevokeUserTokens(t.Context(), "u-ada", base), nil)
		if u, _ := s.User(t.Context(), "u-ada"); !u.TokensValidAfter.Equal(now.Truncate(time.Microsecond)) {
			t.Errorf("TokensValidAfter after an earlier revocation = %v, want %v", u.TokensValidAfter, now)
		}
		checkErr(t, "RevokeUserTokens(nobody)", s.RevokeUserTokens(t.Context(), "nobody", now), store.ErrNotFound)
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		expiring := func(id, user string, exp time.Time) store.RefreshToken {
			rt := newToken(id, user, "f-"+id, base)
			rt.ExpiresAt = exp
			return rt
		}
		s, bob := setup(t)
		cutoff := base.Add(24 * time.Hour)
		tokens := []struct {
			rt          store.RefreshToken
			wantDeleted bool
		}{
			{newToken("t1", "u-ada", "f1", base), false}, // expires in 30 days
			{expiring("t2", "u-ada", cutoff.Add(-time.Microsecond)), true},
			{expiring("t3", "u-ada", cutoff), false},
			{expiring("t4", "u-bob", base.Add(time.Hour)), true},
		}
		for _, tt := range tokens {
			mustCreateToken(t, s, tt.rt)
		}
		n, err := s.DeleteExpiredRefreshTokens(t.Context(), cutoff)
		checkErr(t, "DeleteExpiredRefreshTokens", err, nil)
		if n != 2 {
			t.Errorf("DeleteExpiredRefreshTokens removed %d tokens, want 2", n)
		}
		for _, tt := range tokens {
			_, err := s.RefreshToken(t.Context(), tt.rt.Hash)
			if tt.wantDeleted {
				checkErr(t, tt.rt.ID+" after delete", err, store.ErrNotFound)
			} else {
				checkErr(t, tt.rt.ID+" after delete", err, nil)
			}
		}
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)
	})
}

func testSigningKeys(t *testing.T, newStore func(t *testing.T) store.Store) {
	key := func(id string, created time.Time) store.SigningKey {
		pk := sha512.Sum512([]byte(id)) // 64 bytes, like an ed25519.PrivateKey
		return store.SigningKey{ID: id, PrivateKey: pk[:], CreatedAt: created}
	}

	t.Run("CreateAndList", func(t *testing.T) {
		s := newStore(t)
		ks, err := s.SigningKeys(t.Context())
		checkErr(t, "SigningKeys on an empty store", err, nil)
		if len(ks) != 0 {
			t.Errorf("SigningKeys on an empty store returned %d keys", len(ks))
		}

		middle := key("k-middle", base)
		newest := key("k-newest", base.Add(24*time.Hour))
		oldest := key("k-oldest", base.Add(-24*time.Hour))
		for _, k := range []store.SigningKey{middle, newest, oldest} {
			checkErr(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k), nil)
		}
		ks, err = s.SigningKeys(t.Context())
		checkErr(t, "SigningKeys", err, nil)
		want := []store.SigningKey{newest, middle, oldest}
		if len(ks) != len(want) {
			t.Fatalf("SigningKeys returned %d keys, want %d", len(ks), len(want))
		}
		for i := range ks {
			checkUTC(t, "SigningKeys", ks[i].CreatedAt)
			if g, w := normKey(ks[i]), normKey(want[i]); g.ID != w.ID || !bytes.Equal(g.PrivateKey, w.PrivateKey) || g.CreatedAt != w.CreatedAt {
				t.Errorf("SigningKeys[%d] = %+v, want %+v", i, g, w)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		k1, k2 := key("k1", base), key("k2", base.Add(time.Hour))
		for _, k := range []store.SigningKey{k1, k2} {
			checkErr(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k), nil)
		}
		checkErr(t, "DeleteSigningKey", s.DeleteSigningKey(t.Context(), "k1"), nil)
		ks, err := s.SigningKeys(t.Context())
		checkErr(t, "SigningKeys", err, nil)
		if len(ks) != 1 || ks[0].ID != "k2" {
			t.Errorf("SigningKeys after deleting k1 = %+v, want only k2", ks)
		}
		checkErr(t, "DeleteSigningKey again", s.DeleteSigningKey(t.Context(), "k1"), store.ErrNotFound)
	})

	t.Run("Duplicate", func(t *testing.T) {
		s := newStore(t)
		k := key("k1", base)
		checkErr(t, "CreateSigningKey", s.CreateSigningKey(t.Context(), k), nil)
		dup := key("k1", base.Add(time.Hour))
		checkErr(t, "CreateSigningKey with a taken id", s.CreateSigningKey(t.Context(), dup), store.ErrConflict)
		ks, err := s.SigningKeys(t.Context())
		checkErr(t, "SigningKeys", err, nil)
		if len(ks) != 1 || !ks[0].CreatedAt.Equal(k.CreatedAt) {
			t.Errorf("SigningKeys after a refused duplicate = %+v, want only the first key", ks)
		}
	})
}
