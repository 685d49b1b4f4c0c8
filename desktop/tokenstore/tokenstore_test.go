package tokenstore_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/qrlogin/qrlogin/desktop/tokenstore"
)

const server = "http://127.0.0.1:8080"

// TestKeychain uses the real Secret Service. Run it inside a D-Bus session
// with an unlocked gnome-keyring:
//
//	dbus-run-session -- sh -c 'printf x | gnome-keyring-daemon --unlock --components=secrets >/dev/null && go test ./desktop/tokenstore/'
func TestKeychain(t *testing.T) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no D-Bus session (DBUS_SESSION_BUS_ADDRESS unset): run under dbus-run-session with gnome-keyring-daemon --unlock to test the keychain")
	}
	if os.Getenv(helperEnv) != "" {
		t.Skip("helper process")
	}
	service := fmt.Sprintf("qrlogin-test-%d", time.Now().UnixNano())
	var fellBack error
	s := tokenstore.New(tokenstore.Config{
		Service: service, Dir: t.TempDir(), Timeout: 20 * time.Second,
		OnFallback: func(_ string, reason error) { fellBack = reason },
	})
	t.Cleanup(func() { _ = keyring.DeleteAll(service) })

	if _, err := s.Load(server); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("Load before Save: %v (fell back: %v), want ErrNotFound", err, fellBack)
	}
	if err := s.Save(server, "secret-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(server, "secret-2"); err != nil {
		t.Fatal(err)
	}
	if fellBack != nil || s.Backend() != "keychain" {
		t.Fatalf("fell back to the file: %v", fellBack)
	}
	// It is really in the keychain, not in the file.
	if got, err := keyring.Get(service, server); err != nil || got != "secret-2" {
		t.Fatalf("keychain holds %q, %v; want secret-2", got, err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("fallback file exists: %v", err)
	}
	if got, err := s.Load(server); err != nil || got != "secret-2" {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if _, err := s.Load("http://other:8080"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Load of another server: %v, want ErrNotFound", err)
	}
	if err := s.Delete(server); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(server); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s.Load(server); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Load after Delete: %v, want ErrNotFound", err)
	}
}

const helperEnv = "QRLOGIN_TOKENSTORE_NO_DBUS_HELPER"

// TestFallbackWithoutDBus runs the real keychain code in a process that
// has no D-Bus (a D-Bus connection, once made, is shared by the whole
// process, so this cannot run in the test process itself).
func TestFallbackWithoutDBus(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("helper process")
	}
	dir := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoDBusHelper$", "-test.v")
	cmd.Env = append(os.Environ(),
		helperEnv+"="+dir,
		// A bus address that cannot work; an empty one would make godbus
		// try to autolaunch a bus.
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/qrlogin-test-bus",
	)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNoDBusHelper") {
		t.Fatalf("helper failed: %v\n%s", err, out)
	}
}

func TestNoDBusHelper(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("run by TestFallbackWithoutDBus")
	}
	var calls []string
	s := tokenstore.New(tokenstore.Config{
		Service: "qrlogin-test", Dir: dir,
		OnFallback: func(path string, reason error) {
			calls = append(calls, path)
			t.Logf("fell back: %v", reason)
		},
	})
	if _, err := s.Load(server); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("Load: %v, want ErrNotFound", err)
	}
	if err := s.Save(server, "secret"); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("http://other:9", "other"); err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, s.Path(), dir)
	if got, err := s.Load(server); err != nil || got != "secret" {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if len(calls) != 1 || calls[0] != filepath.Join(dir, tokenstore.FileName) || s.Backend() != "file" {
		t.Fatalf("OnFallback calls = %v, backend %s; want one call with the file path", calls, s.Backend())
	}
	if err := s.Delete(server); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(server); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("Load after Delete: %v", err)
	}
	if err := s.Delete("http://other:9"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty fallback file left behind: %v", err)
	}
}

func checkPrivate(t *testing.T, file, dir string) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, di.Mode().Perm())
	}
}

// fakeKeyring is an in-memory keychain that can be broken or slow.
type fakeKeyring struct {
	mu    sync.Mutex
	m     map[string]string
	err   error         // returned by every call when set
	block chan struct{} // calls wait on it when set
	ended atomic.Int32  // calls that returned
}

func (k *fakeKeyring) setErr(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.err = err
}

func (k *fakeKeyring) holds(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m["svc|"+key]
	return v, ok
}

