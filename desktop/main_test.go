package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/zalando/go-keyring"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		server string
		err    string
	}{
		{name: "nothing", server: ""},
		{name: "env", env: map[string]string{"QRLOGIN_SERVER": "http://10.0.0.5:8080/"}, server: "http://10.0.0.5:8080"},
		{name: "flag beats env", args: []string{"--server", "https://qr.example.com"},
			env: map[string]string{"QRLOGIN_SERVER": "http://10.0.0.5:8080"}, server: "https://qr.example.com"},
		{name: "host:port", args: []string{"--server=127.0.0.1:9000"}, server: "http://127.0.0.1:9000"},
		{name: "bad server", args: []string{"--server", "ftp://x"}, err: "http:// or https://"},
		{name: "bad level", args: []string{"--log-level", "loud"}, err: "log level"},
		{name: "stray argument", args: []string{"extra"}, err: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			o, err := parse(tt.args, func(k string) string { return tt.env[k] }, &stderr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.server != tt.server {
				t.Errorf("server = %q, want %q", o.server, tt.server)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--version"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); got != "qrlogin-desktop "+version+"\n" {
		t.Errorf("--version printed %q", got)
	}
}

func TestStatusLine(t *testing.T) {
	code := &signin.Code{UserCode: "BCDF-GHJK"}
	tests := []struct {
		st   signin.State
		want string
	}{
		{signin.State{Phase: signin.Starting}, "starting"},
		{signin.State{Phase: signin.Waiting, Code: code}, "waiting BCDF-GHJK"},
		{signin.State{Phase: signin.Scanned, Code: code}, "scanned BCDF-GHJK"},
		{signin.State{Phase: signin.Waiting, Code: code, Problem: &signin.Problem{}}, "waiting BCDF-GHJK (retrying)"},
		{signin.State{Phase: signin.SignedIn, Account: &signin.Account{User: api.User{Username: "alice"}}}, "signed-in alice"},
		{signin.State{Phase: signin.Expired}, "expired"},
	}
	for _, tt := range tests {
		if got := statusLine(tt.st); got != tt.want {
			t.Errorf("statusLine(%+v) = %q, want %q", tt.st, got, tt.want)
		}
	}
	path := filepath.Join(t.TempDir(), "status")
	statusWriter(path, slog.New(slog.DiscardHandler))(tests[1].st)
	if b, err := os.ReadFile(path); err != nil || string(b) != "waiting BCDF-GHJK\n" {
		t.Errorf("status file = %q, %v", b, err)
	}
}

func TestPlatform(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"linux", "amd64"}:   "Linux amd64",
		{"darwin", "arm64"}:  "macOS arm64",
		{"windows", "amd64"}: "Windows amd64",
		{"plan9", "386"}:     "plan9 386",
	} {
		if got := platform(in[0], in[1]); got != want {
			t.Errorf("platform(%s, %s) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

// TestFyneAppTOML keeps the packaging metadata and the code in step.
func TestFyneAppTOML(t *testing.T) {
	var meta struct {
		Details struct {
			Icon, Name, ID, Version string
			Build                   int
		}
	}
	if _, err := toml.DecodeFile("../FyneApp.toml", &meta); err != nil {
		t.Fatal(err)
	}
	d := meta.Details
	if d.ID != appID || d.Name != appName || d.Version != version || d.Build < 1 {
		t.Errorf("FyneApp.toml says %+v; the code says id %s, name %s, version %s", d, appID, appName, version)
	}
	icon, err := os.ReadFile(filepath.Join("..", d.Icon))
	if err != nil {
		t.Fatalf("icon %s: %v", d.Icon, err)
	}
	if !bytes.Equal(icon, iconPNG) {
		t.Errorf("FyneApp.toml's icon %s is not the embedded Icon.png", d.Icon)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(iconPNG))
	if err != nil || cfg.Width != 512 || cfg.Height != 512 {
		t.Errorf("Icon.png: %dx%d, %v; want a 512x512 PNG", cfg.Width, cfg.Height, err)
	}
}

// TestSmoke runs the real binary under Xvfb against a real server: a phone
// scans and confirms, and the app must report that it is signed in. With
// QRLOGIN_SCREENSHOT_DIR set, it keeps its screenshots there.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke test skipped in -short mode")
	}
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb not installed (apt-get install xvfb): skipping the smoke test of the real binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "qrlogin-desktop")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	display := startXvfb(t, xvfb)

	srv := apptest.Start(t)
	srv.AddUser(t, "alice", "Alice Chen", "correct horse battery")
	token := srv.Login(t, "alice", "correct horse battery")
	phone := srv.Client()

	status := filepath.Join(dir, "status")
	var logs bytes.Buffer
	t.Cleanup(func() {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
			_ = keyring.Delete(appID, srv.URL) // the sign-in this test left behind
		}
		if t.Failed() {
			t.Logf("app output:\n%s", logs.String())
		}
	})
	start := func() (*exec.Cmd, <-chan error) {
		t.Helper()
		_ = os.Remove(status)
		cmd := exec.Command(bin, "--server", srv.URL, "--status-file", status, "--log-level", "debug")
		cmd.Env = appEnv(display, dir)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		return cmd, exited
	}
	// SIGTERM quits like closing the window.
	stop := func(cmd *exec.Cmd, exited <-chan error) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("app exited with %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("app did not exit within 20s of SIGTERM")
		}
	}

	// Quitting withdraws the code on screen.
	cmd, exited := start()
	line := waitStatus(t, status, "waiting ", exited)
	first, err := phone.SessionByCode(context.Background(), token, strings.TrimPrefix(line, "waiting "))
	if err != nil {
		t.Fatal(err)
	}
	stop(cmd, exited)
	if info, err := phone.SessionInfo(context.Background(), token, first.ID); err != nil || info.Status != api.StatusCancelled {
		t.Errorf("code after quitting: %+v, %v; want cancelled", info, err)
	}

	// A whole sign-in.
	cmd, exited = start()
	shots := os.Getenv("QRLOGIN_SCREENSHOT_DIR")
	if shots == "" {
		shots = dir
	}

	line = waitStatus(t, status, "waiting ", exited)
	userCode := strings.TrimPrefix(line, "waiting ")
	time.Sleep(500 * time.Millisecond) // let the frame with the code be drawn
	qrShot := screenshot(t, display, filepath.Join(shots, "desktop-qr.png"))

	info, err := phone.SessionByCode(context.Background(), token, userCode)
	if err != nil {
		t.Fatalf("phone looks up %s: %v", userCode, err)
	}
	if qrShot != "" {
		checkQR(t, qrShot, "/m/"+info.ID)
	}
	// The app waits on the session's event stream, which the scan wakes.
	for i := 0; srv.App.Waiters() != 1; i++ {
		if i > 2000 {
			t.Fatalf("the server holds %d waits after 10s, want the app's stream", srv.App.Waiters())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := phone.Scan(context.Background(), token, info.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, status, "scanned ", exited)
	time.Sleep(500 * time.Millisecond)
	screenshot(t, display, filepath.Join(shots, "desktop-scanned.png"))
	if _, err := phone.Confirm(context.Background(), token, info.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, status, "signed-in alice", exited)
	time.Sleep(time.Second) // /me, then the frame
	screenshot(t, display, filepath.Join(shots, "desktop-signed-in.png"))
	stop(cmd, exited)

	if !strings.Contains(logs.String(), "waiting on the event stream") || strings.Contains(logs.String(), "long-polling") {
		t.Errorf("the app did not wait on the event stream")
	}

	// Started again, the app signs in from its saved sign-in, without a code.
	cmd, exited = start()
	waitStatus(t, status, "signed-in alice", exited)
	stop(cmd, exited)
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the app panicked")
	}
}

