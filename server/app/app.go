// Package app assembles a qrlogin server from a Config: it opens the store,
// loads the signing keys, builds the HTTP API, listens, sweeps old
// sessions and shuts down gracefully. The qrlogin-server binary and the
// end-to-end tests both start servers through it.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/lanaddr"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/metrics"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/oauth"
	"github.com/qrlogin/qrlogin/server/ratelimit"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/postgres"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
	"github.com/qrlogin/qrlogin/shared/client"
)

// Config is everything a server can be told. Fill it from DefaultConfig.
type Config struct {
	Addr       string        // listen address, e.g. ":8080"
	DB         string        // SQLite database file, or a postgres:// URL (several servers may share it)
	PublicURL  string        // base URL phones use; empty: http(s)://<LAN IPv4>:<port>
	SessionTTL time.Duration // login session lifetime
	AccessTTL  time.Duration // access token lifetime
	RefreshTTL time.Duration // refresh token and phone sign-in lifetime
	// RefreshMaxAge ends a sign-in's refresh chain (or phone sign-in) that
	// long after the sign-in, however often it is refreshed.
	RefreshMaxAge  time.Duration
	TLSCert        string // PEM certificate file; with TLSKey serves HTTPS
	TLSKey         string
	TrustedProxies []string // proxies whose X-Forwarded-For is believed
	// Rate limits in requests per minute per client IP; 0 turns one off.
	LimitLogin  int
	LimitCreate int
	LimitLookup int
	// MaxWaiters caps the waits (long-polls and event streams) held at
	// once; more are answered 503.
	MaxWaiters int
	// HashConcurrency bounds how many password hashes run at once (each
	// takes about 19 MiB).
	HashConcurrency int
	// PasswordParams are the Argon2id costs for new hashes.
	PasswordParams auth.Params
	// Demo creates demo accounts when there are no users.
	Demo bool
	// SweepInterval is how often ended sessions and expired tokens are
	// deleted.
	SweepInterval time.Duration
	// KeyReload is how often the signing keys are re-read from the store,
	// so that a rotated key is picked up without a restart; a minute when
	// zero.
	KeyReload time.Duration
	// DeviceInterval is the OAuth device grant's polling interval
	// (RFC 8628 says 5 seconds).
	DeviceInterval time.Duration
	// MetricsAddr is where Prometheus metrics are served (/metrics), on a
	// listener of their own; empty (the default) serves none, so metrics
	// are never public by accident.
	MetricsAddr string
	// AuditRetention is how long audit log entries are kept; the sweeper
	// removes older ones.
	AuditRetention time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{
		Addr:            ":8080",
		DB:              "qrlogin.db",
		SessionTTL:      2 * time.Minute,
		AccessTTL:       15 * time.Minute,
		RefreshTTL:      30 * 24 * time.Hour,
		RefreshMaxAge:   90 * 24 * time.Hour,
		LimitLogin:      10,
		LimitCreate:     30,
		LimitLookup:     20,
		HashConcurrency: 4,
		MaxWaiters:      httpapi.DefaultMaxWaiters,
		PasswordParams:  auth.DefaultParams(),
		SweepInterval:   time.Minute,
		KeyReload:       time.Minute,
		DeviceInterval:  oauth.DefaultInterval,
		AuditRetention:  90 * 24 * time.Hour,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr: must not be empty"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
	}
	if c.DB == "" {
		errs = append(errs, errors.New("db: must not be empty"))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("public-url %q: must be an absolute http(s) URL", c.PublicURL))
		}
	}
	for name, d := range map[string]time.Duration{"session-ttl": c.SessionTTL, "access-ttl": c.AccessTTL, "refresh-ttl": c.RefreshTTL,
		"refresh-max-age": c.RefreshMaxAge, "audit-retention": c.AuditRetention} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", name, d))
		}
	}
	// An ended sign-in's row is what refuses its access tokens; the
	// sweeper deletes it devices.Retention after the end, so no token may
	// outlive that.
	if c.AccessTTL >= devices.Retention {
		errs = append(errs, fmt.Errorf("access-ttl: %v must be shorter than %v, how long an ended sign-in is remembered", c.AccessTTL, devices.Retention))
	}
	if c.SessionTTL > time.Hour {
		errs = append(errs, fmt.Errorf("session-ttl: %v is longer than an hour; a sign-in code should be short-lived", c.SessionTTL))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key: give both or neither"))
	}
	if c.TLSCert != "" && strings.HasPrefix(strings.ToLower(c.PublicURL), "http://") {
		errs = append(errs, fmt.Errorf("public-url %q: the server serves HTTPS (--tls-cert), so the URL must be https://", c.PublicURL))
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				errs = append(errs, fmt.Errorf("trusted-proxies: %q is not an IP address or CIDR range", p))
			}
		}
	}
	for name, n := range map[string]int{"limit-login": c.LimitLogin, "limit-create": c.LimitCreate, "limit-lookup": c.LimitLookup} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s: %d must be 0 (off) or more", name, n))
		}
	}
	if c.HashConcurrency < 1 {
		errs = append(errs, fmt.Errorf("hash-concurrency: %d must be at least 1", c.HashConcurrency))
	}
	if c.MaxWaiters < 1 {
		errs = append(errs, fmt.Errorf("max-waiters: %d must be at least 1", c.MaxWaiters))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("sweep-interval: %v must be positive", c.SweepInterval))
	}
	if c.DeviceInterval < time.Second || c.DeviceInterval%time.Second != 0 {
		errs = append(errs, fmt.Errorf("device-interval: %v must be a whole number of seconds, at least 1s", c.DeviceInterval))
	}
	if c.KeyReload < 0 {
		errs = append(errs, fmt.Errorf("key-reload: %v must not be negative", c.KeyReload))
	}
	if err := validateMetricsAddr(c.MetricsAddr, c.Addr); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// App is a running-or-ready server.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	accounts *account.Service
	audit    *audit.Recorder
	hub      *notify.Hub
	keys     *keyRing
	api      *httpapi.Server
	ln       net.Listener
	served   net.Listener // what srv serves: ln, behind TLS when on
	srv      *http.Server
	url      string
	metrics  *metrics.Metrics // nil without MetricsAddr
	mserver  *metricsServer   // nil without MetricsAddr
}

