package account_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
)

func TestValidation(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"username ok", account.ValidateUsername("alice.b_c-1"), nil},
		{"username empty", account.ValidateUsername(""), account.ErrInvalidUsername},
		{"username space", account.ValidateUsername("a b"), account.ErrInvalidUsername},
		{"username non-ascii", account.ValidateUsername("álice"), account.ErrInvalidUsername},
		{"username too long", account.ValidateUsername(strings.Repeat("a", 65)), account.ErrInvalidUsername},
		{"username longest", account.ValidateUsername(strings.Repeat("a", 64)), nil},
		{"password ok", account.ValidatePassword("eight ch"), nil},
		{"password short", account.ValidatePassword("seven c"), account.ErrInvalidPassword},
		{"password counts characters", account.ValidatePassword("密码密码密码密码"), nil},
		{"password too long", account.ValidatePassword(strings.Repeat("a", 1025)), account.ErrInvalidPassword},
		{"display ok", account.ValidateDisplayName("陈爱丽 Alice"), nil},
		{"display control", account.ValidateDisplayName("a\nb"), account.ErrInvalidDisplayName},
		{"display too long", account.ValidateDisplayName(strings.Repeat("é", 101)), account.ErrInvalidDisplayName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) || (tt.want == nil && tt.err != nil) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
}

func newService(t *testing.T) *account.Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &account.Service{
		Store:  db,
		Hasher: auth.NewHasher(auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1),
		NewID:  auth.NewID,
		Now:    func() time.Time { return time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC) },
	}
}

func TestAddAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	u, err := s.Add(ctx, "alice", "  ", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if u.DisplayName != "alice" || u.PasswordHash == "correct horse" || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("added %+v", u)
	}
	if _, err := s.Add(ctx, "alice", "", "another pass"); !errors.Is(err, account.ErrUsernameTaken) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.Add(ctx, "bad name", "", "x"); !errors.Is(err, account.ErrInvalidUsername) || !errors.Is(err, account.ErrInvalidPassword) {
		t.Fatalf("every problem at once: %v", err)
	}
	if got, err := s.Authenticate(ctx, "alice", "correct horse"); err != nil || got.ID != u.ID {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	for _, c := range []struct{ user, pw string }{{"alice", "wrong horse"}, {"nobody", "correct horse"}, {"alice", strings.Repeat("x", 2000)}} {
		if _, err := s.Authenticate(ctx, c.user, c.pw); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("authenticate %s: %v", c.user, err)
		}
	}
	if err := s.SetPassword(ctx, "alice", "battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice", "correct horse"); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatal("old password still works")
	}
	if err := s.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestCatchUp(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	have := store.User{ID: "u1", Username: "ada", DisplayName: "Ada", PasswordHash: "h1", TokensValidAfter: t0}
	for _, tt := range []struct {
		name               string
		src                func(u *store.User)
		want               func(u *store.User)
		changed, signedOut bool
		err                bool
	}{
		{"same", func(u *store.User) {}, func(u *store.User) {}, false, false, false},
		{"password changed there", func(u *store.User) { u.PasswordHash, u.TokensValidAfter = "h2", t0.Add(time.Hour) },
			func(u *store.User) { u.PasswordHash, u.TokensValidAfter = "h2", t0.Add(time.Hour) }, true, true, false},
		{"signed out there", func(u *store.User) { u.TokensValidAfter = t0.Add(time.Hour) },
			func(u *store.User) { u.TokensValidAfter = t0.Add(time.Hour) }, true, true, false},
		{"older sign-out", func(u *store.User) { u.TokensValidAfter = t0.Add(-time.Hour) }, func(u *store.User) {}, false, false, false},
		{"new display name", func(u *store.User) { u.DisplayName = "Ada King" }, func(u *store.User) { u.DisplayName = "Ada King" }, true, false, false},
		{"password changed here", func(u *store.User) { u.PasswordHash = "h0" }, func(u *store.User) {}, false, false, true},
		{"older password", func(u *store.User) { u.PasswordHash, u.TokensValidAfter = "h0", t0.Add(-time.Hour) }, func(u *store.User) {}, false, false, true},
		{"another username", func(u *store.User) { u.Username = "bob" }, func(u *store.User) {}, false, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, want, got := have, have, have
			tt.src(&src)
			tt.want(&want)
			changed, signedOut, err := account.CatchUp(&got, src)
			if (err != nil) != tt.err || changed != tt.changed || signedOut != tt.signedOut {
				t.Fatalf("CatchUp = %v, %v, %v; want %v, %v, error %v", changed, signedOut, err, tt.changed, tt.signedOut, tt.err)
			}
			if got != want {
				t.Errorf("CatchUp left %+v, want %+v", got, want)
			}
		})
	}
}