func (k *fakeKeyring) wait() error {
	if k.block != nil {
		<-k.block
	}
	k.mu.Lock()
	return k.err
}

func (k *fakeKeyring) Get(service, user string) (string, error) {
	defer k.ended.Add(1)
	err := k.wait()
	defer k.mu.Unlock()
	if err != nil {
		return "", err
	}
	v, ok := k.m[service+"|"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (k *fakeKeyring) Set(service, user, secret string) error {
	defer k.ended.Add(1)
	err := k.wait()
	defer k.mu.Unlock()
	if err != nil {
		return err
	}
	if len(secret) > 2000 {
		return keyring.ErrSetDataTooBig
	}
	if k.m == nil {
		k.m = map[string]string{}
	}
	k.m[service+"|"+user] = secret
	return nil
}

func (k *fakeKeyring) Delete(service, user string) error {
	defer k.ended.Add(1)
	err := k.wait()
	defer k.mu.Unlock()
	if err != nil {
		return err
	}
	if _, ok := k.m[service+"|"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(k.m, service+"|"+user)
	return nil
}

func TestFallbackDecisions(t *testing.T) {
	tests := []struct {
		name         string
		kr           *fakeKeyring
		timeout      time.Duration
		wantBackend  string
		wantFallback bool
	}{
		{name: "working keychain", kr: &fakeKeyring{}, wantBackend: "keychain"},
		{name: "keychain error", kr: &fakeKeyring{err: errors.New("org.freedesktop.DBus.Error.ServiceUnknown")}, wantBackend: "file", wantFallback: true},
		{name: "keychain never answers", kr: &fakeKeyring{block: make(chan struct{})}, timeout: 50 * time.Millisecond, wantBackend: "file", wantFallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kr.block != nil {
				t.Cleanup(func() { close(tt.kr.block) })
			}
			dir := filepath.Join(t.TempDir(), "app")
			fallbacks := 0
			s := tokenstore.New(tokenstore.Config{
				Service: "svc", Dir: dir, Keyring: tt.kr, Timeout: tt.timeout,
				OnFallback: func(string, error) { fallbacks++ },
			})
			for i := range 3 {
				if err := s.Save(server, fmt.Sprint("secret", i)); err != nil {
					t.Fatal(err)
				}
				if got, err := s.Load(server); err != nil || got != fmt.Sprint("secret", i) {
					t.Fatalf("Load = %q, %v", got, err)
				}
			}
			if s.Backend() != tt.wantBackend {
				t.Errorf("backend %s, want %s", s.Backend(), tt.wantBackend)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.wantFallback]; fallbacks != want {
				t.Errorf("OnFallback called %d times, want %d", fallbacks, want)
			}
			_, err := os.Stat(s.Path())
			if tt.wantFallback {
				checkPrivate(t, s.Path(), dir)
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("file written although the keychain works: %v", err)
			}
		})
	}
}

func TestFileCopyMovesToKeychain(t *testing.T) {
	dir := t.TempDir()
	// An earlier run without a keychain left the secret in the file.
	old := tokenstore.New(tokenstore.Config{Service: "svc", Dir: dir, Keyring: &fakeKeyring{err: errors.New("no bus")}})
	if err := old.Save(server, "from-file"); err != nil {
		t.Fatal(err)
	}
	kr := &fakeKeyring{}
	s := tokenstore.New(tokenstore.Config{Service: "svc", Dir: dir, Keyring: kr})
	if got, err := s.Load(server); err != nil || got != "from-file" {
		t.Fatalf("Load = %q, %v; want the file's copy", got, err)
	}
	if err := s.Save(server, "rotated"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old file copy not removed: %v", err)
	}
	if v, _ := kr.Get("svc", server); v != "rotated" {
		t.Errorf("keychain holds %q", v)
	}
}

func TestTooBigIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := tokenstore.New(tokenstore.Config{Service: "svc", Dir: dir, Keyring: &fakeKeyring{}})
	err := s.Save(server, strings.Repeat("x", 3000))
	if !errors.Is(err, keyring.ErrSetDataTooBig) {
		t.Fatalf("Save = %v, want ErrSetDataTooBig", err)
	}
	if s.Backend() != "keychain" {
		t.Errorf("a too-big secret made the store fall back")
	}
}

func TestLoosePermissionsAreTightened(t *testing.T) {
	dir := t.TempDir()
	s := tokenstore.New(tokenstore.Config{Service: "svc", Dir: dir, Keyring: &fakeKeyring{err: errors.New("no bus")}})
	if err := s.Save(server, "secret"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(server); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Path()); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	s := tokenstore.New(tokenstore.Config{Service: "svc", Dir: dir, Keyring: &fakeKeyring{err: errors.New("no bus")}})
	if err := os.WriteFile(s.Path(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(server); err == nil || errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Load of a corrupt file = %v, want a parse error", err)
	}
}

func TestMemory(t *testing.T) {
	var m tokenstore.Memory
	if _, err := m.Load("s"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("empty Load: %v", err)
	}
	if err := m.Save("s", "secret"); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Load("s"); err != nil || v != "secret" || m.Len() != 1 {
		t.Fatalf("Load = %q, %v, Len %d", v, err, m.Len())
	}
	if err := m.Delete("s"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load("s"); !errors.Is(err, tokenstore.ErrNotFound) || m.Len() != 0 {
		t.Fatalf("after Delete: %v, Len %d", err, m.Len())
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 1000 {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A keychain waiting on its unlock prompt sends the sign-in to the file;
// once the prompt is answered, the sign-in moves into the keychain and the
// file goes, including a sign-out made meanwhile.
func TestPromptAnsweredLate(t *testing.T) {
	tests := []struct {
		name    string
		during  func(*tokenstore.Store) error // while the keychain waits
		want    string                        // in the keychain afterwards; "" for none
		wantErr error                         // of Load afterwards
	}{
		{name: "saved", during: func(*tokenstore.Store) error { return nil }, want: "first"},
		{name: "rotated", during: func(s *tokenstore.Store) error { return s.Save(server, "second") }, want: "second"},
		{name: "signed out", during: func(s *tokenstore.Store) error { return s.Delete(server) }, wantErr: tokenstore.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := &fakeKeyring{block: make(chan struct{})}
			dir := t.TempDir()
			fallbacks := 0
			var back atomic.Int32
			s := tokenstore.New(tokenstore.Config{Service: "svc", Dir: dir, Keyring: kr, Timeout: 50 * time.Millisecond,
				OnFallback: func(string, error) { fallbacks++ },
				OnKeychain: func() { back.Add(1) }})
			if err := s.Save(server, "first"); err != nil {
				t.Fatal(err)
			}
			if s.Backend() != "file" || fallbacks != 1 {
				t.Fatalf("backend %s after %d fallbacks while the keychain waits: want file, 1", s.Backend(), fallbacks)
			}
			if err := tt.during(s); err != nil {
				t.Fatal(err)
			}
			close(kr.block) // the user answers the prompt
			waitFor(t, "the store never went back to the keychain", func() bool { return s.Backend() == "keychain" })
			if n := back.Load(); n != 1 {
				t.Errorf("OnKeychain called %d times, want 1", n)
			}

			if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the file is still there: %v", err)
			}
			got, ok := kr.holds(server)
			if tt.want == "" && ok {
				t.Errorf("keychain still holds %q after the sign-out", got)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("keychain holds %q, want %q", got, tt.want)
			}
			if v, err := s.Load(server); v != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Load = %q, %v; want %q, %v", v, err, tt.want, tt.wantErr)
			}
			if err := s.Save(server, "third"); err != nil {
				t.Fatal(err)
			}
			if v, _ := kr.holds(server); v != "third" {
				t.Errorf("a save after the move went elsewhere: keychain holds %q", v)
			}
			if _, err := os.Stat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a save after the move wrote the file: %v", err)
			}
		})
	}
}

// A keychain that answers late with an error stays unused.
func TestPromptRefused(t *testing.T) {
	kr := &fakeKeyring{block: make(chan struct{})}
	s := tokenstore.New(tokenstore.Config{Service: "svc", Dir: t.TempDir(), Keyring: kr, Timeout: 50 * time.Millisecond})
	if err := s.Save(server, "first"); err != nil {
		t.Fatal(err)
	}
	kr.setErr(errors.New("prompt dismissed"))
	close(kr.block)
	waitFor(t, "the late keychain call never returned", func() bool { return kr.ended.Load() >= 1 })
	for range 20 { // give a wrong move back a moment to happen
		if s.Backend() != "file" {
			t.Fatal("went back to a keychain that refused")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v, err := s.Load(server); v != "first" || err != nil {
		t.Fatalf("Load = %q, %v", v, err)
	}
}
