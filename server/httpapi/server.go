// Package httpapi is the HTTP layer of the qrlogin server: the Gin router,
// the JSON API of docs/API.md, authentication of phones and desktops, rate
// limits and request logging. The rules themselves live in server/login
// and server/account; this package adapts them to HTTP.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/qrpng"
	"github.com/qrlogin/qrlogin/server/ratelimit"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

func init() {
	// Gin's debug mode prints every route to stdout; the server logs
	// through slog instead.
	gin.SetMode(gin.ReleaseMode)
}

// AccessTokens signs and verifies access tokens (auth.Issuer).
type AccessTokens interface {
	Sign(userID, amr string) (string, time.Time, error)
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

// Deps are the services the HTTP layer adapts.
type Deps struct {
	Store    store.Store
	Accounts *account.Service
	Tokens   AccessTokens
	Hub      *notify.Hub
	Limits   Limits
	Log      *slog.Logger
	// OAuth, when set, adds the OAuth 2.0 and OpenID Connect endpoints
	// (server/oauth) to the router, under its logging, limits and
	// cross-origin protection.
	OAuth Mounter
}

// Mounter adds a feature's routes to the router.
type Mounter interface {
	Mount(r gin.IRouter)
}

// Server is the HTTP API. Create it with New; serve Handler().
type Server struct {
	cfg        Config
	store      store.Store
	acct       *account.Service
	tokens     AccessTokens
	hub        *notify.Hub
	limits     Limits
	log        *slog.Logger
	waits      heldWaits
	qr         *qrpng.Encoder
	requestIDs *requestIDs
	handler    http.Handler
	https      bool           // reached over HTTPS: see Config.SecureCookies
	phoneCk    string         // the phone cookie's name: see PhoneCookie
	proxies    []netip.Prefix // Config.TrustedProxies
	warnedXFF  atomic.Bool    // the X-Forwarded-For warning was logged

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
	s := &Server{
		cfg:        cfg,
		store:      d.Store,
		acct:       d.Accounts,
		tokens:     d.Tokens,
		hub:        d.Hub,
		limits:     d.Limits,
		log:        d.Log,
		waits:      heldWaits{max: cfg.MaxWaiters},
		requestIDs: newRequestIDs(),
		qr:         qrpng.NewEncoder(),
		closing:    make(chan struct{}),
	}
	if s.hub == nil {
		s.hub = &notify.Hub{}
	}
	s.https = cfg.SecureCookies || strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://")
	s.phoneCk = phoneCookieName
	if s.https {
		s.phoneCk = hostPhoneCookieName
	}
	var err error
	if s.proxies, err = parseProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}

	r := gin.New()
	// Trust X-Forwarded-For only from configured proxies; nil trusts none.
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.Use(s.requestLog, s.recoverJSON, limitBody)
	r.NoRoute(func(c *gin.Context) {
		s.writeError(c, errorf(api.ErrNotFound, "No such endpoint."))
	})
	r.NoMethod(func(c *gin.Context) {
		s.writeError(c, errorf(api.ErrMethodNotAllowed, "Method not allowed on this endpoint."))
	})

	r.GET("/healthz", s.health)
	r.GET("/.well-known/jwks.json", s.jwks)

	v1 := r.Group("/api/v1", noStore)
	s.mountSessions(v1)
	s.mountAuth(v1)
	s.mountPages(r)
	if d.OAuth != nil {
		d.OAuth.Mount(r)
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
	s.handler = s.edge(cop.Handler(r))
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

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func (s *Server) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "health check failed", slog.Any("err", err))
		s.writeError(c, errorf(api.ErrUnavailable, "The store is not reachable."))
		return
	}
	c.JSON(http.StatusOK, api.Health{Status: "ok"})
}

func (s *Server) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, s.tokens.JWKS())
}

// allow applies limiter l to key, answering 429 when it refuses.
func (s *Server) allow(c *gin.Context, l Limiter, key string) bool {
	if l == nil {
		return true
	}
	ok, retry := l.Allow(key)
	if !ok {
		s.writeError(c, rateLimited(retry))
	}
	return ok
}

// clientKey is the rate-limit key of the request's client.
func clientKey(c *gin.Context) string { return ratelimit.Key(c.ClientIP()) }

// rateLimited is the 429 answer for a wait of retry.
func rateLimited(retry time.Duration) *Error {
	e := errorf(api.ErrRateLimited, "Too many requests; try again in "+waitWords(retry)+".")
	e.RetryAfter = retry
	return e
}

// waitWords says a wait in whole seconds, rounded up as in Retry-After:
// "1 second", "2 seconds"; from two minutes on, in whole minutes.
func waitWords(d time.Duration) string {
	secs := int((max(d, time.Second) + time.Second - 1) / time.Second)
	if secs >= 120 {
		return strconv.Itoa((secs+59)/60) + " minutes"
	}
	if secs == 1 {
		return "1 second"
	}
	return strconv.Itoa(secs) + " seconds"
}
