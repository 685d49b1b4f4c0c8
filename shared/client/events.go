package client

import (
	"bufio"
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
	body   io.ReadCloser
	lines  *bufio.Scanner
	cancel context.CancelFunc
	idle   time.Duration
	watch  *time.Timer
	ended  bool

	mu     sync.Mutex
	silent bool // the idle timer fired
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
	p := "/api/v1/login-sessions/" + url.PathEscape(id) + "/events"
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+p, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("build GET %s: %w", p, err)
	}
	req.Header.Set("Accept", api.EventStreamType)
	req.Header.Set("Authorization", "Bearer "+pollToken)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	idle := c.StreamIdleTimeout
	if idle <= 0 {
		idle = defaultStreamIdle
	}
	s := &EventStream{cancel: cancel, idle: idle}
	// Armed before the request: a server that accepts the connection and
	// never answers is as dead as one that stops sending.
	s.watch = time.AfterFunc(idle, s.timedOut)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		s.watch.Stop()
		cancel()
		if s.wasSilent() {
			return nil, fmt.Errorf("GET %s: %w", p, ErrStreamIdle)
		}
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer s.Close()
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return nil, fmt.Errorf("read GET %s: %w", p, err)
		}
		return nil, decodeError(resp, data)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != api.EventStreamType {
		resp.Body.Close()
		s.Close()
		return nil, fmt.Errorf("GET %s: answered %q, not an event stream", p, mt)
	}
	s.body = resp.Body
	s.lines = bufio.NewScanner(resp.Body)
	s.lines.Buffer(make([]byte, 0, 4096), maxBody)
	return s, nil
}

func (s *EventStream) timedOut() {
	s.mu.Lock()
	s.silent = true
	s.mu.Unlock()
	s.cancel()
}

func (s *EventStream) wasSilent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.silent
}

// Next returns the next status event. It returns io.EOF once the stream
// has ended: after a final status (confirmed with tokens, cancelled,
// expired) or an error event, or when the server ended it early (it shut
// down, or a newer wait of the session took over) — connect again to
// resume. An error event is returned as an *Error with the status the
// same error has as an HTTP answer: api.ErrConsumed (410) means another
// request took the tokens. ErrStreamIdle means the connection went
// silent.
func (s *EventStream) Next() (*api.SessionStatusResponse, error) {
	if s.ended {
		return nil, io.EOF
	}
	event, data, err := s.nextEvent()
	if err != nil {
		s.ended = true
		if s.wasSilent() {
			return nil, ErrStreamIdle
		}
		return nil, err
	}
	switch event {
	case api.EventError:
		s.ended = true
		var e api.Error
		if err := json.Unmarshal(data, &e); err != nil || e.Code == "" {
			return nil, fmt.Errorf("decode error event %q: %w", data, err)
		}
		return nil, &Error{StatusCode: eventErrorStatus(e.Code), Code: e.Code, Message: e.Message}
	default: // api.EventStatus
		var st api.SessionStatusResponse
		if err := json.Unmarshal(data, &st); err != nil {
			s.ended = true
			return nil, fmt.Errorf("decode status event: %w", err)
		}
		return &st, nil
	}
}

// nextEvent reads lines up to the next dispatched status or error event
// (the event stream format of the WHATWG HTML standard: "field: value"
// lines, ":" comments, a blank line ending each event). Other event types
// are skipped, so a newer server may add some.
func (s *EventStream) nextEvent() (string, []byte, error) {
	var event string
	var data []byte
	hasData := false
	for s.lines.Scan() {
		s.watch.Reset(s.idle)
		line := s.lines.Text()
		if line == "" {
			if hasData && (event == api.EventStatus || event == api.EventError) {
				return event, data, nil
			}
			event, data, hasData = "", nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment: the server's ping
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
	if err := s.lines.Err(); err != nil {
		return "", nil, fmt.Errorf("read event stream: %w", err)
	}
	return "", nil, io.EOF
}

// Close ends the stream; calling it again is a no-op.
func (s *EventStream) Close() error {
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
