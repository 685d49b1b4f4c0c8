// Package apptest starts real qrlogin servers for tests: in-process, on
// 127.0.0.1 with a free port and a fresh SQLite database, stopped when the
// test ends.
package apptest

import (
	"context"

	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/oauth"
	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// Server is a running test server.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// App is the server itself.
	App *app.App
	// Config is the configuration it was started with.
	Config app.Config

	stop context.CancelFunc
	done chan error
}

// Config returns the configuration Start uses before applying options:
// loopback, a fresh database in dir, rate limits off and cheap password
// hashing so tests stay fast.
func Config(dir string) app.Config {
	cfg := app.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DB = filepath.Join(dir, "qrlogin.db")
	cfg.LimitLogin, cfg.LimitCreate, cfg.LimitLookup = 0, 0, 0
	cfg.PasswordParams = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	return cfg
}

// Start starts a server; opts may change its configuration. It is stopped
// (and its long-polls answered) when the test ends.
func Start(tb testing.TB, opts ...func(*app.Config)) *Server {
	tb.Helper()
	cfg := Config(tb.TempDir())
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(tb, cfg)
}

// StartConfig starts a server with exactly cfg.
func StartConfig(tb testing.TB, cfg app.Config) *Server {
	tb.Helper()
	// A test binary's in-process servers are what main is to the real
	// one: set gin's process-wide mode as main does.
	gin.SetMode(gin.ReleaseMode)
	log := slog.New(requestid.NewHandler(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		tb.Fatalf("start qrlogin server: %v", err)
	}
	s := &Server{URL: a.URL(), App: a, Config: cfg, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Serve(ctx) }()
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

// Stop shuts the server down and waits for it; calling it again is a no-op.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		if err != nil {
			tb.Errorf("qrlogin server stopped with: %v", err)
		}
	case <-time.After(15 * time.Second):
		tb.Errorf("qrlogin server did not stop within 15s")
	}
}

// Client returns a client of the server.
func (s *Server) Client() *client.Client { return client.New(s.URL) }

// AddUser creates a user and returns it.
func (s *Server) AddUser(tb testing.TB, username, displayName, password string) api.User {
	tb.Helper()
	u, err := s.App.Accounts().Add(context.Background(), username, displayName, password)
	if err != nil {
		tb.Fatalf("add user %s: %v", username, err)
	}
	return api.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName}
}

// Login signs username in as a phone would and returns its access token.
func (s *Server) Login(tb testing.TB, username, password string) string {
	tb.Helper()
	resp, err := s.Client().Login(context.Background(), username, password)
	if err != nil {
		tb.Fatalf("login %s: %v", username, err)
	}
	return resp.AccessToken
}

// AddClient registers an OAuth client; secret "" makes it public.
func (s *Server) AddClient(tb testing.TB, id, name, secret string) {
	tb.Helper()
	c, err := oauth.NewClient(id, name, secret, time.Now())
	if err != nil {
		tb.Fatalf("new client %s: %v", id, err)
	}
	if err := s.App.Store().CreateClient(context.Background(), c); err != nil {
		tb.Fatalf("add client %s: %v", id, err)
	}
}
