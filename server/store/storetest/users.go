package storetest

import (
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

func testUsers(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		s := newStore(t)
		want := store.User{
			ID:           "u-ada",
			Username:     "ada",
			DisplayName:  "Ada Lovelace",
			PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
			// Not UTC: the store must hand it back in UTC.
			CreatedAt: base.In(time.FixedZone("UTC+5:30", 5*3600+1800)),
		}
		checkErr(t, "CreateUser", s.CreateUser(t.Context(), want), nil)

		got, err := s.User(t.Context(), want.ID)
		checkErr(t, "User", err, nil)
		checkUser(t, "User", got, want)

		got, err = s.UserByUsername(t.Context(), want.Username)
		checkErr(t, "UserByUsername", err, nil)
		checkUser(t, "UserByUsername", got, want)
	})

	t.Run("DuplicateUsername", func(t *testing.T) {
		s := newStore(t)
		mustCreateUser(t, s, "u1", "ada")
		err := s.CreateUser(t.Context(), store.User{ID: "u2", Username: "ada", DisplayName: "Other", PasswordHash: "x", CreatedAt: base})
		checkErr(t, "CreateUser with a taken username", err, store.ErrConflict)
		n, err := s.CountUsers(t.Context())
		checkErr(t, "CountUsers", err, nil)
		if n != 1 {
			t.Errorf("CountUsers = %d after a refused duplicate, want 1", n)
		}
	})

	t.Run("UsernameIsCaseSensitive", func(t *testing.T) {
		s := newStore(t)
		mustCreateUser(t, s, "u1", "ada")
		_, err := s.UserByUsername(t.Context(), "Ada")
		checkErr(t, "UserByUsername(Ada)", err, store.ErrNotFound)
		mustCreateUser(t, s, "u2", "Ada")
		got, err := s.UserByUsername(t.Context(), "Ada")
		checkErr(t, "UserByUsername(Ada)", err, nil)
		if got.ID != "u2" {
			t.Errorf("UserByUsername(Ada).ID = %q, want u2", got.ID)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		mustCreateUser(t, s, "u1", "ada")
		_, err := s.User(t.Context(), "nobody")
		checkErr(t, "User(nobody)", err, store.ErrNotFound)
		_, err = s.UserByUsername(t.Context(), "nobody")
		checkErr(t, "UserByUsername(nobody)", err, store.ErrNotFound)
	})

	t.Run("ListAndCount", func(t *testing.T) {
		s := newStore(t)
		us, err := s.Users(t.Context())
		checkErr(t, "Users on an empty store", err, nil)
		if len(us) != 0 {
			t.Errorf("Users on an empty store = %v, want none", us)
		}
		n, err := s.CountUsers(t.Context())
		checkErr(t, "CountUsers on an empty store", err, nil)
		if n != 0 {
			t.Errorf("CountUsers on an empty store = %d, want 0", n)
		}

		// Created out of order; listed by username.
		var want []store.User
		for _, name := range []string{"carol", "alice", "dave", "bob"} {
			mustCreateUser(t, s, "id-"+name, name)
		}
		for _, name := range []string{"alice", "bob", "carol", "dave"} {
			u, err := s.UserByUsername(t.Context(), name)
			checkErr(t, "UserByUsername", err, nil)
			want = append(want, u)
		}
		us, err = s.Users(t.Context())
		checkErr(t, "Users", err, nil)
		if len(us) != len(want) {
			t.Fatalf("Users returned %d users, want %d", len(us), len(want))
		}
		for i := range us {
			checkUser(t, "Users["+ordinal(i)+"]", us[i], want[i])
		}
		n, err = s.CountUsers(t.Context())
		checkErr(t, "CountUsers", err, nil)
		if n != 4 {
			t.Errorf("CountUsers = %d, want 4", n)
		}
	})

	t.Run("SetPassword", func(t *testing.T) {
		s := newStore(t)
		ada := mustCreateUser(t, s, "u1", "ada")
		bob := mustCreateUser(t, s, "u2", "bob")
		adaTokens := []store.RefreshToken{
			newToken("a1", ada.ID, "fa1", base),
			newToken("a2", ada.ID, "fa2", base.Add(time.Minute)),
		}
		bobToken := newToken("b1", bob.ID, "fb1", base)
		for _, rt := range append(adaTokens, bobToken) {
			mustCreateToken(t, s, rt)
		}

		now := base.Add(time.Hour)
		checkErr(t, "SetPassword", s.SetPassword(t.Context(), ada.ID, "new-hash", now), nil)

		got, err := s.User(t.Context(), ada.ID)
		checkErr(t, "User", err, nil)
		want := ada
		want.PasswordHash, want.TokensValidAfter = "new-hash", now
		checkUser(t, "User after SetPassword", got, want)
		for _, rt := range adaTokens {
			want := rt
			want.RevokedAt = now
			checkToken(t, "ada's token after SetPassword", mustToken(t, s, rt), want)
		}
		checkToken(t, "bob's token after ada's SetPassword", mustToken(t, s, bobToken), bobToken)
		got, err = s.User(t.Context(), bob.ID)
		checkErr(t, "User", err, nil)
		checkUser(t, "bob after ada's SetPassword", got, bob)
	})

	t.Run("SetPasswordUnknownUser", func(t *testing.T) {
		s := newStore(t)
		err := s.SetPassword(t.Context(), "nobody", "hash", base)
		checkErr(t, "SetPassword(nobody)", err, store.ErrNotFound)
	})

	t.Run("CatchUpUser", func(t *testing.T) {
		s := newStore(t)
		ada := mustCreateUser(t, s, "u1", "ada")
		bob := mustCreateUser(t, s, "u2", "bob")
		d, rt := newDevice("a", ada.ID, base)
		mustCreateDevice(t, s, d, rt)
		bobToken := newToken("b1", bob.ID, "fb1", base)
		mustCreateToken(t, s, bobToken)

		// A password changed in the store moved from: the new hash and
		// the later sign-out, ending ada's sign-ins for that reason.
		now := base.Add(time.Hour)
		src := ada
		src.PasswordHash, src.TokensValidAfter = "new-hash", now
		changed, err := s.CatchUpUser(t.Context(), src)
		checkErr(t, "CatchUpUser", err, nil)
		if !changed {
			t.Error("CatchUpUser of a changed password reported no change")
		}
		got, err := s.User(t.Context(), ada.ID)
		checkErr(t, "User", err, nil)
		checkUser(t, "User after CatchUpUser", got, src)
		if got := mustToken(t, s, rt); !got.RevokedAt.Equal(now) {
			t.Errorf("ada's token after CatchUpUser: revoked %v, want %v", got.RevokedAt, now)
		}
		if got := mustDevice(t, s, "a"); !got.EndedAt.Equal(now) || got.EndReason != api.ReasonPasswordChanged {
			t.Errorf("ada's device after CatchUpUser: ended %v for %q, want %v for %q", got.EndedAt, got.EndReason, now, api.ReasonPasswordChanged)
		}
		checkToken(t, "bob's token after ada's CatchUpUser", mustToken(t, s, bobToken), bobToken)

		changed, err = s.CatchUpUser(t.Context(), src)
		checkErr(t, "CatchUpUser again", err, nil)
		if changed {
			t.Error("CatchUpUser of the same user reported a change")
		}

		// A new display name, and a sign-out that is older: the name is
		// taken, the sign-out never moves back.
		older := src
		older.DisplayName, older.TokensValidAfter = "Ada King", base
		changed, err = s.CatchUpUser(t.Context(), older)
		checkErr(t, "CatchUpUser with a new name", err, nil)
		if !changed {
			t.Error("CatchUpUser of a new display name reported no change")
		}
		want := src
		want.DisplayName = "Ada King"
		got, err = s.User(t.Context(), ada.ID)
		checkErr(t, "User", err, nil)
		checkUser(t, "User after a new display name", got, want)

		// Another password without a later sign-out was changed here: an
		// older password must not come back.
		stale := want
		stale.PasswordHash, stale.TokensValidAfter = "old-hash", base.Add(time.Minute)
		_, err = s.CatchUpUser(t.Context(), stale)
		checkErr(t, "CatchUpUser with an older password", err, store.ErrConflict)
		renamed := want
		renamed.Username = "ada2"
		_, err = s.CatchUpUser(t.Context(), renamed)
		checkErr(t, "CatchUpUser under another username", err, store.ErrConflict)
		got, err = s.User(t.Context(), ada.ID)
		checkErr(t, "User", err, nil)
		checkUser(t, "User after refused catch-ups", got, want)

		nobody := want
		nobody.ID = "nobody"
		_, err = s.CatchUpUser(t.Context(), nobody)
		checkErr(t, "CatchUpUser(nobody)", err, store.ErrNotFound)
	})

	t.Run("DeleteUser", func(t *testing.T) {
		s := newStore(t)
		ada := mustCreateUser(t, s, "u1", "ada")
		bob := mustCreateUser(t, s, "u2", "bob")
		adaToken := newToken("a1", ada.ID, "fa1", base)
		bobToken := newToken("b1", bob.ID, "fb1", base)
		mustCreateToken(t, s, adaToken)
		mustCreateToken(t, s, bobToken)

		checkErr(t, "DeleteUser", s.DeleteUser(t.Context(), ada.ID), nil)

		_, err := s.User(t.Context(), ada.ID)
		checkErr(t, "User after DeleteUser", err, store.ErrNotFound)
		_, err = s.UserByUsername(t.Context(), ada.Username)
		checkErr(t, "UserByUsername after DeleteUser", err, store.ErrNotFound)
		_, err = s.RefreshToken(t.Context(), adaToken.Hash)
		checkErr(t, "deleted user's RefreshToken", err, store.ErrNotFound)
		checkToken(t, "other user's token", mustToken(t, s, bobToken), bobToken)
		n, err := s.CountUsers(t.Context())
		checkErr(t, "CountUsers", err, nil)
		if n != 1 {
			t.Errorf("CountUsers after DeleteUser = %d, want 1", n)
		}

		// The username is free again.
		mustCreateUser(t, s, "u3", "ada")
		checkErr(t, "DeleteUser again", s.DeleteUser(t.Context(), ada.ID), store.ErrNotFound)
	})
}
