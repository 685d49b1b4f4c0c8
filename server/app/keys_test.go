package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// kidOf is the key id in an access token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}

// newKey makes a signing key that signs from activeFrom.
func newKey(t *testing.T, activeFrom time.Time) store.SigningKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return store.SigningKey{ID: auth.NewID(), PrivateKey: priv, CreatedAt: activeFrom.UTC().Truncate(time.Microsecond)}
}

// eventually retries check until it returns "" or 10 seconds pass.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 10s", what, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A key added while the server runs (as `keys rotate` does) is published
// at once, signs from its CreatedAt on, and the old key keeps verifying
// the tokens it signed.
func TestRotatedKeyIsPickedUpWithoutRestart(t *testing.T) {
	clk := testclock.New(time.Now().UTC())
	srv := apptest.Start(t, func(c *app.Config) { c.Now, c.KeyReload = clk.Now, 10*time.Millisecond })
	srv.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	ctx := t.Context()

	old := srv.Login(t, "alice", "alice-password-1")
	oldKID := kidOf(t, old)
	next := newKey(t, clk.Now().Add(time.Minute))
	if err := srv.App.Store().CreateSigningKey(ctx, next); err != nil {
		t.Fatal(err)
	}

	eventually(t, "the new key in the JWKS", func() string {
		if ks := jwks(t, srv.URL).Keys; len(ks) != 2 {
			return "not listed"
		}
		return ""
	})
	if kid := kidOf(t, srv.Login(t, "alice", "alice-password-1")); kid != oldKID {
		t.Errorf("before its time the new key signs (kid %s), want the old key %s", kid, oldKID)
	}

	clk.Advance(2 * time.Minute)
	eventually(t, "signing with the new key", func() string {
		if kid := kidOf(t, srv.Login(t, "alice", "alice-password-1")); kid != next.ID {
			return "signing with " + kid
		}
		return ""
	})
	if _, err := srv.Client().Me(ctx, old); err != nil {
		t.Errorf("a token of the old key after the rotation: %v", err)
	}
}

// A server verifies a token signed by another server's key that it has not
// loaded yet, without waiting for its periodic reload.
func TestUnknownKeyIDReloadsAtOnce(t *testing.T) {
	dir := t.TempDir()
	x := apptest.Start(t, func(c *app.Config) {
		c.DB = apptest.Config(dir).DB
		c.KeyReload = time.Hour
	})
	x.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	ctx := t.Context()
	k := newKey(t, time.Now().Add(-time.Millisecond))
	if err := x.App.Store().CreateSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	y := apptest.Start(t, func(c *app.Config) { c.DB = apptest.Config(dir).DB })

	tok := y.Login(t, "alice", "alice-password-1")
	if kid := kidOf(t, tok); kid != k.ID {
		t.Fatalf("the second server signs with %s, want the newest key %s", kid, k.ID)
	}
	if me, err := x.Client().Me(ctx, tok); err != nil || me.Username != "alice" {
		t.Fatalf("the first server refused a token of a key it had not loaded: %+v, %v", me, err)
	}
	if n := len(jwks(t, x.URL).Keys); n != 2 {
		t.Errorf("after the reload the first server lists %d keys, want 2", n)
	}

	// A forged token naming an unknown key is still refused.
	forged := forgeToken(t, "no-such-key")
	if _, err := x.Client().Me(ctx, forged); !client.IsCode(err, api.ErrUnauthorized) {
		t.Errorf("a token of an unknown key: %v, want unauthorized", err)
	}
}

// forgeToken signs a token with a fresh key under kid.
func forgeToken(t *testing.T, kid string) string {
	t.Helper()
	k := newKey(t, time.Now())
	k.ID = kid
	iss, err := auth.NewIssuer(context.Background(), oneKey{k}, auth.IssuerConfig{Issuer: "qrlogin", Audience: "qrlogin", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Sign("someone", auth.AMRPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type oneKey struct{ k store.SigningKey }

func (o oneKey) SigningKeys(context.Context) ([]store.SigningKey, error) {
	return []store.SigningKey{o.k}, nil
}
func (oneKey) CreateSigningKey(context.Context, store.SigningKey) error { return nil }

// A key dated ahead (as `keys rotate` makes it) starts signing at its time,
// not at the next periodic reload.
func TestPendingKeySignsOnTime(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.KeyReload = time.Hour
	st, err := app.OpenStore(t.Context(), cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	current, pending := newKey(t, now.Add(-time.Minute)), newKey(t, now.Add(300*time.Millisecond))
	for _, k := range []store.SigningKey{current, pending} {
		if err := st.CreateSigningKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	srv := apptest.StartConfig(t, cfg)
	srv.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	if kid := kidOf(t, srv.Login(t, "alice", "alice-password-1")); kid != current.ID && time.Now().Before(pending.CreatedAt) {
		t.Errorf("before the pending key's time the server signs with %s, want %s", kid, current.ID)
	}
	eventually(t, "signing with the pending key once its time came", func() string {
		if kid := kidOf(t, srv.Login(t, "alice", "alice-password-1")); kid != pending.ID {
			return "signing with " + kid
		}
		return ""
	})
}

// A retired key (`keys retire` deletes it from the store) leaves the JWKS
// and stops verifying once the server reloads its keys, so tokens it
// signed are refused from then on.
func TestRetiredKeyIsRefusedAfterReload(t *testing.T) {
	srv := apptest.Start(t, func(c *app.Config) { c.KeyReload = 10 * time.Millisecond })
	srv.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	ctx := t.Context()

	old := srv.Login(t, "alice", "alice-password-1")
	oldKID := kidOf(t, old)
	next := newKey(t, time.Now().Add(-time.Millisecond))
	if err := srv.App.Store().CreateSigningKey(ctx, next); err != nil {
		t.Fatal(err)
	}
	eventually(t, "signing with the new key", func() string {
		if kid := kidOf(t, srv.Login(t, "alice", "alice-password-1")); kid != next.ID {
			return "signing with " + kid
		}
		return ""
	})
	if _, err := srv.Client().Me(ctx, old); err != nil {
		t.Fatalf("a token of the old key before it is retired: %v", err)
	}

	if err := srv.App.Store().DeleteSigningKey(ctx, oldKID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the retired key gone from the JWKS", func() string {
		for _, k := range jwks(t, srv.URL).Keys {
			if k.Kid == oldKID {
				return "listed"
			}
		}
		return ""
	})
	if _, err := srv.Client().Me(ctx, old); !client.IsCode(err, api.ErrUnauthorized) {
		t.Errorf("a token of the retired key: %v, want unauthorized", err)
	}
	if _, err := srv.Client().Me(ctx, srv.Login(t, "alice", "alice-password-1")); err != nil {
		t.Errorf("a token of the current key: %v", err)
	}
}
