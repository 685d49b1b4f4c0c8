// Command qrlogin-desktop is the qrlogin desktop app: it shows a QR code,
// signs in when a phone confirms it, and stays signed in.
//
// Usage:
//
//	qrlogin-desktop [--server URL] [--status-file PATH] [--log-level LEVEL] [--version]
//
// The server is, in order: --server, $QRLOGIN_SERVER, the one chosen in
// the settings dialog, http://127.0.0.1:8080.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/desktop/ui"
	"github.com/qrlogin/qrlogin/shared/api"
)

// App metadata; FyneApp.toml at the top of the repository says the same
// (a test checks), for `fyne package`.
const (
	appID   = "io.github.qrlogin.desktop"
	appName = "qrlogin"
)

// version is the app's version; release builds may set it with
// -ldflags "-X main.version=1.2.3".
var version = "1.0.0"

//go:embed Icon.png
var iconPNG []byte

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrlogin-desktop:", err)
		os.Exit(2)
	}
}

// options are the command line, after the environment is applied.
type options struct {
	server     string
	statusFile string
	level      slog.Level
	version    bool
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("qrlogin-desktop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "", "qrlogin server URL (env QRLOGIN_SERVER; default: the one chosen in settings, else "+ui.DefaultServer+")")
	fs.StringVar(&o.statusFile, "status-file", "", "write the sign-in phase to this file on every change (for tests and scripts)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.server == "" {
		o.server = getenv("QRLOGIN_SERVER")
	}
	if o.server != "" {
		s, err := ui.NormalizeServer(o.server)
		if err != nil {
			return o, fmt.Errorf("server %q: %w", o.server, err)
		}
		o.server = s
	}
	if err := o.level.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("log level: %w", err)
	}
	return o, nil
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, "qrlogin-desktop", version)
		return nil
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.level}))

	a := app.NewWithID(appID)
	icon := fyne.NewStaticResource("Icon.png", iconPNG)
	a.SetIcon(icon)

	var desk *ui.App
	store := tokenstore.New(tokenstore.Config{
		Service: appID,
		Dir:     a.Storage().RootURI().Path(),
		Logger:  logger,
		OnFallback: func(path string, reason error) {
			if desk != nil {
				desk.StorageFellBack(path, reason)
			}
		},
		OnKeychain: func() {
			if desk != nil {
				desk.StorageRecovered()
			}
		},
	})
	var onState func(signin.State)
	if o.statusFile != "" {
		onState = statusWriter(o.statusFile, logger)
	}
	desk = ui.New(a, ui.Config{
		Server:    o.server,
		Tokens:    store,
		UserAgent: "qrlogin-desktop/" + version + " (" + runtime.GOOS + "; " + runtime.GOARCH + ")",
		Device:    device(),
		Logger:    logger,
		Icon:      icon,
		OnState:   onState,
	})

	// Ctrl-C in a terminal quits like closing the window, so the code on
	// screen is withdrawn.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.Canceled) {
			fyne.Do(a.Quit)
		}
	}()

	desk.Start()
	a.Run()
	stop()
	desk.Stop()
	return nil
}

func statusLine(st signin.State) string {
	line := string(st.Phase)
	switch {
	case st.Phase == signin.SignedIn && st.Account != nil:
		line += " " + st.Account.User.Username
	case (st.Phase == signin.Waiting || st.Phase == signin.Scanned) && st.Code != nil:
		line += " " + st.Code.UserCode
	}
	if st.Problem != nil {
		line += " (retrying)"
	}
	return line
}

// device describes this computer for the phone's "is this you?" screen.
func device() api.CreateSessionRequest {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "Desktop"
	}
	return api.CreateSessionRequest{
		DeviceName: host,
		Platform:   platform(runtime.GOOS, runtime.GOARCH),
		AppName:    appName + " desktop " + version,
	}
}

func platform(goos, goarch string) string {
	names := map[string]string{
		"linux": "Linux", "darwin": "macOS", "windows": "Windows",
		"freebsd": "FreeBSD", "openbsd": "OpenBSD", "netbsd": "NetBSD",
	}
	name, ok := names[goos]
	if !ok {
		name = goos
	}
	return name + " " + goarch
}

// statusWriter returns an OnState that keeps path holding the current
// phase and what goes with it: "waiting BCDF-GHJK" (the user code on
// screen), "signed-in alice" (the username), or just the phase. The file
// is replaced atomically so a reader never sees half a line.
func statusWriter(path string, logger *slog.Logger) func(signin.State) {
	return func(st signin.State) {
		line := statusLine(st)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(line+"\n"), 0o644); err != nil {
			logger.Warn("could not write the status file", "path", path, "err", err)
			return
		}
		if err := os.Rename(tmp, filepath.Clean(path)); err != nil {
			logger.Warn("could not write the status file", "path", path, "err", err)
		}
	}
}
