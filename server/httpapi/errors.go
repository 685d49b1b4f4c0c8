package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/ratelimit"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Error is an answer for the client: an api error code and a message that
// is safe to show. Handlers return it; writeError turns it into JSON.
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration // sent as Retry-After when positive
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// statusOf is the one table from error code to HTTP status.
var statusOf = map[string]int{
	api.ErrInvalidRequest:     http.StatusBadRequest,
	api.ErrInvalidCredentials: http.StatusUnauthorized,
	api.ErrUnauthorized:       http.StatusUnauthorized,
	api.ErrForbidden:          http.StatusForbidden,
	api.ErrNotFound:           http.StatusNotFound,
	api.ErrMethodNotAllowed:   http.StatusMethodNotAllowed,
	api.ErrInvalidState:       http.StatusConflict,
	api.ErrExpired:            http.StatusGone,
	api.ErrConsumed:           http.StatusGone,
	api.ErrTooLarge:           http.StatusRequestEntityTooLarge,
	api.ErrUnsupportedMedia:   http.StatusUnsupportedMediaType,
	api.ErrRateLimited:        http.StatusTooManyRequests,
	api.ErrInternal:           http.StatusInternalServerError,
	api.ErrUnavailable:        http.StatusServiceUnavailable,
}

// asError maps domain and store errors to client errors. Anything it does
// not know is internal: logged in full, shown as "internal error".
func asError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, login.ErrInvalidState):
		return errorf(api.ErrInvalidState, "The sign-in request is not in a state that allows this.")
	case errors.Is(err, login.ErrExpired):
		return errorf(api.ErrExpired, "The sign-in request has expired.")
	case errors.Is(err, login.ErrConsumed):
		return errorf(api.ErrConsumed, "The sign-in request has already been used.")
	case errors.Is(err, login.ErrForbidden):
		return errorf(api.ErrForbidden, "The sign-in request was scanned by another user.")
	case errors.Is(err, store.ErrNotFound):
		return errorf(api.ErrNotFound, "Not found.")
	case errors.Is(err, account.ErrInvalidCredentials):
		return errorf(api.ErrInvalidCredentials, "Wrong username or password.")
	}
	return nil
}

// errorWriter is the one place that answers a request with an error. Every
// handler embeds one.
type errorWriter struct{ log *slog.Logger }

// writeError answers the request with err as JSON and aborts the chain.
func (e errorWriter) writeError(c *gin.Context, err error) {
	ctx := c.Request.Context()
	if asError(err) == nil && ctx.Err() != nil {
		// The client went away mid-request (a desktop closing its
		// long-poll): nobody reads the answer and nothing failed. 499 is
		// the usual log status for "client closed request".
		e.log.DebugContext(ctx, "client went away", slog.Any("err", err))
		c.AbortWithStatus(499)
		return
	}
	status, retry, body := e.errorReply(ctx, c.FullPath(), err)
	if retry != "" {
		c.Header("Retry-After", retry)
	}
	c.AbortWithStatusJSON(status, body)
}

// errorReply is the status, Retry-After value and body that answer err.
// An error the client may not see is logged and answered as internal.
func (e errorWriter) errorReply(ctx context.Context, route string, err error) (int, string, api.Error) {
	ae := asError(err)
	if ae == nil {
		e.log.ErrorContext(ctx, "internal error", slog.String("route", route), slog.Any("err", err))
		ae = errorf(api.ErrInternal, "Internal error; the server has logged it.")
	}
	status, ok := statusOf[ae.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	retry := ""
	if ae.RetryAfter > 0 {
		retry = strconv.Itoa(int((ae.RetryAfter + time.Second - 1) / time.Second))
	}
	return status, retry, api.Error{Code: ae.Code, Message: ae.Message}
}

// allow applies limiter l to key, answering 429 when it refuses. A nil
// limiter allows everything.
func (e errorWriter) allow(c *gin.Context, l Limiter, key string) bool {
	if l == nil {
		return true
	}
	ok, retry := l.Allow(key)
	if !ok {
		e.writeError(c, rateLimited(retry))
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
