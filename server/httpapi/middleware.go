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

func requestID(c *gin.Context) string {
	if l, ok := c.Get(lineKey); ok {
		return l.(*requestLine).id
	}
	return ""
}

// requestLine is what the log says of a request.
type requestLine struct {
	id, method, route, clientIP string
	start                       time.Time
	status                      int // when set, overrides the writer's status
}

const lineKey = "request_line"

// lineOf is the request's log line (requestLog runs first on every
// route), for a handler that sets the status to log.
func lineOf(c *gin.Context) *requestLine {
	return c.MustGet(lineKey).(*requestLine)
}

// requestLog gives every request an id (kept from X-Request-ID when it is
// sane) and logs one line per request. It logs the route pattern, never
// the query string, headers or body, so no token or password reaches the
// log.
func (s *Server) requestLog(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-ID")
	if !validRequestID.MatchString(id) {
		id = s.requestIDs.next()
	}
	c.Header("X-Request-ID", id)
	line := &requestLine{id: id, method: c.Request.Method, start: start}
	c.Set(lineKey, line)
	c.Next()
	line.route = c.FullPath()
	if line.route == "" {
		line.route = "(unmatched)"
	}
	line.clientIP = c.ClientIP()
	if line.status == 0 {
		line.status = c.Writer.Status()
	}
	s.logRequest(c.Request.Context(), line, c.Writer.Size())
}

func (s *Server) logRequest(ctx context.Context, l *requestLine, bytes int) {
	level := slog.LevelInfo
	if l.status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(ctx, level, "request",
		slog.String("request_id", l.id),
		slog.String("method", l.method),
		slog.String("route", l.route),
		slog.Int("status", l.status),
		slog.Duration("duration", time.Since(l.start)),
		slog.String("client_ip", l.clientIP),
		slog.Int("bytes", max(bytes, 0)),
	)
}

// recoverJSON turns a panic into a logged 500 with a JSON body.
func (s *Server) recoverJSON(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.ErrorContext(c.Request.Context(), "panic", slog.String("request_id", requestID(c)), slog.Any("panic", r))
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, api.Error{Code: api.ErrInternal, Message: "Internal error; the server has logged it."})
			}
		}
	}()
	c.Next()
}

// limitBody caps every request body.
func limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody)
	}
	c.Next()
}

// noStore keeps API answers (some carry tokens) out of every cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
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
