// Package metrics owns the server's Prometheus collectors: what operators
// graph and alert on. It keeps them in a registry of its own (never the
// global default one), served by Handler on the separate listener of
// --metrics-addr.
//
// The packages that measure (server/httpapi, server/oauth, server/app)
// each declare the few methods they call as an interface of their own; a
// nil one means no metrics, so tests and servers without --metrics-addr
// pay nothing. Every method here is cheap enough for the hot paths: the
// series are resolved once in New, so counting is an atomic add with no
// allocation.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The values of the labels with a fixed set of values.
const (
	// Rate limits (label "limit").
	LimitLogin     = "login"      // password sign-ins per client
	LimitLoginUser = "login_user" // failed password sign-ins per username
	LimitCreate    = "create"     // new login sessions per client
	LimitLookup    = "lookup"     // user-code look-ups per client

	// Held desktop waits (label "kind").
	WaitLongPoll = "longpoll"
	WaitStream   = "stream"
)

// Metrics are the server's collectors. Create them with New.
type Metrics struct {
	reg *prometheus.Registry

	created, confirmed, cancelled, expired prometheus.Counter

	signInOK, signInFailed prometheus.Counter
	limited                map[string]prometheus.Counter
	reuse                  prometheus.Counter

	waitLongPoll, waitStream prometheus.Gauge
	userStreams              prometheus.Gauge

	notice   prometheus.Histogram
	requests *prometheus.HistogramVec
}

// New makes the collectors and registers them, with the Go runtime and
// process collectors, in a registry of their own.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{
		reg: reg,
		created: f.counter("qrlogin_login_sessions_created_total",
			"Login sessions created (QR sign-in requests and OAuth device authorizations)."),
		confirmed: f.counter("qrlogin_login_sessions_confirmed_total",
			"Login sessions confirmed on a phone."),
		cancelled: f.counter("qrlogin_login_sessions_cancelled_total",
			"Login sessions cancelled on the phone or withdrawn by the desktop."),
		expired: f.counter("qrlogin_login_sessions_expired_total",
			"Login sessions that expired before their tokens were delivered, counted once, by the sweeper that marks them."),
		reuse: f.counter("qrlogin_refresh_reuse_detected_total",
			"Refresh tokens presented again after rotation; each revoked its whole sign-in."),
		userStreams: f.gauge("qrlogin_user_streams_held",
			"Account event streams (/api/v1/me/events) held open now."),
		notice: f.histogram("qrlogin_notice_latency_seconds",
			"Time from a phone's confirm to the tokens handed to the desktop.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
	}
	signIns := f.counterVec("qrlogin_password_signins_total",
		"Password sign-ins by result: ok, or failed (wrong username or password).", "result")
	m.signInOK = signIns.WithLabelValues("ok")
	m.signInFailed = signIns.WithLabelValues("failed")
	limited := f.counterVec("qrlogin_rate_limited_requests_total",
		"Requests refused by a rate limit, by limit: login, login_user, create, lookup.", "limit")
	m.limited = make(map[string]prometheus.Counter)
	for _, l := range []string{LimitLogin, LimitLoginUser, LimitCreate, LimitLookup} {
		m.limited[l] = limited.WithLabelValues(l)
	}
	waiting := f.gaugeVec("qrlogin_desktops_waiting",
		"Desktops waiting for their login session now, by kind: longpoll or stream.", "kind")
	m.waitLongPoll = waiting.WithLabelValues(WaitLongPoll)
	m.waitStream = waiting.WithLabelValues(WaitStream)
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "qrlogin_http_request_duration_seconds",
		Help: "Duration of HTTP requests by method, route template and status. Held waits and event streams last up to their end.",
		// Up to the long-poll's 30 s; streams beyond fall in +Inf.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"method", "route", "status"})
	reg.MustRegister(m.requests,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the collectors are registered, for scrapes in tests
// and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text (or protobuf) format.
// Collection errors are logged to log and the rest is served.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		// A scraper or two at once; more would only cost CPU.
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	})
}

// SessionCreated counts a new login session.
func (m *Metrics) SessionCreated() { m.created.Inc() }

// SessionConfirmed counts a login session confirmed on a phone.
func (m *Metrics) SessionConfirmed() { m.confirmed.Inc() }

// SessionCancelled counts a login session cancelled or withdrawn.
func (m *Metrics) SessionCancelled() { m.cancelled.Inc() }

// SessionsExpired counts n login sessions found expired.
func (m *Metrics) SessionsExpired(n int) { m.expired.Add(float64(n)) }

// SignIn counts a password sign-in: ok, or failed for a wrong username
// or password.
func (m *Metrics) SignIn(ok bool) {
	if ok {
		m.signInOK.Inc()
	} else {
		m.signInFailed.Inc()
	}
}

// RateLimited counts a request refused by limit (one of the Limit*
// constants; others are not counted).
func (m *Metrics) RateLimited(limit string) {
	if c, ok := m.limited[limit]; ok {
		c.Inc()
	}
}

// RefreshReused counts a refresh token presented again after rotation.
func (m *Metrics) RefreshReused() { m.reuse.Inc() }

// DesktopWaiting adds delta (1 when a wait starts, -1 when it ends) to
// the desktops waiting by kind (WaitLongPoll or WaitStream).
func (m *Metrics) DesktopWaiting(kind string, delta int) {
	switch kind {
	case WaitLongPoll:
		m.waitLongPoll.Add(float64(delta))
	case WaitStream:
		m.waitStream.Add(float64(delta))
	}
}

// UserStreams adds delta (1 when a stream starts, -1 when it ends) to the
// account event streams held.
func (m *Metrics) UserStreams(delta int) { m.userStreams.Add(float64(delta)) }

// NoticeLatency records how long after the phone's confirm the desktop got
// its tokens.
func (m *Metrics) NoticeLatency(d time.Duration) { m.notice.Observe(max(d, 0).Seconds()) }

// Request records an HTTP request's duration. route must be a route
// template (Gin's FullPath), never the raw path, so ids in paths cannot
// make a series each.
func (m *Metrics) Request(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(methodLabel(method), route, statusText(status)).Observe(d.Seconds())
}

// methodLabel is method as a label value: a client may send any method
// name, and each must not make a series of its own.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusTexts are the status codes as label values, made once.
var statusTexts = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 100 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return "other"
}

// factory makes collectors and registers them in reg.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help, label string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help, label string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label})
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}
