package main

import (
	"context"
	"encoding/json"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/shared/client"
)

// auditLines runs `audit --json` with args and decodes its lines.
func auditLines(t *testing.T, args ...string) []entryJSON {
	t.Helper()
	out := mustCLI(t, "", append([]string{"audit", "--json"}, args...)...)
	var es []entryJSON
	for line := range strings.Lines(out) {
		var e entryJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit --json printed %q: %v", line, err)
		}
		es = append(es, e)
	}
	return es
}

func events(es []entryJSON) []audit.Event {
	var out []audit.Event
	for _, e := range es {
		out = append(out, e.Event)
	}
	return out
}

// Every command that changes users, keys or clients records what it did,
// who it concerned and which operating-system account ran it.
func TestCommandsRecordAuditEntries(t *testing.T) {
	db := filepath.Join(t.TempDir(), "audit.db")
	const pw1, pw2 = "first-Passw0rd", "second-Passw0rd"
	mustCLI(t, pw1+"\n", "user", "add", "--db", db, "--username", "alice", "--password-stdin")
	mustCLI(t, pw2+"\n", "user", "passwd", "--db", db, "--username", "alice", "--password-stdin")
	mustCLI(t, pw1+"\n", "user", "add", "--db", db, "--username", "bob", "--password-stdin")
	mustCLI(t, "", "user", "delete", "--db", db, "--username", "bob")
	mustCLI(t, "", "keys", "rotate", "--db", db, "--activate-in", "0")
	time.Sleep(2 * time.Millisecond) // the second key is newer
	mustCLI(t, "", "keys", "rotate", "--db", db, "--activate-in", "0")
	const secret = "Zt4p0yJ9xQ2wV7sK1mN8bC3dF6gH5jL0aB"
	mustCLI(t, secret+"\n", "client", "add", "--db", db, "--id", "backend", "--name", "Backend", "--secret-stdin")
	mustCLI(t, "", "client", "delete", "--db", db, "--id", "backend")
	// Commands that fail record nothing.
	if _, err := cli(t, "", "user", "delete", "--db", db, "--username", "nobody"); err == nil {
		t.Fatal("deleting a missing user succeeded")
	}

	st := openStore(t, db)
	alice, err := st.UserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	older := keys[1].ID
	mustCLI(t, "", "keys", "retire", "--db", db, "--kid", older)

	es := auditLines(t, "--db", db)
	want := []audit.Event{audit.UserAdded, audit.PasswordChanged, audit.UserAdded, audit.UserDeleted,
		audit.KeyRotated, audit.KeyRotated, audit.ClientAdded, audit.ClientDeleted, audit.KeyRetired}
	if got := events(es); strings.Join(toStrings(got), " ") != strings.Join(toStrings(want), " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
	osUser := ""
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	for i, e := range es {
		if e.Detail["command"] == "" || e.Detail["os_user"] != osUser || e.IP != "" || time.Since(e.Time) > time.Minute {
			t.Errorf("entry %d %+v: want the command, os_user %q, no IP and the time now", i, e, osUser)
		}
	}
	if e := es[1]; e.UserID != alice.ID || e.Username != "alice" || e.Detail["command"] != "user passwd" {
		t.Errorf("password change: %+v", e)
	}
	if e := es[3]; e.UserID == "" || e.Username != "bob" {
		t.Errorf("deletion: %+v", e)
	}
	if e := es[5]; e.Detail["kid"] != keys[0].ID || e.Detail["signs_from"] == "" {
		t.Errorf("rotation: %+v, want kid %s", e, keys[0].ID)
	}
	if e := es[6]; e.Detail["client_id"] != "backend" || e.Detail["type"] != "confidential" {
		t.Errorf("client added: %+v", e)
	}
	if e := es[8]; e.Detail["kid"] != older {
		t.Errorf("retirement: %+v, want kid %s", e, older)
	}
	raw := mustCLI(t, "", "audit", "--db", db, "--json")
	for _, s := range []string{pw1, pw2, secret} {
		if strings.Contains(raw, s) {
			t.Errorf("the audit log holds a secret: %s", raw)
		}
	}
}

func toStrings(es []audit.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e)
	}
	return out
}

