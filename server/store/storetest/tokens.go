package storetest

import (
	"bytes"
	"crypto/sha512"
	"testing"
	"time"

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

	t.Run("Rotate", func(t *testing.T) {
		s, bob := setup(t)
		old := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, old)

		now := base.Add(time.Hour)
		next := newToken("t2", "", "", now) // the store fills in user and family
		got, err := s.RotateRefreshToken(t.Context(), old.Hash, next, now)
		checkErr(t, "RotateRefreshToken", err, nil)
		if got.ID != old.ID || got.UserID != old.UserID || got.FamilyID != old.FamilyID || !bytes.Equal(got.Hash, old.Hash) {
			t.Errorf("RotateRefreshToken returned %+v, want the old token %+v", got, old)
		}

		wantOld := old
		wantOld.UsedAt = now
		checkToken(t, "rotated token", mustToken(t, s, old), wantOld)
		wantNext := next
		wantNext.UserID, wantNext.FamilyID = old.UserID, old.FamilyID
		checkToken(t, "successor", mustToken(t, s, next), wantNext)
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)

		// The successor rotates in turn.
		third := newToken("t3", "", "", now.Add(time.Hour))
		_, err = s.RotateRefreshToken(t.Context(), next.Hash, third, now.Add(time.Hour))
		checkErr(t, "RotateRefreshToken(successor)", err, nil)
		if got := mustToken(t, s, third); got.FamilyID != old.FamilyID || got.UserID != old.UserID {
			t.Errorf("third token: family %q user %q, want %q %q", got.FamilyID, got.UserID, old.FamilyID, old.UserID)
		}
	})

	t.Run("Reuse", func(t *testing.T) {
		s, bob := setup(t)
		t1 := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, t1)
		other := newToken("o1", "u-ada", "f-other", base) // ada's sign-in on another device
		mustCreateToken(t, s, other)
		t2 := newToken("t2", "", "", base.Add(time.Hour))
		t3 := newToken("t3", "", "", base.Add(2*time.Hour))
		_, err := s.RotateRefreshToken(t.Context(), t1.Hash, t2, t2.CreatedAt)
		checkErr(t, "rotate t1", err, nil)
		_, err = s.RotateRefreshToken(t.Context(), t2.Hash, t3, t3.CreatedAt)
		checkErr(t, "rotate t2", err, nil)

		// t1 is presented again: someone kept a copy.
		now := base.Add(3 * time.Hour)
		t4 := newToken("t4", "", "", now)
		_, err = s.RotateRefreshToken(t.Context(), t1.Hash, t4, now)
		checkErr(t, "rotate t1 again", err, store.ErrTokenReused)

		for _, rt := range []store.RefreshToken{t1, t2, t3} {
			if got := mustToken(t, s, rt); !got.RevokedAt.Equal(now) {
				t.Errorf("%s after reuse: RevokedAt %v, want %v", rt.ID, got.RevokedAt, now)
			}
		}
		_, err = s.RefreshToken(t.Context(), t4.Hash)
		checkErr(t, "token offered on reuse", err, store.ErrNotFound)
		checkToken(t, "ada's other family", mustToken(t, s, other), other)
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)

		// The live end of the chain is dead too.
		_, err = s.RotateRefreshToken(t.Context(), t3.Hash, t4, now.Add(time.Second))
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
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, _ := setup(t)
				old := newToken("t1", "u-ada", "f1", base)
				tt.setup(&old)
				mustCreateToken(t, s, old)
				next := newToken("t2", "", "", now)
				_, err := s.RotateRefreshToken(t.Context(), old.Hash, next, now)
				checkErr(t, "RotateRefreshToken", err, store.ErrTokenInvalid)
				checkToken(t, "refused token", mustToken(t, s, old), old)
				_, err = s.RefreshToken(t.Context(), next.Hash)
				checkErr(t, "successor of a refused rotation", err, store.ErrNotFound)
			})
		}
	})

	t.Run("RotateUnknown", func(t *testing.T) {
		s, _ := setup(t)
		next := newToken("t2", "", "", base)
		_, err := s.RotateRefreshToken(t.Context(), hash("unknown"), next, base)
		checkErr(t, "RotateRefreshToken(unknown)", err, store.ErrNotFound)
		_, err = s.RefreshToken(t.Context(), next.Hash)
		checkErr(t, "successor of an unknown token", err, store.ErrNotFound)
	})

	t.Run("Revoke", func(t *testing.T) {
		s, bob := setup(t)
		t1 := newToken("t1", "u-ada", "f1", base)
		mustCreateToken(t, s, t1)
		other := newToken("o1", "u-ada", "f-other", base)
		mustCreateToken(t, s, other)
		t2 := newToken("t2", "", "", base.Add(time.Minute))
		_, err := s.RotateRefreshToken(t.Context(), t1.Hash, t2, t2.CreatedAt)
		checkErr(t, "rotate t1", err, nil)

		now := base.Add(time.Hour)
		got, err := s.RevokeRefreshToken(t.Context(), t2.Hash, now)
		checkErr(t, "RevokeRefreshToken", err, nil)
		if got.ID != t2.ID || got.UserID != t1.UserID || got.FamilyID != t1.FamilyID {
			t.Errorf("RevokeRefreshToken returned %+v, want token t2 of %s in %s", got, t1.UserID, t1.FamilyID)
		}
		for _, rt := range []store.RefreshToken{t1, t2} {
			if got := mustToken(t, s, rt); !got.RevokedAt.Equal(now) {
				t.Errorf("%s after revoke: RevokedAt %v, want %v", rt.ID, got.RevokedAt, now)
			}
		}
		checkToken(t, "ada's other family", mustToken(t, s, other), other)
		checkToken(t, "other user's token", mustToken(t, s, bob), bob)

		_, err = s.RotateRefreshToken(t.Context(), t2.Hash, newToken("t3", "", "", now), now.Add(time.Second))
		checkErr(t, "rotate a revoked token", err, store.ErrTokenInvalid)

		// Revoking again is fine and keeps the first revocation time.
		_, err = s.RevokeRefreshToken(t.Context(), t2.Hash, now.Add(time.Hour))
		checkErr(t, "RevokeRefreshToken again", err, nil)
		if got := mustToken(t, s, t2); !got.RevokedAt.Equal(now) {
			t.Errorf("RevokedAt after a second revoke = %v, want the first one %v", got.RevokedAt, now)
		}

		_, err = s.RevokeRefreshToken(t.Context(), hash("unknown"), now)
		checkErr(t, "RevokeRefreshToken(unknown)", err, store.ErrNotFound)
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		s, bob := setup(t)
		cutoff := base.Add(24 * time.Hour)
		tokens := []struct {
			rt          store.RefreshToken
			wantDeleted bool
		}{
			{newToken("t1", "u-ada", "f1", base), false}, // expires in 30 days
			{store.RefreshToken{ID: "t2", Hash: hash("t2"), UserID: "u-ada", FamilyID: "f2", CreatedAt: base, ExpiresAt: cutoff.Add(-time.Microsecond)}, true},
			{store.RefreshToken{ID: "t3", Hash: hash("t3"), UserID: "u-ada", FamilyID: "f3", CreatedAt: base, ExpiresAt: cutoff}, false},
			{store.RefreshToken{ID: "t4", Hash: hash("t4"), UserID: "u-bob", FamilyID: "f4", CreatedAt: base, ExpiresAt: base.Add(time.Hour), UsedAt: base.Add(time.Minute)}, true},
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