// New opens the store and starts listening on cfg.Addr; Serve then
// answers requests. Close releases everything if Serve is never called.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := OpenStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, store: db}
	if err := a.init(ctx); err != nil {
		db.Close()
		if a.ln != nil {
			a.ln.Close()
		}
		if a.mserver != nil {
			a.mserver.ln.Close()
		}
		return nil, err
	}
	return a, nil
}

// OpenStore opens the database named by dsn: PostgreSQL for a postgres://
// or postgresql:// URL, otherwise the SQLite file dsn (an optional
// sqlite:// prefix is dropped).
func OpenStore(ctx context.Context, dsn string) (store.Store, error) {
	if postgres.IsURL(dsn) {
		// Not %s of dsn: the URL may hold a password. The error names the
		// user, host and database.
		return postgres.Open(ctx, dsn)
	}
	db, err := sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite://"))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", dsn, err)
	}
	return db, nil
}

func (a *App) init(ctx context.Context) error {
	cfg := a.cfg
	var err error
	a.audit = audit.NewRecorder(a.store, a.log, cfg.Now)
	a.keys, err = newKeyRing(ctx, firstKeyRecorder{Store: a.store, audit: a.audit}, auth.IssuerConfig{
		Issuer: "qrlogin", Audience: "qrlogin", TTL: cfg.AccessTTL, Now: cfg.Now,
	}, a.log)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	a.hub = &notify.Hub{}
	a.accounts = NewAccounts(a.store, cfg)
	if cfg.MetricsAddr != "" {
		a.metrics = metrics.New()
		if a.mserver, err = newMetricsServer(cfg.MetricsAddr, a.metrics, a.log); err != nil {
			return err
		}
	}

	a.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	a.url, err = a.publicURL()
	if err != nil {
		return err
	}
	if client.Unencrypted(a.url) {
		a.log.Warn("passwords and tokens cross the network unencrypted: serve HTTPS with --tls-cert and --tls-key, "+
			"or put a TLS proxy in front and set --public-url https://...", "public_url", a.url)
	}
	a.served = a.ln
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		// HTTP/2 carries many waiting desktops behind one proxy
		// connection; HTTP/1.1 stays for everyone else.
		a.served = tls.NewListener(a.ln, &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		})
	}

	minute := func(n int) httpapi.Limiter {
		if n == 0 {
			return nil
		}
		// A small burst lets a person retry a typo at once.
		return ratelimit.New(n, max(3, n/5), cfg.Now)
	}
	limits := countLimits(httpapi.Limits{
		Login:     minute(cfg.LimitLogin),
		LoginUser: ratelimit.New(cfg.LimitLogin, max(3, cfg.LimitLogin/5), cfg.Now), // failures only; 0: off
		Create:    minute(cfg.LimitCreate),
		Lookup:    minute(cfg.LimitLookup),
	}, a.metrics)
	// Interfaces holding a nil *metrics.Metrics would not be nil.
	var apiMetrics httpapi.Metrics
	var oauthMetrics oauth.Metrics
	if a.metrics != nil {
		apiMetrics, oauthMetrics = a.metrics, a.metrics
	}
	oauthHandler := oauth.New(oauth.Config{
		PublicURL:  a.url,
		SessionTTL: cfg.SessionTTL,
		Interval:   cfg.DeviceInterval,
		Refresh:    refresh.Policy{TTL: cfg.RefreshTTL, MaxAge: cfg.RefreshMaxAge},
		Now:        cfg.Now,
	}, oauth.Deps{Store: a.store, Tokens: a.keys, Hub: a.hub, Create: limits.Create, Log: a.log, Metrics: oauthMetrics, Audit: a.audit})
	a.api, err = httpapi.New(httpapi.Config{
		PublicURL:      a.url,
		SessionTTL:     cfg.SessionTTL,
		RefreshTTL:     cfg.RefreshTTL,
		RefreshMaxAge:  cfg.RefreshMaxAge,
		TrustedProxies: cfg.TrustedProxies,
		SecureCookies:  cfg.TLSCert != "",
		MaxWaiters:     cfg.MaxWaiters,
		Now:            cfg.Now,
	}, httpapi.Deps{
		Store:    a.store,
		Accounts: a.accounts,
		Tokens:   a.keys,
		Hub:      a.hub,
		Limits:   limits,
		Log:      a.log,
		Extra:    []httpapi.Mounter{oauthHandler},
		Metrics:  apiMetrics,
		Audit:    a.audit,
	})
	if err != nil {
		return fmt.Errorf("build HTTP API: %w", err)
	}
	a.srv = &http.Server{
		Handler:           a.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Held waits set their own read and write deadlines; these bound
		// the rest.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if cfg.Demo {
		if err := a.createDemoUsers(ctx); err != nil {
			return err
		}
	}
	return nil
}

