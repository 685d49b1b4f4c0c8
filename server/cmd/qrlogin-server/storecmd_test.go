package main

import (
	"context"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/postgres/pgtest"
	"github.com/qrlogin/qrlogin/shared/client"
)

// One throwaway PostgreSQL (if $QRLOGIN_TEST_POSTGRES names none) serves
// this package's tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// cli runs the command line args and returns what it printed.
func cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(context.Background(), args, strings.NewReader(stdin), &out, io.Discard)
	return out.String(), err
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := cli(t, stdin, args...)
	if err != nil {
		t.Fatalf("qrlogin-server %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func openStore(t *testing.T, dsn string) store.Store {
	t.Helper()
	st, err := app.OpenStore(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestKeysRotateAndList(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	out := mustCLI(t, "", "keys", "rotate", "--db", db, "--activate-in", "0")
	if !strings.Contains(out, "added signing key") {
		t.Errorf("rotate printed %q", out)
	}
	mustCLI(t, "", "keys", "rotate", "--db", db) // signs ten minutes from now
	keys, err := openStore(t, db).SigningKeys(context.Background())
	if err != nil || len(keys) != 2 {
		t.Fatalf("SigningKeys: %d keys, %v; want 2", len(keys), err)
	}
	pending, active := keys[0], keys[1]
	if d := time.Until(pending.CreatedAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("a rotated key signs in %v, want about 10 minutes", d)
	}

	out = mustCLI(t, "", "keys", "list", "--db", db)
	for _, want := range []string{pending.ID + "  ", "pending", active.ID + "  ", "signing"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}

	// A server trusts both keys and signs with the active one.
	srv := startServer(t, db, "--demo")
	login, err := client.New(srv.url).Login(context.Background(), "alice", "alice-demo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(decodeSegment(t, login.AccessToken), active.ID) {
		t.Errorf("the server did not sign with the active key %s", active.ID)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"keys"}, "which command"},
		{[]string{"keys", "frob", "--db", db}, "unknown command"},
		{[]string{"keys", "rotate", "--db", db, "--activate-in", "-1m"}, "negative"},
		{[]string{"keys", "list", "--db", db, "extra"}, "unexpected"},
		{[]string{"keys", "retire", "--db", db}, "--kid is required"},
		{[]string{"keys", "retire", "--db", db, "--kid", "no-such-key"}, "no signing key"},
		{[]string{"keys", "retire", "--db", db, "--kid", active.ID}, "sign with now"},
	} {
		if _, err := cli(t, "", tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}

// keys retire removes a key that no longer signs, refuses the one that
// does, and the key list no longer shows a retired key.
func TestKeysRetire(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keys.db")
	mustCLI(t, "", "keys", "rotate", "--db", db, "--activate-in", "0")
	time.Sleep(2 * time.Millisecond) // the second key is newer
	mustCLI(t, "", "keys", "rotate", "--db", db, "--activate-in", "0")
	mustCLI(t, "", "keys", "rotate", "--db", db) // pending
	keys, err := openStore(t, db).SigningKeys(context.Background())
	if err != nil || len(keys) != 3 {
		t.Fatalf("SigningKeys: %d keys, %v; want 3", len(keys), err)
	}
	pending, signing, older := keys[0], keys[1], keys[2]

	if _, err := cli(t, "", "keys", "retire", "--db", db, "--kid", signing.ID); err == nil || !strings.Contains(err.Error(), "keys rotate first") {
		t.Fatalf("retiring the signing key: %v, want a refusal naming keys rotate", err)
	}
	out := mustCLI(t, "", "keys", "retire", "--db", db, "--kid", older.ID)
	if !strings.Contains(out, "retired signing key "+older.ID) {
		t.Errorf("retire printed %q", out)
	}
	mustCLI(t, "", "keys", "retire", "--db", db, "--kid", pending.ID) // never signed: fine
	out = mustCLI(t, "", "keys", "list", "--db", db)
	if strings.Contains(out, older.ID) || strings.Contains(out, pending.ID) || !strings.Contains(out, signing.ID) {
		t.Errorf("list after retiring %s and %s:\n%s", older.ID, pending.ID, out)
	}
}

func TestStoreCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	lite := filepath.Join(t.TempDir(), "single-node.db")
	mustCLI(t, "carol-password-1\n", "user", "add", "--db", lite, "--username", "carol", "--display-name", "Carol Ng", "--password-stdin")
	mustCLI(t, "dave-password-1\n", "user", "add", "--db", lite, "--username", "dave", "--password-stdin")

	// A token signed by the single node, before the move.
	single := startServer(t, lite)
	before, err := client.New(single.url).Login(ctx, "carol", "carol-password-1")
	if err != nil {
		t.Fatal(err)
	}
	single.stop()

	pg := pgtest.NewURL(t)
	out := mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	if !strings.Contains(out, "copied 2 users and 1 signing keys") {
		t.Errorf("first copy printed %q", out)
	}
	out = mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	if !strings.Contains(out, "copied 0 users and 0 signing keys") || !strings.Contains(out, "2 users and 1 keys were already there") {
		t.Errorf("second copy printed %q, want nothing copied", out)
	}

	// On PostgreSQL the accounts, their passwords and the old tokens work.
	srv := startServer(t, pg)
	c := client.New(srv.url)
	if _, err := c.Login(ctx, "carol", "carol-password-1"); err != nil {
		t.Errorf("carol's login after the copy: %v", err)
	}
	if _, err := c.Login(ctx, "dave", "dave-password-1"); err != nil {
		t.Errorf("dave's login after the copy: %v", err)
	}
	if me, err := c.Me(ctx, before.AccessToken); err != nil || me.DisplayName != "Carol Ng" {
		t.Errorf("an access token from the single node: %+v, %v", me, err)
	}
	srv.stop()

	// A target holding a different user of the same name: refused, and
	// nothing else copied either.
	mustCLI(t, "erin-password-2\n", "user", "add", "--db", pg, "--username", "erin", "--password-stdin")
	mustCLI(t, "erin-password-1\n", "user", "add", "--db", lite, "--username", "erin", "--password-stdin")
	mustCLI(t, "frank-password-1\n", "user", "add", "--db", lite, "--username", "frank", "--password-stdin")
	_, err = cli(t, "", "store", "copy", "--from", lite, "--to", pg)
	if err == nil || !strings.Contains(err.Error(), `user "erin"`) || !strings.Contains(err.Error(), "nothing copied") {
		t.Fatalf("copy onto a different erin: %v, want a refusal naming erin", err)
	}
	if _, err := openStore(t, pg).UserByUsername(ctx, "frank"); err == nil {
		t.Error("frank was copied although the copy was refused")
	}
}

func TestStoreCopyErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	other := filepath.Join(dir, "other.db")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"store"}, "copy"},
		{[]string{"store", "copy", "--from", other}, "required"},
		{[]string{"store", "copy", "--from", other, "--to", other}, "same database"},
		{[]string{"store", "copy", "--from", missing, "--to", other}, "missing.db"},
	} {
		if _, err := cli(t, "", tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("copying from a missing file created it")
	}
}

func TestRedact(t *testing.T) {
	got := redact("postgres://qrlogin:s3cret@db.example.com:5432/qrlogin?sslmode=verify-full")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "db.example.com") {
		t.Errorf("redact = %q", got)
	}
	if got := redact("/var/lib/qrlogin/qrlogin.db"); got != "/var/lib/qrlogin/qrlogin.db" {
		t.Errorf("redact of a file = %q", got)
	}
}

// decodeSegment is a JWT's header, decoded.
func decodeSegment(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
