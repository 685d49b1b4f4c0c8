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
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/qrcode"
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

// Limits are the rate limiters of the endpoints that need them. A nil
// limiter allows everything.
type Limits struct {
	Login     Limiter // per client IP: password sign-ins
	LoginUser Limiter // per username: password sign-ins
	Create    Limiter // per client IP: new login sessions
	Lookup    Limiter // per client IP: user-code look-ups
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
	// SecureCookies marks cookies Secure (when served over TLS).
	SecureCookies bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// RenderQR draws a session's QR code as a data URL; qrcode.DataURL when
	// nil (benchmarks replace it to measure the rest of session creation).
	RenderQR func(content string, size int) (string, error)
}

// Deps are the services the HTTP layer adapts.
type Deps struct {
	Store    store.Store
	Accounts *account.Service
	Tokens   AccessTokens
	Hub      *notify.Hub
	Limits   Limits
	Log      *slog.Logger
	// Parker, when set, parks waiting long-polls instead of holding a
	// goroutine for each; it must be the listener the server serves.
	Parker Parker
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
	parker     Parker
	polls      pollCache
	requestIDs *requestIDs
	handler    http.Handler

	closeOnce sync.Once
	closing   chan struct{} // closed by Shutdown: held long-polls answer now
}

// New builds the server and its router.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RenderQR == nil {
		cfg.RenderQR = qrcode.DataURL
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
		parker:     d.Parker,
		requestIDs: newRequestIDs(),
		closing:    make(chan struct{}),
	}
	if s.hub == nil {
		s.hub = &notify.Hub{}
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
	s.handler = cop.Handler(r)
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Hub is the notifier the server wakes long-polls with.
func (s *Server) Hub() *notify.Hub { return s.hub }

// Waiting is the number of long-polls waiting for a change, held or
// parked (not counting sessions kept for a desktop's next poll).
func (s *Server) Waiting() int { return max(s.hub.Len()-s.polls.len(), 0) }

// Shutdown makes every held or parked long-poll answer at once with the
// current status. Call it before http.Server.Shutdown.
func (s *Server) Shutdown() {
	s.closeOnce.Do(func() {
		close(s.closing)
		// Wakes the parked polls; one subscribing after this sees closing.
		for _, id := range s.hub.Waiting() {
			s.hub.Publish(id)
		}
	})
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
		e := errorf(api.ErrRateLimited, "Too many requests; try again later.")
		e.RetryAfter = retry
		s.writeError(c, e)
	}
	return ok
}
