package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/metrics"
)

// validateMetricsAddr checks --metrics-addr: empty (off) or host:port,
// and never where the API listens, where metrics would be public.
func validateMetricsAddr(metricsAddr, addr string) error {
	if metricsAddr == "" {
		return nil
	}
	mh, mp, err := net.SplitHostPort(metricsAddr)
	if err != nil {
		return fmt.Errorf("metrics-addr %q: %w", metricsAddr, err)
	}
	ah, ap, err := net.SplitHostPort(addr)
	if err != nil || mp != ap || mp == "0" {
		return nil // a bad addr is reported on its own; port 0 picks a free port each
	}
	if mh == ah || anyHost(mh) || anyHost(ah) {
		return fmt.Errorf("metrics-addr %q: the API listens there (--addr %q); metrics need an address of their own", metricsAddr, addr)
	}
	return nil
}

// anyHost reports whether host in a listen address means every address.
func anyHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// metricsServer serves /metrics on its own listener, away from the API.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

func newMetricsServer(addr string, m *metrics.Metrics, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(log))
	return &metricsServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// serve answers scrapes until Shutdown; errors other than the shutdown
// are sent on errc.
func (s *metricsServer) serve(errc chan<- error) {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errc <- fmt.Errorf("serve metrics: %w", err)
	}
}

// countedLimiter counts the requests a rate limit refuses.
type countedLimiter struct {
	httpapi.Limiter
	m    *metrics.Metrics
	name string
}

func (l countedLimiter) Allow(key string) (bool, time.Duration) {
	ok, retry := l.Limiter.Allow(key)
	if !ok {
		l.m.RateLimited(l.name)
	}
	return ok, retry
}

// countedFailureLimiter counts the attempts a failure limit refuses.
type countedFailureLimiter struct {
	httpapi.FailureLimiter
	m    *metrics.Metrics
	name string
}

func (l countedFailureLimiter) Hold(key string) (bool, time.Duration, func(bool)) {
	ok, retry, done := l.FailureLimiter.Hold(key)
	if !ok {
		l.m.RateLimited(l.name)
	}
	return ok, retry, done
}

// countLimits makes the limits count what they refuse in m; nil limits
// stay nil (off).
func countLimits(l httpapi.Limits, m *metrics.Metrics) httpapi.Limits {
	if m == nil {
		return l
	}
	wrap := func(lim httpapi.Limiter, name string) httpapi.Limiter {
		if lim == nil {
			return nil
		}
		return countedLimiter{Limiter: lim, m: m, name: name}
	}
	if l.LoginUser != nil {
		l.LoginUser = countedFailureLimiter{FailureLimiter: l.LoginUser, m: m, name: metrics.LimitLoginUser}
	}
	l.Login = wrap(l.Login, metrics.LimitLogin)
	l.Create = wrap(l.Create, metrics.LimitCreate)
	l.Lookup = wrap(l.Lookup, metrics.LimitLookup)
	return l
}
