// Package httpapi is the HTTP layer of the qrlogin server: the Gin router,
// the JSON API of docs/API.md, authentication of phones and desktops, rate
// limits and request logging. The rules themselves live in server/login,
// server/account and server/refresh; this package adapts them to HTTP.
//
// Each feature is a handler type holding only its own dependencies and
// mounting its own routes (Mount): the desktop side of login sessions
// (desktopSessions), the phone side (phoneSessions), accounts and tokens
// (accounts), the account's signed-in devices and their event stream
// (signedInDevices), the phone page (pages), and keys and health (keys,
// health).
// They share small pieces: errorWriter (the one place errors become JSON),
// decodeJSON, the authenticator middleware, and the middleware New puts in
// front of every route.
//
// New builds the whole router. Another feature package (an OAuth
// provider, say) mounts its routes on the same router through
// Deps.Extra: each Mounter's Mount gets the root router after the request
// log (request id in the context, see server/requestid), panic recovery
// and the body limit, and its routes are served behind the same edge
// (Strict-Transport-Security, the X-Forwarded-Proto redirect) and
// cross-origin protection as the API's. Unknown routes get the API's JSON
// 404.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/qrpng"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// AccessTokens signs and verifies access tokens (auth.Issuer).
type AccessTokens interface {
	Sign(userID, amr, sid string) (string, time.Time, error)
	Verify(token string) (auth.Claims, error)
	JWKS() auth.JWKS
	TTL() time.Duration
}

// Limiter is a per-key rate limiter (ratelimit.Limiter).
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// FailureLimiter limits an action by its failures only
// (ratelimit.Limiter): Hold lets an attempt go ahead, done(true) counts
// it.
type FailureLimiter interface {
	Hold(key string) (ok bool, retryAfter time.Duration, done func(counts bool))
}

// Limits are the rate limiters of the endpoints that need them. A nil
// limiter allows everything. Clients are keyed by ratelimit.Key of their
// address: IPv4 by address, IPv6 by /64.
type Limits struct {
	Login     Limiter        // per client: every password sign-in
	LoginUser FailureLimiter // per username: failed password sign-ins
	Create    Limiter        // per client IP: new login sessions
	Lookup    Limiter        // per client IP: user-code look-ups
}

// Config holds the server's settings.
type Config struct {
	// PublicURL is the base URL phones use; verify URLs are built on it.
	PublicURL string
	// SessionTTL is how long a login session lives.
	SessionTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens and phone sessions.
	RefreshTTL time.Duration
	// RefreshMaxAge is how long a sign-in's refresh chain (or phone
	// session) lasts after the sign-in, however often it is refreshed;
	// no limit when zero.
	RefreshMaxAge time.Duration
	// TrustedProxies lists proxies whose X-Forwarded-For is believed.
	TrustedProxies []string
	// SecureCookies says the server itself serves TLS. The server counts as
	// reached over HTTPS when it does or when PublicURL is https:// (a TLS
	// proxy in front): the phone cookie is then __Host-qrlogin_phone and
	// Secure, and every response carries Strict-Transport-Security.
	SecureCookies bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxWaiters caps the waits (long-polls and event streams) held at
	// once; DefaultMaxWaiters when 0.
	MaxWaiters int
	// PingInterval is how often an idle event stream carries a comment;
	// DefaultPingInterval when 0.
	PingInterval time.Duration
}

// Metrics receives what the HTTP layer measures (metrics.Metrics). Every
// call is on a hot path and must be cheap: no allocation.
type Metrics interface {
	// SessionCreated, SessionConfirmed and SessionCancelled count a login
	// session's changes, each once per session.
	SessionCreated()
	SessionConfirmed()
	SessionCancelled()
	// SignIn counts a password sign-in: ok, or failed for a wrong
	// username or password.
	SignIn(ok bool)
	// RefreshReused counts a refresh token presented again after rotation.
	RefreshReused()
	// DesktopWaiting adds delta to the desktops waiting by kind
	// ("longpoll" or "stream").
	DesktopWaiting(kind string, delta int)
	// UserStreams adds delta to the account event streams held.
	UserStreams(delta int)
	// NoticeLatency records the time from a session's confirm to its
	// tokens handed to the desktop.
	NoticeLatency(d time.Duration)
	// Request records a request's duration by its route template.
	Request(method, route string, status int, d time.Duration)
}

// noMetrics measures nothing: the server without --metrics-addr.
type noMetrics struct{}

func (noMetrics) SessionCreated()                            {}
func (noMetrics) SessionConfirmed()                          {}
func (noMetrics) SessionCancelled()                          {}
func (noMetrics) SignIn(bool)                                {}
func (noMetrics) RefreshReused()                             {}
func (noMetrics) DesktopWaiting(string, int)                 {}
func (noMetrics) UserStreams(int)                            {}
func (noMetrics) NoticeLatency(time.Duration)                {}
func (noMetrics) Request(string, string, int, time.Duration) {}

// Mounter is a feature that mounts its routes on a router.
type Mounter interface {
	Mount(r gin.IRouter)
}

// Deps are the services the HTTP layer adapts.
type Deps struct {
	Store    store.Store
	Accounts *account.Service
	Tokens   AccessTokens
	Hub      *notify.Hub
	Limits   Limits
	// Log is where the server logs; the request id is added to every line
	// logged with a request's context (its handler is wrapped with
	// requestid.NewHandler unless it already is).
	Log *slog.Logger
	// Extra are more features mounted on the root router, behind the
	// same middleware as the API (see the package comment).
	Extra []Mounter
	// Metrics receives what the server measures; nil measures nothing.
	Metrics Metrics
	// Audit records security events (audit.Recorder); nil records
	// nothing (audit.Discard).
	Audit interface {
		Record(ctx context.Context, e audit.Entry)
	}
}

