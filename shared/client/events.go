package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tmaxmax/go-sse"

	"github.com/qrlogin/qrlogin/shared/api"
)

// ErrStreamIdle is returned by EventStream.Next when the server sent
// nothing, not even a ping, for longer than the client's
// StreamIdleTimeout: the connection is taken for dead.
var ErrStreamIdle = errors.New("event stream silent for too long")

// defaultStreamIdle is the idle timeout when Client.StreamIdleTimeout is
// zero: three of the server's pings missed.
const defaultStreamIdle = 3 * api.PingInterval * time.Second

// EventStream is an open event stream of one login session, from
// Client.Events. Read it with Next from one goroutine; Close may be called
// from any.
type EventStream struct {
	s *sseStream
}

// Events opens the event stream of a session with the desktop's poll
// token (GET /api/v1/login-sessions/{id}/events). Its first event is the
// session's current status; one follows for each change. The status event
// that first reports api.StatusConfirmed carries the tokens.
//
// An error answer before the stream starts is an *Error: e.g. 401
// unauthorized, 404 not_found (an unknown session, or a server without
// event streams), 410 consumed or 503 unavailable.
func (c *Client) Events(ctx context.Context, id, pollToken string) (*EventStream, error) {
	s, err := c.openStream(ctx, "/api/v1/login-sessions/"+url.PathEscape(id)+"/events", pollToken)
	if err != nil {
		return nil, err
	}
	return &EventStream{s: s}, nil
}

// Next returns the next status event. It returns io.EOF once the stream
// has ended: after a final status (confirmed with tokens, cancelled,
// expired) or an error event, or when the server ended it early (it shut
// down, or a newer wait of the session took over) — connect again to
// resume. An error event is returned as an *Error with the status the
// same error has as an HTTP answer: api.ErrConsumed (410) means another
// request took the tokens. ErrStreamIdle means the connection went
// silent.
func (es *EventStream) Next() (*api.SessionStatusResponse, error) {
	for {
		event, data, err := es.s.next()
		if err != nil {
			return nil, err
		}
		switch event {
		case api.EventError:
			es.s.ended = true
			var e api.Error
			if err := json.Unmarshal(data, &e); err != nil || e.Code == "" {
				return nil, fmt.Errorf("decode error event %q: %w", data, err)
			}
			return nil, &Error{StatusCode: eventErrorStatus(e.Code), Code: e.Code, Message: e.Message}
		case api.EventStatus:
			var st api.SessionStatusResponse
			if err := json.Unmarshal(data, &st); err != nil {
				es.s.ended = true
				return nil, fmt.Errorf("decode status event: %w", err)
			}
			return &st, nil
		}
		// Other event types are skipped, so a newer server may add some.
	}
}

// Close ends the stream; calling it again is a no-op.
func (es *EventStream) Close() error { return es.s.close() }

// WaitRevoked holds the account's event stream (GET /api/v1/me/events)
// with an access token until the server reports that the token's sign-in
// has ended (signed out from the phone, signed out everywhere, password
// changed, account deleted, token reuse), and returns why: Reason is one
// of the api.Reason* values, or one this client does not know yet. A
// sign-in that had already ended when the stream opened is reported at
// once.
//
// Otherwise it returns an error, and the caller decides whether to call
// again:
//   - an *Error before any event: 401 unauthorized means the access token
//     expired or is refused (refresh it, then call again); 404 a server
//     without the stream; 503 unavailable or 429 rate_limited carry
//     RetryAfter;
//   - io.EOF when the server ended the stream without a revocation (it
//     shut down, or a newer stream of the same sign-in took over);
//   - ErrStreamIdle when the connection went silent, or the network's
//     error: call again after a backoff;
//   - ctx's error once ctx ends, which is how a caller stops waiting.
func (c *Client) WaitRevoked(ctx context.Context, accessToken string) (*api.Revoked, error) {
	s, err := c.openStream(ctx, "/api/v1/me/events", accessToken)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	defer s.close()
	for {
		event, data, err := s.next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if event != api.EventRevoked {
			continue // a type a newer server may add
		}
		// The event itself ends the sign-in; data that does not decode
		// only loses the reason.
		var r api.Revoked
		_ = json.Unmarshal(data, &r)
		return &r, nil
	}
}

