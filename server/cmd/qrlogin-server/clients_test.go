package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "clients.db")
	cli := func(stdin string, args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), args, strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	const secret = "Zt4p0yJ9xQ2wV7sK1mN8bC3dF6gH5jL0aB"
	if out, err := cli("", "client", "add", "--db", db, "--id", "notes-cli", "--name", "Notes for the terminal"); err != nil || !strings.Contains(out, "public") {
		t.Fatalf("add public: %q %v", out, err)
	}
	if out, err := cli(secret+"\n", "client", "add", "--db", db, "--id", "backend", "--name", "Backend 后台", "--secret-stdin"); err != nil || !strings.Contains(out, "confidential") {
		t.Fatalf("add confidential: %q %v", out, err)
	}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"duplicate", "", []string{"client", "add", "--db", db, "--id", "backend", "--name", "Again"}, "exists"},
		{"no id", "", []string{"client", "add", "--db", db, "--name", "X"}, "--id"},
		{"no name", "", []string{"client", "add", "--db", db, "--id", "x"}, "--name"},
		{"bad id", "", []string{"client", "add", "--db", db, "--id", "a b", "--name", "X"}, "client id"},
		{"reserved id", "", []string{"client", "add", "--db", db, "--id", "qrlogin", "--name", "X"}, "reserved"},
		{"name with a line break", "", []string{"client", "add", "--db", db, "--id", "x", "--name", "A\nB"}, "control"},
		{"short secret", "short\n", []string{"client", "add", "--db", db, "--id", "x", "--name", "X", "--secret-stdin"}, "at least 32"},
		{"no secret", "", []string{"client", "add", "--db", db, "--id", "x", "--name", "X", "--secret-stdin"}, "no secret"},
		{"unknown client", "", []string{"client", "delete", "--db", db, "--id", "zed"}, "no client"},
		{"unknown sub", "", []string{"client", "frob", "--db", db}, "unknown"},
		{"no sub", "", []string{"client"}, "which command"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cli(tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	out, err := cli("", "client", "list", "--db", db)
	if err != nil || !strings.Contains(out, "backend") || !strings.Contains(out, "Backend 后台") || !strings.Contains(out, "confidential") ||
		!strings.Contains(out, "notes-cli") || strings.Contains(out, secret) {
		t.Fatalf("list: %q %v", out, err)
	}

	// The running server knows the clients: the confidential one with its
	// secret only, the public one by its id alone.
	srv := startServer(t, db)
	deviceAuth := func(form url.Values, user, pass string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.url+"/oauth2/device_authorization", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := deviceAuth(url.Values{"client_id": {"notes-cli"}}, "", ""); got != http.StatusOK {
		t.Errorf("public client: %d", got)
	}
	if got := deviceAuth(url.Values{}, "backend", secret); got != http.StatusOK {
		t.Errorf("confidential client with its secret: %d", got)
	}
	if got := deviceAuth(url.Values{}, "backend", secret+"x"); got != http.StatusUnauthorized {
		t.Errorf("confidential client with a wrong secret: %d", got)
	}
	srv.stop()

	if out, err := cli("", "client", "delete", "--db", db, "--id", "backend"); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %q %v", out, err)
	}
	out, _ = cli("", "client", "list", "--db", db)
	if strings.Contains(out, "backend") {
		t.Fatalf("backend still listed: %q", out)
	}
}