// Server is the HTTP API. Create it with New; serve Handler().
type Server struct {
	handler http.Handler
	hub     *notify.Hub
	waits   *heldWaits
	cookie  phoneCookie

	closeOnce sync.Once
	closing   chan struct{} // closed by Shutdown: held waits answer now
}

// New builds the server and its router.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWaiters <= 0 {
		cfg.MaxWaiters = DefaultMaxWaiters
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	log := slog.New(requestid.NewHandler(d.Log.Handler()))
	if d.Hub == nil {
		d.Hub = &notify.Hub{}
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if d.Audit == nil {
		d.Audit = audit.Discard{}
	}
	clockNow := cfg.Now
	now := func() time.Time { return clockNow().UTC() }
	https := cfg.SecureCookies || strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://")
	proxies, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	s := &Server{
		hub:     d.Hub,
		waits:   &heldWaits{max: cfg.MaxWaiters, metrics: d.Metrics},
		cookie:  newPhoneCookie(https),
		closing: make(chan struct{}),
	}
	errs := errorWriter{log: log}
	policy := refresh.Policy{TTL: cfg.RefreshTTL, MaxAge: cfg.RefreshMaxAge}
	mint := minter{tokens: d.Tokens, policy: policy, now: now}
	authn := &authenticator{errorWriter: errs, store: d.Store, tokens: d.Tokens, policy: policy, cookie: s.cookie, now: now, log: log}

	r := gin.New()
	// Trust X-Forwarded-For only from configured proxies; nil trusts none.
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	// Only X-Forwarded-For: Gin would also read X-Real-IP when it is
	// missing or unusable, a header proxies commonly pass on from the
	// client unchanged.
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.Use(requestLog{log: log, ids: newRequestIDs(), metrics: d.Metrics}.handle, recoverJSON{log: log}.handle, limitBody)
	r.NoRoute(func(c *gin.Context) {
		errs.writeError(c, errorf(api.ErrNotFound, "No such endpoint."))
	})
	r.NoMethod(func(c *gin.Context) {
		errs.writeError(c, errorf(api.ErrMethodNotAllowed, "Method not allowed on this endpoint."))
	})

	health{errorWriter: errs, store: d.Store}.Mount(r)
	keys{tokens: d.Tokens}.Mount(r)
	v1 := r.Group("/api/v1", noStore)
	ended := signInsEnded{hub: d.Hub, audit: d.Audit, store: d.Store, now: now}
	pings := newPingWheel(cfg.PingInterval)
	(&desktopSessions{
		errorWriter: errs,
		streamEnds:  streamEnds{log: log},
		log:         log,
		now:         now,
		store:       d.Store,
		hub:         d.Hub,
		waits:       s.waits,
		closing:     s.closing,
		mint:        mint,
		metrics:     d.Metrics,
		create:      d.Limits.Create,
		qr:          qrpng.NewEncoder(),
		publicURL:   cfg.PublicURL,
		ttl:         cfg.SessionTTL,
		pings:       pings,
		audit:       d.Audit,
	}).Mount(v1)
	(&phoneSessions{
		errorWriter: errs,
		now:         now,
		store:       d.Store,
		hub:         d.Hub,
		auth:        authn,
		metrics:     d.Metrics,
		net:         proxies,
		lookup:      d.Limits.Lookup,
		audit:       d.Audit,
	}).Mount(v1)
	(&accounts{
		errorWriter: errs,
		log:         log,
		now:         now,
		store:       d.Store,
		acct:        d.Accounts,
		mint:        mint,
		auth:        authn,
		cookie:      s.cookie,
		metrics:     d.Metrics,
		limits:      d.Limits,
		audit:       d.Audit,
		ended:       ended,
	}).Mount(v1)
	(&signedInDevices{
		errorWriter: errs,
		streamEnds:  streamEnds{log: log},
		now:         now,
		store:       d.Store,
		hub:         d.Hub,
		auth:        authn,
		cookie:      s.cookie,
		ended:       ended,
		waits:       s.waits,
		closing:     s.closing,
		pings:       pings,
	}).Mount(v1)
	pages{errorWriter: errs}.Mount(r)
	for _, m := range d.Extra {
		m.Mount(r)
	}

	// Refuse cross-origin state changes from browsers (a page elsewhere
	// using the phone's cookie). Native clients send no Origin or
	// Sec-Fetch-Site header and pass.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"forbidden","message":"Cross-origin requests are not allowed."}`))
	}))
	e := &edge{log: log, https: https, proxies: proxies, publicURL: cfg.PublicURL}
	s.handler = e.wrap(cop.Handler(r))
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Hub is the notifier the server wakes held waits with.
func (s *Server) Hub() *notify.Hub { return s.hub }

// Waiting is the number of waits (long-polls and event streams) the server
// holds right now.
func (s *Server) Waiting() int { return s.waits.len() }

// Shutdown makes every held wait answer at once with the current status
// (an event stream sends it and ends). Call it before
// http.Server.Shutdown, which waits for them.
func (s *Server) Shutdown() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// PhoneCookie is the name of the cookie that keeps a phone's browser
// signed in: __Host-qrlogin_phone when the server is reached over HTTPS
// (it terminates TLS, or its public URL is https:// behind a TLS proxy),
// qrlogin_phone otherwise. It is chosen once, from the configuration, never
// from request headers. The cookie holds an opaque token stored (hashed)
// like a refresh token in a family of its own kind, so it can be revoked
// and never works as a refresh token.
func (s *Server) PhoneCookie() string { return s.cookie.name }
