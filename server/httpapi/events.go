package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/shared/api"
)

// DefaultPingInterval is how often an idle event stream carries a comment
// when Config.PingInterval is 0: often enough that proxies with a 60 s
// read timeout keep it open.
const DefaultPingInterval = api.PingInterval * time.Second

// eventWriteTimeout bounds each write to an event stream, so a client that
// stops reading cannot hold the stream until its session expires.
const eventWriteTimeout = 10 * time.Second

// eventStream writes server-sent events (the WHATWG HTML "server-sent
// events" format) to one response. Every data line is one line of JSON,
// which has no line breaks.
type eventStream struct {
	w  io.Writer
	rc *http.ResponseController
}

// send writes one event and flushes it to the client.
func (e *eventStream) send(event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	return e.write(fmt.Sprintf("event: %s\ndata: %s\n\n", event, b))
}

// ping writes a comment line, which clients ignore and which keeps idle
// proxies from closing the stream.
func (e *eventStream) ping() error { return e.write(": ping\n\n") }

func (e *eventStream) write(frame string) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
	if _, err := io.WriteString(e.w, frame); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := e.rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

// sessionEvents is the desktop's event stream: the session's status at
// once, then each change, until the session ends (confirmed with its
// tokens, cancelled or expired), a newer wait of the same session takes
// over, the client goes away or the server shuts down.
func (s *desktopSessions) sessionEvents(c *gin.Context) {
	id := c.Param("id")
	// Subscribe before the first read, as the long-poll does.
	changed, unsubscribe := s.hub.Subscribe(id)
	defer func() { unsubscribe() }()
	sess, ok := s.desktopSession(c)
	if !ok {
		return
	}
	st := sess.StatusAt(s.now())
	if st == login.Consumed {
		s.writeError(c, login.ErrConsumed)
		return
	}
	// Only a stream that will wait counts against the cap; one that can
	// only report the end never waits.
	var w *heldWait
	if st == login.Pending || st == login.Scanned {
		if w, ok = s.waits.hold(id); !ok {
			s.writeError(c, errTooManyWaits)
			return
		}
		defer s.waits.release(w)
	}

	defer s.abortOnPanic(c)

	rc := http.NewResponseController(c.Writer)
	// The server's read timeout would end the stream: lift it (and the
	// write timeout, which each write sets for itself).
	_ = rc.SetReadDeadline(time.Time{})
	c.Header("Content-Type", api.EventStreamType)
	c.Header("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Status(http.StatusOK)
	ev := &eventStream{w: c.Writer, rc: rc}
	ctx := c.Request.Context()

	var last api.Status
	// report sends sess's status (or tokens) unless always is false and
	// the status did not change. It returns false when the stream is over.
	report := func(sess login.Session, always bool) bool {
		_, body, err := s.pollAnswer(ctx, sess)
		if err != nil {
			s.streamError(c, ev, err)
			return false
		}
		resp, ok := body.(api.SessionStatusResponse)
		if !ok {
			s.streamError(c, ev, fmt.Errorf("status answer of type %T", body))
			return false
		}
		if !always && resp.Status == last && resp.Tokens == nil {
			return true
		}
		last = resp.Status
		if err := ev.send(api.EventStatus, resp); err != nil {
			s.streamGone(c, err)
			return false
		}
		return resp.Status == api.StatusPending || resp.Status == api.StatusScanned
	}
	if !report(sess, true) || w == nil || isClosed(s.closing) {
		return
	}

	ping := time.NewTicker(s.ping)
	defer ping.Stop()
	for {
		expiry := time.NewTimer(max(sess.ExpiresAt.Sub(s.now())+time.Millisecond, 0))
		woken, closing := false, false
		select {
		case <-changed:
			woken = true
		case <-expiry.C:
		case <-s.closing:
			closing = true
		case <-w.displaced:
			expiry.Stop()
			return // a newer wait of this session took over
		case <-ctx.Done():
			expiry.Stop()
			lineOf(c).status = 499
			return
		case <-ping.C:
			expiry.Stop()
			if err := ev.ping(); err != nil {
				s.streamGone(c, err)
				return
			}
			continue
		}
		expiry.Stop()
		if woken || closing {
			unsubscribe()
			changed, unsubscribe = s.hub.Subscribe(id)
			var err error
			if sess, err = s.store.Session(ctx, id); err != nil {
				s.streamError(c, ev, fmt.Errorf("reload login session: %w", err))
				return
			}
		}
		// On shutdown the client gets the current status, then the end
		// of the stream, and connects again (to another server).
		if !report(sess, closing) || closing {
			return
		}
	}
}

// abortOnPanic turns a panic after the stream started into a logged,
// cut connection, so the client sees a broken stream rather than a clean
// end. Before that, the panic goes on to recoverJSON's 500.
func (s *desktopSessions) abortOnPanic(c *gin.Context) {
	r := recover()
	if r == nil {
		return
	}
	if r == http.ErrAbortHandler || !c.Writer.Written() {
		panic(r)
	}
	s.log.ErrorContext(c.Request.Context(), "panic", slog.Any("panic", r))
	panic(http.ErrAbortHandler)
}

// streamError ends a stream with an error event: the error the status
// endpoint would have answered, as JSON. "consumed" means another request
// took the session's tokens.
func (s *desktopSessions) streamError(c *gin.Context, ev *eventStream, err error) {
	ctx := c.Request.Context()
	if asError(err) == nil && ctx.Err() != nil {
		s.streamGone(c, err)
		return
	}
	status, _, body := s.errorReply(ctx, c.FullPath(), err)
	if status >= 500 {
		lineOf(c).status = status
	}
	if err := ev.send(api.EventError, body); err != nil {
		s.streamGone(c, err)
	}
}

// streamGone notes a stream whose client went away.
func (s *desktopSessions) streamGone(c *gin.Context, err error) {
	s.log.DebugContext(c.Request.Context(), "event stream ended by the client", slog.Any("err", err))
	lineOf(c).status = 499
}
