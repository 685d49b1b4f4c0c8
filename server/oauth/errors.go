package oauth

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// The error codes of RFC 6749 §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1 and
// RFC 6750 §3.1 that these endpoints answer with.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errInvalidGrant         = "invalid_grant"
	errUnsupportedGrantType = "unsupported_grant_type"
	errInvalidScope         = "invalid_scope"
	errAuthorizationPending = "authorization_pending"
	errSlowDown             = "slow_down"
	errAccessDenied         = "access_denied"
	errExpiredToken         = "expired_token"
	errUnsupportedTokenType = "unsupported_token_type"
	errInvalidToken         = "invalid_token"
	errInsufficientScope    = "insufficient_scope"
	errServerError          = "server_error"
	errTemporarily          = "temporarily_unavailable"
)

// Error is an OAuth error answer: status, code and a description that is
// safe to show.
type Error struct {
	Status      int
	Code        string
	Description string
	// Challenge is the WWW-Authenticate header to send, if any.
	Challenge  string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// ErrorBody is the JSON body of every error answer (RFC 6749 §5.2).
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// badRequest is a 400 with code; most OAuth errors are.
func badRequest(code, desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Description: desc}
}

// basicChallenge asks for HTTP Basic client authentication.
const basicChallenge = `Basic realm="qrlogin", charset="UTF-8"`

// clientError is a failed client authentication: 401, with a Basic
// challenge when the client tried Basic (RFC 6749 §5.2).
func clientError(desc string, triedBasic bool) *Error {
	e := &Error{Status: http.StatusUnauthorized, Code: errInvalidClient, Description: desc}
	if triedBasic {
		e.Challenge = basicChallenge
	}
	return e
}

// fail answers the request with err. Anything but an *Error is internal:
// logged with the request id and answered as server_error.
func (h *Handler) fail(c *gin.Context, err error) {
	var e *Error
	if !errors.As(err, &e) {
		h.log.ErrorContext(c.Request.Context(), "internal error",
			slog.String("route", c.FullPath()), slog.Any("err", err))
		e = &Error{Status: http.StatusInternalServerError, Code: errServerError, Description: "Internal error; the server has logged it."}
	}
	if e.Challenge != "" {
		c.Header("WWW-Authenticate", e.Challenge)
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	c.AbortWithStatusJSON(e.Status, ErrorBody{Error: e.Code, Description: e.Description})
}
