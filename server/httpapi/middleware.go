package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/shared/api"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 16 << 10

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestIDs makes request ids: a random prefix per process and a
// counter. They need to be unique, not secret, and cost next to nothing.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs { return &requestIDs{prefix: auth.NewID()[:11] + "-"} }

func (r *requestIDs) next() string { return r.prefix + strconv.FormatUint(r.n.Add(1), 36) }

// requestLine is what the log says of a request. It is also the request's
// context: the context the handlers see carries the line, so the request
// id reaches every log line written with it (requestid.Handler) and a
// handler can set the status to log, for one allocation per request.
type requestLine struct {
	context.Context
	id, method, route, clientIP string
	start                       time.Time
	status                      int // when set, overrides the writer's status
}

type lineKey struct{}

// Value answers the request id carrier and the line itself; anything else
// is the parent context's.
func (l *requestLine) Value(key any) any {
	switch key {
	case requestid.CarrierKey, lineKey{}:
		return l
	}
	return l.Context.Value(key)
}

// RequestID implements requestid.Carrier.
func (l *requestLine) RequestID() string { return l.id }

// lineOf is the request's log line (requestLog runs first on every
// route), for a handler that sets the status to log.
func lineOf(c *gin.Context) *requestLine {
	if l, ok := c.Request.Context().Value(lineKey{}).(*requestLine); ok {
		return l
	}
	return &requestLine{} // not under requestLog: nothing logs it
}

// requestLog gives every request an id (kept from X-Request-ID when it is
// sane), puts it in the request's context and logs one line per request.
// It logs the route pattern, never the query string, headers or body, so
// no token or password reaches the log.
type requestLog struct {
	log     *slog.Logger
	ids     *requestIDs
	metrics Metrics
}

// handle keeps its own frame small: it stays on the stack under every
// held event stream and long-poll, whose goroutines then park on stacks
// the garbage collector can halve (see wake.go).
func (m requestLog) handle(c *gin.Context) {
	line := m.begin(c)
	c.Next()
	m.end(c, line)
}

//go:noinline
func (m requestLog) begin(c *gin.Context) *requestLine {
	start := time.Now()
	id := c.GetHeader("X-Request-ID")
	if !validRequestID.MatchString(id) {
		id = m.ids.next()
	}
	c.Header("X-Request-ID", id)
	line := &requestLine{Context: c.Request.Context(), id: id, method: c.Request.Method, start: start}
	c.Request = c.Request.WithContext(line)
	return line
}

//go:noinline
func (m requestLog) end(c *gin.Context, line *requestLine) {
	line.route = c.FullPath()
	if line.route == "" {
		line.route = "(unmatched)"
	}
	line.clientIP = c.ClientIP()
	if line.status == 0 {
		line.status = c.Writer.Status()
	}
	took := time.Since(line.start)
	m.metrics.Request(line.method, line.route, line.status, took)
	level := slog.LevelInfo
	if line.status >= 500 {
		level = slog.LevelError
	}
	m.log.LogAttrs(line, level, "request",
		slog.String("method", line.method),
		slog.String("route", line.route),
		slog.Int("status", line.status),
		slog.Duration("duration", took),
		slog.String("client_ip", line.clientIP),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
	)
}

// recoverJSON turns a panic into a logged 500 with a JSON body.
type recoverJSON struct{ log *slog.Logger }

func (m recoverJSON) handle(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			m.log.ErrorContext(c.Request.Context(), "panic", slog.Any("panic", r))
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, api.Error{Code: api.ErrInternal, Message: "Internal error; the server has logged it."})
			}
		}
	}()
	c.Next()
}

// limitBody caps every request body. Like noStore, it has nothing to do
// after the handler, so it returns rather than calling c.Next (Gin goes on
// down the chain): no frame of its stays under a held request.
func limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody)
	}
}

// noStore keeps API answers (some carry tokens) out of every cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
}

// decodeJSON reads the request body as JSON into v. An empty body is
// allowed when optional is true.
func decodeJSON(c *gin.Context, v any, optional bool) error {
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errorf(api.ErrTooLarge, "The request body is larger than 16 KiB.")
		}
		return errorf(api.ErrInvalidRequest, "The request body could not be read.")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if optional {
			return nil
		}
		return errorf(api.ErrInvalidRequest, "A JSON request body is required.")
	}
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errorf(api.ErrUnsupportedMedia, "The request body must be JSON (Content-Type: application/json).")
		}
	} else {
		return errorf(api.ErrUnsupportedMedia, "The request body must be JSON (Content-Type: application/json).")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return errorf(api.ErrInvalidRequest, "Field "+typeErr.Field+" has the wrong type.")
		}
		return errorf(api.ErrInvalidRequest, "The request body is not valid JSON.")
	}
	if dec.More() {
		return errorf(api.ErrInvalidRequest, "The request body holds more than one JSON value.")
	}
	return nil
}
