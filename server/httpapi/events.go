package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
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

	ping := s.pings.after(s.ping)
	expiry := time.NewTimer(max(sess.ExpiresAt.Sub(s.now())+time.Millisecond, 0))
	defer expiry.Stop()
	for {
		woken, closing := false, false
		select {
		case <-changed:
			woken = true
		case <-expiry.C:
		case <-s.closing:
			closing = true
		case <-w.displaced:
			return // a newer wait of this session took over
		case <-ctx.Done():
			lineOf(c).status = 499
			return
		case <-ping:
			if err := ev.ping(); err != nil {
				s.streamGone(c, err)
				return
			}
			ping = s.pings.after(s.ping)
			continue
		}
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
		expiry.Reset(max(sess.ExpiresAt.Sub(s.now())+time.Millisecond, 0))
	}
}

// pingSlots is how many slots one ping interval is divided into: a ping
// is sent up to a slot (250 ms of 15 s) late.
const pingSlots = 60

// pingWheel wakes held event streams for their pings. The streams whose
// pings fall due in the same slot wait on one channel, closed by one
// timer: 10,000 streams cost one timer and one wake-up per slot instead
// of a ticker each and a wake-up per ping, which the scheduler and epoll
// otherwise spend a third of the idle server's CPU on. Slots are short
// enough that each wake-up writes only a few hundred pings.
type pingWheel struct {
	mu    sync.Mutex
	slots map[int64]chan struct{} // by the slot's end, Unix nanoseconds
}

// after returns a channel closed at the end of the slot that d from now
// falls in: at least d and at most d plus a slot from now.
func (p *pingWheel) after(d time.Duration) <-chan struct{} {
	grain := int64(max(d/pingSlots, time.Millisecond))
	now := time.Now().UnixNano()
	end := (now+int64(d))/grain*grain + grain
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.slots[end]; ok {
		return ch
	}
	if p.slots == nil {
		p.slots = make(map[int64]chan struct{})
	}
	ch := make(chan struct{})
	p.slots[end] = ch
	time.AfterFunc(time.Duration(end-now), func() {
		p.mu.Lock()
		delete(p.slots, end)
		p.mu.Unlock()
		close(ch)
	})
	return ch
}

// streamEnds is how every event stream ends when it cannot end cleanly.
type streamEnds struct{ log *slog.Logger }

// abortOnPanic turns a panic after the stream started into a logged,
// cut connection, so the client sees a broken stream rather than a clean
// end. Before that, the panic goes on to recoverJSON's 500.
func (s streamEnds) abortOnPanic(c *gin.Context) {
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
func (s streamEnds) streamGone(c *gin.Context, err error) {
	s.log.DebugContext(c.Request.Context(), "event stream ended by the client", slog.Any("err", err))
	lineOf(c).status = 499
}
