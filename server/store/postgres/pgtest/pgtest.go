// Package pgtest gives tests a PostgreSQL server: the one whose URL is in
// $QRLOGIN_TEST_POSTGRES, or else a throwaway cluster started from the
// local installation (Debian's postgresql package, /usr/lib/postgresql/*/bin)
// on a free 127.0.0.1 port, as an unprivileged user when the tests run as
// root. One cluster serves a whole test binary: call Main from TestMain so
// it is stopped and removed at the end. Each test gets an empty schema of
// its own (NewURL), so tests never see each other's rows.
//
// Tests skip, saying why, only when no PostgreSQL is installed and none is
// named; a cluster that is installed but fails to start fails the test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the environment variable that names an existing server to test
// against, as a URL (postgres://user:pass@127.0.0.1:5432/db?sslmode=disable).
// The user needs the right to create schemas in that database, and
// pg_signal_backend (or superuser) for tests that cut connections.
const Env = "QRLOGIN_TEST_POSTGRES"

var (
	once      sync.Once
	serverURL string
	startErr  error
	skipMsg   string
	running   *cluster
)

// Main runs the tests of a package that uses pgtest and then stops the
// cluster started for them, if any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if running != nil {
		if err := running.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	os.Exit(code)
}

// ServerURL returns the URL of the test server, starting the throwaway
// cluster on first use. It skips the test when there is no PostgreSQL.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if u := os.Getenv(Env); u != "" {
			serverURL = u
			return
		}
		var err error
		running, err = start()
		var missing notInstalledError
		switch {
		case errors.As(err, &missing):
			skipMsg = fmt.Sprintf("no PostgreSQL for the tests: %v; set %s to a server's URL or install Debian's postgresql package", err, Env)
		case err != nil:
			startErr = fmt.Errorf("start a throwaway PostgreSQL cluster: %w", err)
		default:
			serverURL = running.url
		}
	})
	if skipMsg != "" {
		tb.Skip(skipMsg)
	}
	if startErr != nil {
		tb.Fatal(startErr)
	}
	return serverURL
}

// NewURL creates an empty schema, dropped when the test ends, and returns
// the server's URL with search_path set to it, so that a store opened on it
// creates its tables there. Extra query parameters (e.g. application_name)
// are added to the URL.
func NewURL(tb testing.TB, params ...string) string {
	tb.Helper()
	base := ServerURL(tb)
	var b [8]byte
	rand.Read(b[:])
	schema := "qrlogin_test_" + hex.EncodeToString(b[:])
	Exec(tb, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop test schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop test schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s: not a URL: %v", Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	if len(params)%2 != 0 {
		tb.Fatal("pgtest.NewURL: params must be name, value pairs")
	}
	for i := 0; i < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs sql on the test server (outside any test schema) and returns
// how many rows it affected.
func Exec(tb testing.TB, sql string, args ...any) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ServerURL(tb))
	if err != nil {
		tb.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

// notInstalledError means no PostgreSQL binaries were found.
type notInstalledError struct{ msg string }

func (e notInstalledError) Error() string { return e.msg }

// cluster is a running throwaway PostgreSQL.
type cluster struct {
	dir  string // holds data/, the socket and postgres.log
	url  string
	proc *exec.Cmd
	done chan error // receives postgres's exit
}

// binDir finds the newest installed PostgreSQL's bin directory.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", notInstalledError{"no initdb in /usr/lib/postgresql/*/bin or on PATH"}
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// start initialises and starts a cluster in a new temporary directory.
func start() (*cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	base := ""
	if cred != nil {
		// The cluster's user must reach its directory; $TMPDIR may be
		// private to root.
		base = "/tmp"
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := c.command(cred, filepath.Join(bin, "initdb"), "-D", data, "-U", "qrlogin",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A port found free may be taken before postgres binds it; try again.
	for attempt := 0; ; attempt++ {
		err = c.run(cred, bin, data)
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// dirPrefix starts the name of every cluster's temporary directory.
const dirPrefix = "qrlogin-pgtest-"

// removeStale removes the directories of clusters whose test binary died
// without cleaning up (a panic, a kill): postgres itself stopped then (see
// command), leaving no postmaster.pid. The age check spares a directory
// that another test binary is just setting up.
func removeStale(base string) {
	if base == "" {
		base = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(d)
		}
	}
}

// credential is who runs the cluster: nil (ourselves) unless we are root,
// which PostgreSQL refuses; then the postgres user, or nobody.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root and there is no postgres or nobody user to run PostgreSQL as")
}

// command runs name as cred in the cluster's directory, without the PG*
// variables of the environment, which could point it elsewhere.
func (c *cluster) command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// If the test binary dies without stopping the cluster (a timeout
	// panic, a kill), postgres shuts down (SIGINT: fast shutdown).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT}
	return cmd
}

// run starts postgres on a free port and waits until it accepts
// connections.
func (c *cluster) run(cred *syscall.Credential, bin, data string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := c.command(cred, filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.dir,
		"-c", "max_connections=300",
		// Durability is worthless for a cluster deleted after the tests.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.proc, c.done = cmd, make(chan error, 1)
	go func() { c.done <- cmd.Wait() }()

	c.url = fmt.Sprintf("postgres://qrlogin@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.url)
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case werr := <-c.done:
			c.done <- werr
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited (%v):\n%s", werr, tail(log, 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, tail(log, 2000))
		}
	}
}

func (c *cluster) kill() {
	if c.proc != nil && c.proc.Process != nil {
		c.proc.Process.Kill()
		<-c.done
	}
}

// stop shuts the cluster down (fast shutdown, then a kill after 20s) and
// removes its directory.
func (c *cluster) stop() error {
	_ = c.proc.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.proc.Process.Kill()
		<-c.done
	}
	return os.RemoveAll(c.dir)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
