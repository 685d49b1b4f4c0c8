package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// A server records its first signing key and its users' sign-ins with
// its clock and the client's address, and its sweeper prunes entries
// older than AuditRetention.
func TestAuditRecordedAndPruned(t *testing.T) {
	clk := testclock.New(time.Now().UTC().Truncate(time.Microsecond))
	srv := apptest.Start(t, func(c *app.Config) {
		c.Now = clk.Now
		c.SweepInterval = 20 * time.Millisecond
		c.AuditRetention = time.Hour
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := srv.App.Store()
	entries := func() []audit.Entry {
		t.Helper()
		es, err := st.AuditEntries(ctx, store.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	first := entries()
	if len(first) != 1 || first[0].Event != audit.KeyRotated || first[0].Detail["by"] != "first start" || first[0].Detail["kid"] == "" {
		t.Fatalf("a new server's audit log: %+v, want its first key", first)
	}

	srv.AddUser(t, "alice", "Alice", "alice-password")
	if _, err := srv.Client().Login(ctx, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	es := entries()
	if len(es) != 2 || es[1].Event != audit.PasswordSignIn || es[1].Username != "alice" || es[1].IP != "127.0.0.1" ||
		!es[1].Time.Equal(clk.Now()) {
		t.Fatalf("after a sign-in: %+v", es)
	}

	clk.Advance(59 * time.Minute)
	time.Sleep(100 * time.Millisecond) // several sweeps; none may remove anything yet
	if n := len(entries()); n != 2 {
		t.Fatalf("%d entries left within retention, want 2", n)
	}
	clk.Advance(2 * time.Minute)
	for i := 0; len(entries()) != 0; i++ {
		if i == 500 {
			t.Fatalf("entries older than the retention not swept: %+v", entries())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuditRetentionValidated(t *testing.T) {
	cfg := app.DefaultConfig()
	if cfg.AuditRetention != 2160*time.Hour {
		t.Errorf("default audit retention %v, want 2160h", cfg.AuditRetention)
	}
	cfg.AuditRetention = 0
	if err := cfg.Validate(); err == nil {
		t.Error("a zero audit retention was accepted")
	}
}