// NewAccounts is the account service over st with cfg's password costs.
func NewAccounts(st store.Store, cfg Config) *account.Service {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	params := cfg.PasswordParams
	if params == (auth.Params{}) {
		params = auth.DefaultParams()
	}
	return &account.Service{
		Store:  st,
		Hasher: auth.NewHasher(params, max(1, cfg.HashConcurrency)),
		NewID:  auth.NewID,
		Now:    now,
	}
}

// publicURL is the configured public URL, or one built from this
// machine's LAN address and the port we listen on.
func (a *App) publicURL() (string, error) {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/"), nil
	}
	scheme := "http"
	if a.cfg.TLSCert != "" {
		scheme = "https"
	}
	host, _, _ := net.SplitHostPort(a.cfg.Addr)
	port := strconv.Itoa(a.ln.Addr().(*net.TCPAddr).Port)
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		// Bound to loopback: only this machine can reach us anyway.
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	ip, loopbackOnly, err := lanaddr.DetectSystem()
	if err != nil {
		return "", fmt.Errorf("find this machine's network address (set --public-url): %w", err)
	}
	if loopbackOnly {
		a.log.Warn("no network address found; phones cannot reach this server until --public-url is set", "public_url", scheme+"://"+net.JoinHostPort(ip.String(), port))
	}
	return scheme + "://" + net.JoinHostPort(ip.String(), port), nil
}

// URL is the base URL phones use (verify URLs start with it).
func (a *App) URL() string { return a.url }

// Addr is the address the server listens on.
func (a *App) Addr() net.Addr { return a.ln.Addr() }

// Store is the server's store.
func (a *App) Store() store.Store { return a.store }

// Waiters is how many waits (long-polls and event streams) the server is
// holding right now.
func (a *App) Waiters() int { return a.api.Waiting() }

// MetricsAddr is the address metrics are served on, or nil when they are
// off.
func (a *App) MetricsAddr() net.Addr {
	if a.mserver == nil {
		return nil
	}
	return a.mserver.ln.Addr()
}

// Accounts is the server's account service.
func (a *App) Accounts() *account.Service { return a.accounts }