func TestAuditCommandFilters(t *testing.T) {
	db := filepath.Join(t.TempDir(), "audit.db")
	mustCLI(t, "alice-password-1\n", "user", "add", "--db", db, "--username", "alice", "--password-stdin")
	mustCLI(t, "bob-password-1\n", "user", "add", "--db", db, "--username", "bob", "--password-stdin")
	st := openStore(t, db)
	alice, err := st.UserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	if err := st.AppendAudit(context.Background(), audit.Entry{Time: old, Event: audit.PasswordSignInFailed,
		UserID: alice.ID, Username: "alice", Device: "Evil\x1b[31m", IP: "192.0.2.1", Detail: map[string]string{"via": "api"}}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, tt := range []struct {
		name string
		args []string
		want []audit.Event
	}{
		{"last day by default", nil, []audit.Event{audit.UserAdded, audit.UserAdded}},
		{"everything", []string{"--since", "0"}, []audit.Event{audit.UserAdded, audit.UserAdded, audit.PasswordSignInFailed}},
		{"three days", []string{"--since", "72h"}, []audit.Event{audit.UserAdded, audit.UserAdded, audit.PasswordSignInFailed}},
		{"since a time", []string{"--since", old.Format(time.RFC3339)}, []audit.Event{audit.UserAdded, audit.UserAdded, audit.PasswordSignInFailed}},
		{"one user", []string{"--user", "alice", "--since", "0"}, []audit.Event{audit.UserAdded, audit.PasswordSignInFailed}},
		{"one user, last day", []string{"--user", "bob"}, []audit.Event{audit.UserAdded}},
	} {
		got := events(auditLines(t, append([]string{"--db", db}, tt.args...)...))
		if strings.Join(toStrings(got), " ") != strings.Join(toStrings(tt.want), " ") {
			t.Errorf("%s: events %v, want %v", tt.name, got, tt.want)
		}
	}
	// --json: the old entry in full.
	es := auditLines(t, "--db", db, "--user", "alice", "--since", "0")
	if e := es[1]; !e.Time.Equal(old) || e.UserID != alice.ID || e.IP != "192.0.2.1" || e.Detail["via"] != "api" || e.ID <= es[0].ID {
		t.Errorf("JSON entry %+v", e)
	}

	table := mustCLI(t, "", "audit", "--db", db, "--since", "0")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "EVENT") {
		t.Fatalf("table:\n%s", table)
	}
	if !strings.Contains(table, "password_sign_in_failed") || !strings.Contains(table, "via=api") || !strings.Contains(table, old.Format(time.RFC3339)) {
		t.Errorf("table lacks the old entry:\n%s", table)
	}
	if strings.Contains(table, "\x1b") || !strings.Contains(table, "Evil?[31m") {
		t.Errorf("a control character reached the terminal:\n%q", table)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--db", db, "--user", "nobody"}, `no user "nobody"`},
		{[]string{"audit", "--db", db, "--since", "yesterday"}, "--since"},
		{[]string{"audit", "--db", db, "--since", "-1h"}, "negative"},
		{[]string{"audit", "--db", db, "extra"}, "unexpected"},
	} {
		if _, err := cli(t, "", tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}

// A server started by the command records sign-ins that `audit` shows.
func TestAuditOfAServer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "audit.db")
	mustCLI(t, "carol-password-1\n", "user", "add", "--db", db, "--username", "carol", "--password-stdin")
	srv := startServer(t, db, "--audit-retention", "720h")
	c := client.New(srv.url)
	if _, err := c.Login(context.Background(), "carol", "wrong-password"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	if _, err := c.Login(context.Background(), "carol", "carol-password-1"); err != nil {
		t.Fatal(err)
	}
	srv.stop()
	es := auditLines(t, "--db", db, "--user", "carol")
	got := events(es)
	want := []audit.Event{audit.UserAdded, audit.PasswordSignInFailed, audit.PasswordSignIn}
	if strings.Join(toStrings(got), " ") != strings.Join(toStrings(want), " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
	if es[2].IP != "127.0.0.1" || es[2].DeviceID == "" {
		t.Errorf("sign-in entry %+v", es[2])
	}
	if _, err := cli(t, "", "serve", "--db", db, "--audit-retention", "0s", "--addr", "127.0.0.1:0"); err == nil ||
		!strings.Contains(err.Error(), "audit-retention") {
		t.Errorf("serve --audit-retention 0s: %v, want a refusal", err)
	}
}
