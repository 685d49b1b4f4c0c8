package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-contrib/sse"
	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/shared/api"
)

// DefaultPingInterval is how often an idle event stream carries a comment
// when Config.PingInterval is 0: often enough that proxies with a 60 s
// read timeout keep it open.
const DefaultPingInterval = api.PingInterval * time.Second

// Write deadlines of event streams. Variables so tests can shorten them.
var (
	// eventWriteTimeout bounds each write to an event stream, so a
	// client that stops reading cannot hold the stream until its
	// session expires.
	eventWriteTimeout = 10 * time.Second
	// pingWriteTimeout bounds a ping's write, shorter: the wheel writes
	// a slot's pings one after another, and a client that stopped reading
	// must not hold up the others' for long.
	pingWriteTimeout = 2 * time.Second
)

// eventStream writes server-sent events (the WHATWG HTML "server-sent
// events" format), encoded by Gin's own encoder, to one response.
type eventStream struct {
	w  io.Writer
	rc *http.ResponseController
}

// beginEventStream answers c with 200 and an event stream's headers, and
// returns the stream. The server's read timeout would end it: it is
// lifted (each write sets its own write deadline).
func beginEventStream(c *gin.Context) *eventStream {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	c.Header("Content-Type", api.EventStreamType)
	c.Header("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Status(http.StatusOK)
	return &eventStream{w: c.Writer, rc: rc}
}

// send writes one event, its data as JSON, and flushes it to the client.
func (e *eventStream) send(event string, data any) error {
	var b bytes.Buffer
	if err := sse.Encode(&b, sse.Event{Event: event, Data: data}); err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	return e.write(b.String(), eventWriteTimeout)
}

// ping writes a comment line, which clients ignore and which keeps idle
// proxies from closing the stream.
func (e *eventStream) ping() error { return e.write(": ping\n\n", pingWriteTimeout) }

func (e *eventStream) write(frame string, timeout time.Duration) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(timeout))
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
	var sess login.Session
	var ok bool
	offStack(func() { sess, ok = s.desktopSession(c) })
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
		if w, ok = s.waits.hold(id, waitStream); !ok {
			s.writeError(c, errTooManyWaits)
			return
		}
		defer s.waits.release(w)
	}

	defer s.abortOnPanic(c)

	// The wheel writes pings from its own goroutine from the start, so
	// every write of the handler's goes through pd.
	pd := s.pings.start(beginEventStream(c), s.ping)
	defer pd.stop()
	ctx := c.Request.Context()

	var last api.Status
	// report sends sess's status (or tokens) unless always is false and
	// the status did not change. It returns false when the stream is over.
	report := func(sess login.Session, always bool) bool {
		_, body, delivered, err := s.pollAnswer(ctx, sess, c.ClientIP())
		// Recorded once the event is written (or failed to be).
		defer s.recordDelivery(ctx, delivered)
		if err != nil {
			s.streamError(c, pd, err)
			return false
		}
		resp, ok := body.(api.SessionStatusResponse)
		if !ok {
			s.streamError(c, pd, fmt.Errorf("status answer of type %T", body))
			return false
		}
		if !always && resp.Status == last && resp.Tokens == nil {
			return true
		}
		last = resp.Status
		if err := pd.send(api.EventStatus, resp); err != nil {
			s.streamGone(c, err)
			return false
		}
		return resp.Status == api.StatusPending || resp.Status == api.StatusScanned
	}
	var more bool
	offStack(func() { more = report(sess, true) })
	if !more || w == nil || isClosed(s.closing) {
		return
	}

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
		case <-pd.failed:
			s.streamGone(c, pd.err)
			return
		}
		if woken || closing {
			unsubscribe()
			changed, unsubscribe = s.hub.Subscribe(id)
			var err error
			if sess, err = s.store.Session(ctx, id); err != nil {
				s.streamError(c, pd, fmt.Errorf("reload login session: %w", err))
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

// offStack runs f on a goroutine of its own and waits for it, passing a
// panic on. A held stream's goroutine then parks, for minutes, with the
// stack its deepest call grew it to: the store's driver and the JSON of
// the first event, run here instead, would leave each of 10,000 waiting
// streams holding about 8 KB more.
func offStack(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// pingSlots is how many slots one ping interval is divided into: a ping
// is sent up to a slot (250 ms of 15 s) late.
const pingSlots = 60

// pingWheel writes the pings of held event streams. The streams whose
// pings fall due in the same slot are pinged one after another by one
// timer's goroutine: 10,000 idle streams cost one timer and one wake-up
// per slot, and a write each, instead of a wake-up of every stream's own
// goroutine per ping, which the scheduler and epoll otherwise spend most
// of the idle server's CPU on. Slots are short enough that each holds only
// a few hundred streams.
type pingWheel struct {
	mu    sync.Mutex
	slots map[int64][]*pinged // by the slot's end, Unix nanoseconds
}

// pinged is one stream on the wheel. Its mutex orders the wheel's pings
// with the stream's own events, so the two never write at once.
type pinged struct {
	ev    *eventStream
	every time.Duration

	mu      sync.Mutex
	stopped bool
	// failed is closed when a ping could not be written: the client is
	// gone, and the stream's handler ends.
	failed chan struct{}
	err    error
	// tick, when made, gets a signal every tickEvery pings, for a stream
	// that checks something now and then (tickle).
	tick      chan struct{}
	tickEvery int
	pings     int
}

// start puts ev on the wheel, to be pinged every interval until stop.
func (p *pingWheel) start(ev *eventStream, every time.Duration) *pinged {
	return p.startTicking(ev, every, 0)
}

// startTicking is start for a stream that also wants a signal on
// pd.tick every n pings (none when n is 0): a wake-up of its goroutine
// only that often.
func (p *pingWheel) startTicking(ev *eventStream, every time.Duration, n int) *pinged {
	pd := &pinged{ev: ev, every: every, failed: make(chan struct{}), tickEvery: n}
	if n > 0 {
		pd.tick = make(chan struct{}, 1)
	}
	p.schedule(pd)
	return pd
}

// schedule puts pd in the slot that pd.every from now falls in: pinged at
// least pd.every and at most pd.every plus a slot from now.
func (p *pingWheel) schedule(pd *pinged) {
	grain := int64(max(pd.every/pingSlots, time.Millisecond))
	now := time.Now().UnixNano()
	end := (now+int64(pd.every))/grain*grain + grain
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slots == nil {
		p.slots = make(map[int64][]*pinged)
	}
	list, ok := p.slots[end]
	if !ok {
		time.AfterFunc(time.Duration(end-now), func() { p.fire(end) })
	}
	p.slots[end] = append(list, pd)
}

// fire pings the streams of the slot ending at end and schedules their
// next pings.
func (p *pingWheel) fire(end int64) {
	p.mu.Lock()
	list := p.slots[end]
	delete(p.slots, end)
	p.mu.Unlock()
	for _, pd := range list {
		if pd.ping() {
			p.schedule(pd)
		}
	}
}

// ping writes one ping unless the stream has stopped; it reports whether
// the stream goes on.
func (pd *pinged) ping() bool {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.stopped {
		return false
	}
	if err := pd.ev.ping(); err != nil {
		pd.stopped, pd.err = true, err
		close(pd.failed)
		return false
	}
	if pd.pings++; pd.tickEvery > 0 && pd.pings%pd.tickEvery == 0 {
		select {
		case pd.tick <- struct{}{}:
		default: // the last one is not taken yet; one is enough
		}
	}
	return true
}

// send writes an event of the stream's own, never during a ping.
func (pd *pinged) send(event string, data any) error {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return pd.ev.send(event, data)
}

// stop takes the stream off the wheel; no ping is written once it
// returns, so its handler may return.
func (pd *pinged) stop() {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	pd.stopped = true
	// The last write's deadline may have passed while the stream idled:
	// a fresh one lets net/http end the response cleanly, which the
	// client takes for the end of the stream rather than a broken one.
	_ = pd.ev.rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
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
func (s *desktopSessions) streamError(c *gin.Context, pd *pinged, err error) {
	ctx := c.Request.Context()
	if asError(err) == nil && ctx.Err() != nil {
		s.streamGone(c, err)
		return
	}
	status, _, body := s.errorReply(ctx, c.FullPath(), err)
	if status >= 500 {
		lineOf(c).status = status
	}
	if err := pd.send(api.EventError, body); err != nil {
		s.streamGone(c, err)
	}
}

// streamGone notes a stream whose client went away.
func (s streamEnds) streamGone(c *gin.Context, err error) {
	s.log.DebugContext(c.Request.Context(), "event stream ended by the client", slog.Any("err", err))
	lineOf(c).status = 499
}
