// Package client is the Go client of the qrlogin HTTP API (docs/API.md).
//
// The desktop app, the end-to-end tests and the load tool all use it. A
// Client needs only a BaseURL; its HTTPClient can be swapped in tests.
// Every non-2xx answer is returned as an *Error carrying the server's code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
)

// Client talks to one qrlogin server. It is safe for concurrent use.
type Client struct {
	// BaseURL is the server's root, e.g. "http://192.168.1.20:8080".
	BaseURL string
	// HTTPClient sends the requests; nil means a client without an overall
	// timeout (long-polls set their own deadlines through ctx).
	HTTPClient *http.Client
	// UserAgent is sent with every request when set.
	UserAgent string
	// StreamIdleTimeout is how long an event stream (Events) may stay
	// silent, not even sending a ping, before it is taken for dead; zero
	// means three of the server's pings (45 s).
	StreamIdleTimeout time.Duration
}

// New returns a Client for the server at baseURL.
func New(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/")}
}

// Error is an error answer from the server.
type Error struct {
	StatusCode int
	Code       string // one of the api.Err* codes
	Message    string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("qrlogin server: %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// maxBody bounds how much of a response the client reads.
const maxBody = 1 << 20

// CreateSession starts a login session (the desktop's first step).
func (c *Client) CreateSession(ctx context.Context, req api.CreateSessionRequest) (*api.CreateSessionResponse, error) {
	var out api.CreateSessionResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/login-sessions", "", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SessionStatus asks for a session's status with the desktop's poll token.
// If after is not empty and wait is positive, the server holds the request
// until the status differs from after or wait runs out (long-poll; the
// server caps wait at api.MaxWait seconds). The response that first reports
// api.StatusConfirmed carries the tokens; later calls fail with code
// api.ErrConsumed.
func (c *Client) SessionStatus(ctx context.Context, id, pollToken string, after api.Status, wait time.Duration) (*api.SessionStatusResponse, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", string(after))
	}
	if secs := int(wait.Round(time.Second) / time.Second); secs > 0 {
		q.Set("wait", strconv.Itoa(secs))
	}
	p := "/api/v1/login-sessions/" + url.PathEscape(id) + "/status"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out api.SessionStatusResponse
	if err := c.do(ctx, http.MethodGet, p, pollToken, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WithdrawSession cancels the desktop's own session.
func (c *Client) WithdrawSession(ctx context.Context, id, pollToken string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/login-sessions/"+url.PathEscape(id), pollToken, nil, nil)
}

// Login signs a user in with username and password (the phone's step).
func (c *Client) Login(ctx context.Context, username, password string) (*api.LoginResponse, error) {
	var out api.LoginResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/auth/login", "", api.LoginRequest{Username: username, Password: password}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Refresh trades a refresh token for a new token pair. The old refresh
// token must not be used again: presenting it twice revokes the chain.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*api.LoginResponse, error) {
	var out api.LoginResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/auth/refresh", "", api.RefreshRequest{RefreshToken: refreshToken}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout revokes refreshToken (and the chain it belongs to).
func (c *Client) Logout(ctx context.Context, accessToken, refreshToken string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/auth/logout", accessToken, api.LogoutRequest{RefreshToken: refreshToken}, nil)
}

// LogoutAll signs the user out everywhere: every access token issued so far
// stops working, and every refresh token and phone sign-in is revoked. It
// needs an access token from a password sign-in (Login); one a desktop got
// through a QR sign-in is refused with api.ErrForbidden.
func (c *Client) LogoutAll(ctx context.Context, accessToken string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/auth/logout-all", accessToken, nil, nil)
}

// Me returns the signed-in user.
func (c *Client) Me(ctx context.Context, accessToken string) (*api.Me, error) {
	var out api.Me
	if err := c.do(ctx, http.MethodGet, "/api/v1/me", accessToken, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SessionInfo returns what a phone shows about a session before confirming.
func (c *Client) SessionInfo(ctx context.Context, accessToken, id string) (*api.SessionInfo, error) {
	return c.sessionInfo(ctx, http.MethodGet, "/api/v1/login-sessions/"+url.PathEscape(id), accessToken)
}

// SessionByCode looks a session up by the user code shown on the desktop.
func (c *Client) SessionByCode(ctx context.Context, accessToken, code string) (*api.SessionInfo, error) {
	return c.sessionInfo(ctx, http.MethodGet, "/api/v1/login-sessions/by-code/"+url.PathEscape(code), accessToken)
}

// Scan marks a session as scanned by the phone's user.
func (c *Client) Scan(ctx context.Context, accessToken, id string) (*api.SessionInfo, error) {
	return c.sessionInfo(ctx, http.MethodPost, "/api/v1/login-sessions/"+url.PathEscape(id)+"/scan", accessToken)
}

// Confirm approves a scanned session.
func (c *Client) Confirm(ctx context.Context, accessToken, id string) (*api.StatusResponse, error) {
	return c.phoneAction(ctx, id, "confirm", accessToken)
}

// Cancel refuses a session from the phone.
func (c *Client) Cancel(ctx context.Context, accessToken, id string) (*api.StatusResponse, error) {
	return c.phoneAction(ctx, id, "cancel", accessToken)
}

// Health reports whether the server is up and its store reachable.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", "", nil, nil)
}

func (c *Client) sessionInfo(ctx context.Context, method, path, accessToken string) (*api.SessionInfo, error) {
	var out api.SessionInfo
	if err := c.do(ctx, method, path, accessToken, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) phoneAction(ctx context.Context, id, action, accessToken string) (*api.StatusResponse, error) {
	var out api.StatusResponse
	if err := c.do(ctx, http.MethodPost, "/api/v1/login-sessions/"+url.PathEscape(id)+"/"+action, accessToken, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// do sends one request. in, when not nil, is sent as JSON; out, when not
// nil, receives the 2xx JSON body.
func (c *Client) do(ctx context.Context, method, path, bearer string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient == nil {
		return http.DefaultClient
	}
	return c.HTTPClient
}

func decodeError(resp *http.Response, data []byte) error {
	e := &Error{StatusCode: resp.StatusCode}
	var body api.Error
	if json.Unmarshal(data, &body) == nil && body.Code != "" {
		e.Code, e.Message = body.Code, body.Message
	} else {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(data))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return e
}