// startXvfb starts a virtual screen the size of the window on a free
// display and returns the display name.
func startXvfb(t *testing.T, xvfb string) string {
	t.Helper()
	for n := 90; n < 190; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		display := fmt.Sprintf(":%d", n)
		cmd := exec.Command(xvfb, display, "-screen", "0", "460x700x24", "-nolisten", "tcp")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(done)
		}()
		socket := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
		for range 100 {
			if _, err := os.Stat(socket); err == nil {
				t.Cleanup(func() {
					_ = cmd.Process.Kill()
					<-done
				})
				return display
			}
			select {
			case <-done: // lost a race for this display; try the next
			case <-time.After(100 * time.Millisecond):
				continue
			}
			break
		}
		_ = cmd.Process.Kill()
		<-done
	}
	t.Fatal("no free X display for Xvfb")
	return ""
}

// appEnv is the app's environment: the virtual display, its own config
// and data directories, and the session D-Bus only when there is one (an
// empty address would make D-Bus try to start a bus of its own).
func appEnv(display, dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DISPLAY", "WAYLAND_DISPLAY", "XDG_CONFIG_HOME", "XDG_DATA_HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"DISPLAY="+display,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"LANG=en_US.UTF-8",
	)
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/qrlogin-smoke-test")
	}
	return env
}

// waitStatus waits (at most 60 seconds) for the status file to start with
// prefix and returns its line.
func waitStatus(t *testing.T, path, prefix string, exited <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		last = strings.TrimSpace(string(b))
		if strings.HasPrefix(last, prefix) {
			return last
		}
		select {
		case err := <-exited:
			t.Fatalf("app exited (%v) while waiting for %q; status %q", err, prefix, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("status never became %q; last %q", prefix, last)
	return ""
}

// screenshot saves the virtual screen, when ImageMagick's import is
// installed, and returns the file's path ("" when it is not).
func screenshot(t *testing.T, display, path string) string {
	t.Helper()
	imp, err := exec.LookPath("import")
	if err != nil {
		t.Logf("no screenshot: ImageMagick's import is not installed")
		return ""
	}
	if out, err := exec.Command(imp, "-display", display, "-window", "root", path).CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 460 || cfg.Height != 700 {
		t.Fatalf("screenshot %s: %dx%d, %v", path, cfg.Width, cfg.Height, err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// checkQR decodes the QR code in a screenshot with zbarimg, when it is
// installed, and checks it points at the session.
func checkQR(t *testing.T, path, suffix string) {
	t.Helper()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Logf("QR not decoded: zbarimg is not installed (apt-get install zbar-tools)")
		return
	}
	out, err := exec.Command(zbar, "-q", "--raw", path).Output()
	if err != nil {
		t.Fatalf("zbarimg found no QR code in %s: %v", path, err)
	}
	got := strings.TrimSpace(string(out))
	if !strings.HasSuffix(got, suffix) {
		t.Errorf("QR code says %q, want a URL ending in %q", got, suffix)
	}
}