// sseStream is an open response in the event stream format of the WHATWG
// HTML standard ("server-sent events"), parsed by go-sse and pulled event
// by event, with a watch that takes a connection silent for too long for
// dead. Both event streams of the API are read through it.
type sseStream struct {
	body   io.ReadCloser
	events chan parsed // from the parsing goroutine; closed at the end
	cancel context.CancelFunc
	idle   time.Duration
	watch  *time.Timer
	ended  bool

	mu     sync.Mutex
	silent bool // the idle timer fired
}

// openStream sends GET path with the bearer token and checks that the
// answer is an event stream. An error answer is an *Error.
func (c *Client) openStream(ctx context.Context, path, bearer string) (*sseStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("build GET %s: %w", path, err)
	}
	req.Header.Set("Accept", api.EventStreamType)
	req.Header.Set("Authorization", "Bearer "+bearer)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	idle := c.StreamIdleTimeout
	if idle <= 0 {
		idle = defaultStreamIdle
	}
	s := &sseStream{cancel: cancel, idle: idle}
	// Armed before the request: a server that accepts the connection and
	// never answers is as dead as one that stops sending.
	s.watch = time.AfterFunc(idle, s.timedOut)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		s.watch.Stop()
		cancel()
		if s.wasSilent() {
			return nil, fmt.Errorf("GET %s: %w", path, ErrStreamIdle)
		}
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer s.close()
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return nil, fmt.Errorf("read GET %s: %w", path, err)
		}
		return nil, decodeError(resp, data)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != api.EventStreamType {
		resp.Body.Close()
		s.close()
		return nil, fmt.Errorf("GET %s: answered %q, not an event stream", path, mt)
	}
	s.body = resp.Body
	s.events = make(chan parsed)
	go func() {
		defer close(s.events)
		// Any bytes, a ping's too, show the connection is alive.
		for ev, err := range sse.Read(aliveReader{resp.Body, s}, &sse.ReadConfig{MaxEventSize: maxBody}) {
			select {
			case s.events <- parsed{ev, err}:
			case <-ctx.Done(): // closed
				return
			}
		}
	}()
	return s, nil
}

// parsed is one event, or the error that ended the parse.
type parsed struct {
	ev  sse.Event
	err error
}

// aliveReader resets the stream's idle watch whenever bytes arrive.
type aliveReader struct {
	r io.Reader
	s *sseStream
}

func (a aliveReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.s.watch.Reset(a.s.idle)
	}
	return n, err
}

func (s *sseStream) timedOut() {
	s.mu.Lock()
	s.silent = true
	s.mu.Unlock()
	s.cancel()
}

func (s *sseStream) wasSilent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.silent
}

// next returns the type and data of the next dispatched event. It returns
// io.EOF once the stream has ended, and ErrStreamIdle if it went silent.
func (s *sseStream) next() (string, []byte, error) {
	if s.ended {
		return "", nil, io.EOF
	}
	event, data, err := s.read()
	if err != nil {
		s.ended = true
		if s.wasSilent() {
			return "", nil, ErrStreamIdle
		}
		return "", nil, err
	}
	return event, data, nil
}

// read returns the next dispatched event (comments, the server's pings,
// are not events), or io.EOF at the end of the stream.
func (s *sseStream) read() (string, []byte, error) {
	p, ok := <-s.events
	switch {
	case !ok:
		return "", nil, io.EOF
	case p.err != nil:
		return "", nil, fmt.Errorf("read event stream: %w", p.err)
	}
	return p.ev.Type, []byte(p.ev.Data), nil
}

// close ends the stream; calling it again is a no-op.
func (s *sseStream) close() error {
	s.watch.Stop()
	s.cancel()
	if s.body != nil {
		return s.body.Close()
	}
	return nil
}

// eventErrorStatus is the HTTP status the server gives the error code of
// an error event when it answers a request with it (docs/API.md).
func eventErrorStatus(code string) int {
	switch code {
	case api.ErrExpired, api.ErrConsumed:
		return http.StatusGone
	case api.ErrNotFound:
		return http.StatusNotFound
	case api.ErrUnauthorized:
		return http.StatusUnauthorized
	case api.ErrUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
