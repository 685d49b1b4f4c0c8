package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// DefaultServer is the server used when none is configured.
const DefaultServer = "http://127.0.0.1:8080"

// PrefServer is the preference key remembering the server URL chosen in
// the settings dialog. Preferences hold nothing else: never tokens.
const PrefServer = "server"

// Config configures an App.
type Config struct {
	// Server, when set (from --server or QRLOGIN_SERVER), is used instead
	// of the remembered one.
	Server string
	Tokens signin.TokenStore
	// NewAPI returns the API client for a server; nil means shared/client
	// with UserAgent.
	NewAPI    func(server string) signin.API
	UserAgent string
	// Device describes this computer to the phone.
	Device api.CreateSessionRequest
	Logger *slog.Logger
	// Icon is the app icon, shown in the header.
	Icon fyne.Resource
	// OnState sees every State on the flow's goroutine (the smoke test's
	// status file uses it).
	OnState func(signin.State)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Do runs a function on the Fyne goroutine; nil means fyne.Do. Tests
	// queue the functions and run them on the test goroutine.
	Do func(func())
	// Tick is how often countdowns update; 0 means every second.
	Tick time.Duration
}

// App is the desktop app: one window and the sign-in flow of the chosen
// server. Its methods run on the Fyne goroutine, except Stop.
type App struct {
	cfg  Config
	fyne fyne.App
	win  fyne.Window
	view *Window
	log  *slog.Logger

	server string
	flow   *signin.Flow
	cancel context.CancelFunc

	mu     sync.Mutex
	runs   []flowRun // flows started and not yet seen to finish
	ticker chan struct{}

	settingsEntry  *widget.Entry
	settingsDialog *dialog.FormDialog
}

// flowRun is a flow's goroutine: how to stop it and when it has stopped.
type flowRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New creates the app's window; Start shows it and starts signing in.
func New(fa fyne.App, cfg Config) *App {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Do == nil {
		cfg.Do = fyne.Do
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.NewAPI == nil {
		ua := cfg.UserAgent
		cfg.NewAPI = func(server string) signin.API {
			c := client.New(server)
			c.UserAgent = ua
			return signin.Client{Client: c}
		}
	}
	a := &App{cfg: cfg, fyne: fa, log: cfg.Logger}
	a.win = fa.NewWindow("qrlogin")
	a.win.SetMaster()
	a.win.Resize(fyne.NewSize(460, 700))
	a.view = NewWindow(a.win, WindowConfig{Icon: cfg.Icon, Now: cfg.Now, OnSettings: a.ShowSettings})
	a.server = cfg.Server
	if a.server == "" {
		a.server = fa.Preferences().StringWithFallback(PrefServer, DefaultServer)
	}
	if s, err := NormalizeServer(a.server); err == nil {
		a.server = s
	} else {
		a.log.Warn("ignoring an invalid server URL", "url", a.server, "err", err)
		a.server = DefaultServer
	}
	return a
}

// Window is the app's only window.
func (a *App) Window() fyne.Window { return a.win }

// View is the window's content.
func (a *App) View() *Window { return a.view }

// Server is the server the app signs in to.
func (a *App) Server() string { return a.server }

// Start shows the window, starts the sign-in flow and the countdown
// ticker.
func (a *App) Start() {
	a.win.Show()
	a.startFlow()
	stop := make(chan struct{})
	a.mu.Lock()
	a.ticker = stop
	a.mu.Unlock()
	go func() {
		t := time.NewTicker(a.cfg.Tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				a.cfg.Do(a.view.Tick)
			}
		}
	}()
}

func (a *App) startFlow() {
	var f *signin.Flow
	f = signin.New(signin.Config{
		Server: a.server,
		API:    a.cfg.NewAPI(a.server),
		Tokens: a.cfg.Tokens,
		Device: a.cfg.Device,
		Logger: a.log,
		Now:    a.cfg.Now,
		OnChange: func(st signin.State) {
			if a.cfg.OnState != nil {
				a.cfg.OnState(st)
			}
			a.cfg.Do(func() {
				if a.flow == f { // a replaced flow's last words are not shown
					a.view.Render(st)
				}
			})
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.mu.Lock()
	live := a.runs[:0]
	for _, r := range a.runs {
		select {
		case <-r.done:
		default:
			live = append(live, r)
		}
	}
	a.runs = append(live, flowRun{cancel, done})
	a.mu.Unlock()
	a.flow, a.cancel = f, cancel
	a.view.SetController(f)
	a.view.Render(f.State())
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	a.log.Info("signing in", "server", a.server)
}

// SetServer switches to another server and remembers it. The old flow
// withdraws its code in the background.
func (a *App) SetServer(raw string) error {
	s, err := NormalizeServer(raw)
	if err != nil {
		return err
	}
	a.fyne.Preferences().SetString(PrefServer, s)
	if s == a.server {
		return nil
	}
	a.server = s
	if a.flow == nil {
		return nil // not started yet: Start uses the new server
	}
	a.cancel()
	a.startFlow()
	return nil
}

// Stop ends every flow and waits (at most 5 seconds) for them to withdraw
// their codes. It may be called from any goroutine, more than once.
func (a *App) Stop() {
	a.mu.Lock()
	runs := a.runs
	a.runs = nil
	if a.ticker != nil {
		close(a.ticker)
		a.ticker = nil
	}
	a.mu.Unlock()
	for _, r := range runs {
		r.cancel()
	}
	deadline := time.After(5 * time.Second)
	for _, r := range runs {
		select {
		case <-r.done:
		case <-deadline:
			a.log.Warn("sign-in flow did not stop in time")
			return
		}
	}
}

// StorageFellBack tells the user, once, that no keychain works; it fits
// tokenstore.Config.OnFallback and may be called from any goroutine.
func (a *App) StorageFellBack(path string, _ error) {
	a.cfg.Do(func() { a.view.ShowStorageNotice(path) })
}

// StorageRecovered takes that notice back when the keychain answered
// after all; it fits tokenstore.Config.OnKeychain.
func (a *App) StorageRecovered() {
	a.cfg.Do(func() { a.view.HideStorageNotice() })
}

// ShowSettings opens the dialog that sets the server URL.
func (a *App) ShowSettings() {
	e := widget.NewEntry()
	e.SetText(a.server)
	e.SetPlaceHolder(DefaultServer)
	e.Validator = func(s string) error {
		_, err := NormalizeServer(s)
		return err
	}
	item := widget.NewFormItem("Server", e)
	item.HintText = "The qrlogin server this computer signs in to"
	d := dialog.NewForm("Settings", "Save", "Cancel", []*widget.FormItem{item}, func(ok bool) {
		if !ok {
			return
		}
		if err := a.SetServer(e.Text); err != nil {
			dialog.ShowError(err, a.win)
		}
	}, a.win)
	d.Resize(fyne.NewSize(420, 0))
	a.settingsEntry, a.settingsDialog = e, d
	d.Show()
	a.win.Canvas().Focus(e)
}

// NormalizeServer checks a server URL and returns it without a trailing
// slash: http or https, a host, no query.
func NormalizeServer(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("enter the server's address, e.g. " + DefaultServer)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("the address must start with http:// or https://")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("the address needs a host name")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("the address must not have a query, fragment or user name")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), nil
}