// Serve answers requests until ctx is cancelled, then shuts down: held
// long-polls answer with their current status and in-flight requests get
// up to 10 seconds to finish. It closes the store before returning.
func (a *App) Serve(ctx context.Context) error {
	defer a.store.Close()
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	// Runs before the store closes (deferred calls run last-in first-out).
	defer background.Wait()
	defer stopBackground()
	background.Go(func() { a.sweep(bgCtx) })
	background.Go(func() { a.keys.reload(bgCtx, a.cfg.KeyReload) })
	if l, ok := a.store.(sessionListener); ok {
		background.Go(func() {
			if err := l.Listen(bgCtx, a.log, a.hub.Publish, a.hub.Waiting); err != nil {
				a.log.Error("session notifications from other servers stopped", "err", err)
			}
		})
	}

	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.served) }()
	merrc := make(chan error, 1)
	if a.mserver != nil {
		a.log.Info("serving metrics", "addr", a.mserver.ln.Addr().String(), "path", "/metrics")
		go a.mserver.serve(merrc)
	}
	var failed error
	select {
	case err := <-errc:
		failed = fmt.Errorf("serve: %w", err)
	case err := <-merrc:
		failed = err
	case <-ctx.Done():
	}
	if failed != nil {
		a.srv.Close()
		if a.mserver != nil {
			a.mserver.srv.Close()
		}
		return failed
	}
	a.log.Info("shutting down")
	a.api.Shutdown()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a.mserver != nil {
		// Scrapes are short: the metrics server stops with the API.
		if err := a.mserver.srv.Shutdown(shutCtx); err != nil {
			a.log.Warn("shut down metrics server", "err", err)
		}
	}
	if err := a.srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// sessionListener is a store shared by several servers that reports
// session changes made by any of them (the PostgreSQL store, through
// LISTEN/NOTIFY). The server feeds them to its hub, so a long-poll held
// here wakes when the phone's confirm lands on another server. Stores
// without it (SQLite) serve one process, whose handlers publish to the
// hub themselves.
type sessionListener interface {
	Listen(ctx context.Context, log *slog.Logger, changed func(id string), waiting func() []string) error
}

// Close releases the listener and store of an App that was never served.
func (a *App) Close() error {
	a.served.Close() // and the listener under it
	if a.mserver != nil {
		a.mserver.ln.Close()
	}
	return a.store.Close()
}

// sweep deletes sessions that ended more than login.Retention ago,
// refresh tokens past their expiry, devices that ended or expired more
// than devices.Retention ago and audit entries older than AuditRetention,
// so lookups stay cheap and old data does not pile up.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := a.cfg.Now().UTC()
		// Marked before the delete, so every expired session is counted
		// (once: the mark is a state change) before it can be deleted.
		expired, err := a.store.ExpireSessions(ctx, now)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("mark expired login sessions", "err", err)
		}
		if a.metrics != nil && expired > 0 {
			a.metrics.SessionsExpired(expired)
		}
		n, err := a.store.DeleteEndedSessions(ctx, now.Add(-login.Retention))
		if err != nil && ctx.Err() == nil {
			a.log.Warn("sweep login sessions", "err", err)
		}
		m, err := a.store.DeleteExpiredRefreshTokens(ctx, now)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("sweep refresh tokens", "err", err)
		}
		d, err := a.store.DeleteOldDevices(ctx, devices.SweepCutoff(now))
		if err != nil && ctx.Err() == nil {
			a.log.Warn("sweep devices", "err", err)
		}
		k, err := a.store.DeleteAuditBefore(ctx, now.Add(-a.cfg.AuditRetention))
		if err != nil && ctx.Err() == nil {
			a.log.Warn("sweep audit log", "err", err)
		}
		if n+m+d+k > 0 {
			a.log.Debug("swept", "sessions", n, "refresh_tokens", m, "devices", d, "audit_entries", k)
		}
	}
}

// Demo accounts: printed on start so a first-time user can try the flow.
var demoUsers = []struct{ username, display, password string }{
	{"alice", "Alice Chen", "alice-demo"},
	{"bob", "Bob Martin", "bob-demo"},
}

func (a *App) createDemoUsers(ctx context.Context) error {
	n, err := a.store.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	var created []string
	for _, d := range demoUsers {
		_, err := a.accounts.Add(ctx, d.username, d.display, d.password)
		if errors.Is(err, account.ErrUsernameTaken) {
			continue // another server sharing the database created it just now
		}
		if err != nil {
			return fmt.Errorf("create demo user %s: %w", d.username, err)
		}
		created = append(created, d.username)
	}
	if len(created) > 0 {
		a.log.Warn("created demo accounts; for trying qrlogin only, never in production", "users", strings.Join(created, ", "))
	}
	return nil
}

// PrintBanner writes what a person starting the server needs to know.
func (a *App) PrintBanner(w io.Writer) {
	fmt.Fprintf(w, "qrlogin server listening on %s\n", a.ln.Addr())
	fmt.Fprintf(w, "Phones open:   %s/m   (the QR codes point here)\n", a.url)
	if a.cfg.Demo {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var lines []string
		for _, d := range demoUsers {
			if _, err := a.store.UserByUsername(ctx, d.username); err == nil {
				lines = append(lines, fmt.Sprintf("  %-6s password %s", d.username, d.password))
			}
		}
		if len(lines) > 0 {
			fmt.Fprintln(w, "DEMO ONLY — these accounts are for trying qrlogin, never for real use:")
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
		}
	}
}
