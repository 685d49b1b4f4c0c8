package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
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
	// pingWriteTimeout is how long a ping's write may make no progress
	// before the wheel's watchdog cuts it (it does within twice that):
	// the wheel writes a slot's pings one after another, and a client
	// that stopped reading must not hold up the others' for long.
	pingWriteTimeout = 2 * time.Second
)

// eventStream writes server-sent events (the WHATWG HTML "server-sent
// events" format), encoded by Gin's own encoder, to one response.
type eventStream struct {
	w  io.Writer
	rc *http.ResponseController
}

// beginEventStream answers c with 200 and an event stream's headers, and
// returns the stream. The server's read and write timeouts would end it:
// they are lifted (events set their own write deadline, and the ping
// wheel watches its pings).
func beginEventStream(c *gin.Context) *eventStream {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	c.Header("Content-Type", api.EventStreamType)
	c.Header("X-Accel-Buffering", "no") // nginx: pass each event on at once
	c.Status(http.StatusOK)
	return &eventStream{w: c.Writer, rc: rc}
}

// send writes one event, its data as JSON, and flushes it to the client,
// within eventWriteTimeout.
func (e *eventStream) send(event string, data any) error {
	var b bytes.Buffer
	if err := sse.Encode(&b, sse.Event{Event: event, Data: data}); err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	_ = e.rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
	defer func() { _ = e.rc.SetWriteDeadline(time.Time{}) }()
	return e.write(b.String())
}

// ping writes a comment line, which clients ignore and which keeps idle
// proxies from closing the stream. The wheel's watchdog bounds it.
func (e *eventStream) ping() error { return e.write(": ping\n\n") }

func (e *eventStream) write(frame string) error {
	if _, err := io.WriteString(e.w, frame); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := e.rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

// finish gives what net/http writes to end the response a fresh deadline,
// so that a client that stopped reading cannot hold the handler's end.
func (e *eventStream) finish() {
	_ = e.rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
}

// sessionEvents is the desktop's event stream: the session's status at
// once, then each change, until the session ends (confirmed with its
// tokens, cancelled or expired), a newer wait of the same session takes
// over, the client goes away or the server shuts down. Its goroutine waits
// with a small stack (see wake.go): the work is sessionStream's.
func (s *desktopSessions) sessionEvents(c *gin.Context) {
	defer s.abortOnPanic(c)
	serveHeld(&sessionStream{s: s, c: c})
}

// sessionStream is one desktop's held event stream.
type sessionStream struct {
	s       *desktopSessions
	c       *gin.Context
	holding // w is nil for a stream that only reports the end; alarm is the session's expiry

	sess login.Session
	last api.Status // the status last sent
}

// open checks the poll token, starts the stream with the session's
// status and reports whether the stream waits for more.
//
//go:noinline
func (st *sessionStream) open() bool {
	s, c := st.s, st.c
	// Subscribe before the first read, as the long-poll does. The key is
	// the session's id.
	st.subscribe(s.hub, c.Param("id"))
	var ok bool
	offStack(func() { st.sess, ok = s.desktopSession(c) })
	if !ok {
		return false
	}
	status := st.sess.StatusAt(s.now())
	if status == login.Consumed {
		s.writeError(c, login.ErrConsumed)
		return false
	}
	// Only a stream that will wait counts against the cap; one that can
	// only report the end never waits.
	if status == login.Pending || status == login.Scanned {
		st.waits = s.waits
		if st.w, ok = s.waits.hold(st.key, waitStream, st.bell); !ok {
			s.writeError(c, errTooManyWaits)
			return false
		}
	}
	// The wheel writes pings from its own goroutine from the start, so
	// every write of the stream's goes through pd.
	st.pd = s.pings.start(beginEventStream(c), st.bell)
	var more bool
	offStack(func() { more = st.report(true) })
	if !more || st.w == nil || isClosed(s.closing) {
		return false
	}
	st.alarm = time.NewTimer(max(st.sess.ExpiresAt.Sub(s.now())+time.Millisecond, 0))
	st.timer, st.closing, st.gone = st.alarm.C, s.closing, c.Request.Context().Done()
	return true
}

// next acts on what woke the stream and reports whether it goes on.
//
//go:noinline
func (st *sessionStream) next(why wake) bool {
	s, c := st.s, st.c
	switch why {
	case wokeDisplaced:
		return false // a newer wait of this session took over
	case wokeGone:
		lineOf(c).status = 499
		return false
	case wokeFailed:
		s.streamGone(c, st.pd.err)
		return false
	}
	closing := why == wokeClosing
	if why == wokeChanged || closing {
		st.resubscribe()
	}
	var more bool
	offStack(func() { more = st.update(why == wokeChanged || closing, closing) })
	// On shutdown the client gets the current status, then the end of
	// the stream, and connects again (to another server).
	if !more || closing {
		return false
	}
	st.alarm.Reset(max(st.sess.ExpiresAt.Sub(s.now())+time.Millisecond, 0))
	return true
}

// update reads the session again when reload is set and reports its
// status (always when always is set, else when it changed). It returns
// false when the stream is over.
func (st *sessionStream) update(reload, always bool) bool {
	if reload {
		sess, err := st.s.store.Session(st.c.Request.Context(), st.key)
		if err != nil {
			st.s.streamError(st.c, st.pd, fmt.Errorf("reload login session: %w", err))
			return false
		}
		st.sess = sess
	}
	return st.report(always)
}

// report sends the session's status (or tokens) unless always is false
// and the status did not change. It returns false when the stream is
// over.
func (st *sessionStream) report(always bool) bool {
	s, c := st.s, st.c
	ctx := c.Request.Context()
	_, body, delivered, err := s.pollAnswer(ctx, st.sess, c.ClientIP())
	// Recorded once the event is written (or failed to be).
	defer s.recordDelivery(ctx, delivered)
	if err != nil {
		s.streamError(c, st.pd, err)
		return false
	}
	resp, ok := body.(api.SessionStatusResponse)
	if !ok {
		s.streamError(c, st.pd, fmt.Errorf("status answer of type %T", body))
		return false
	}
	if !always && resp.Status == st.last && resp.Tokens == nil {
		return true
	}
	st.last = resp.Status
	if err := st.pd.send(api.EventStatus, resp); err != nil {
		s.streamGone(c, err)
		return false
	}
	return resp.Status == api.StatusPending || resp.Status == api.StatusScanned
}

// pingSlots is how many slots one ping interval is divided into: a ping
// is sent up to a slot (1 s of 15 s) late.
const pingSlots = 15

// pingWheel writes the pings of held event streams. Each stream sits in
// one of pingSlots slots for its whole life; one timer at a time walks the
// slots, and the streams of a slot are pinged one after another by that
// timer's goroutine. 10,000 idle streams then cost a wake-up a slot and a
// write each, instead of a wake-up of every stream's own goroutine per
// ping and a timer each, which the scheduler and epoll otherwise spend
// most of an idle server's CPU on.
//
// Pings are written without a write deadline of their own (arming and
// then firing one per ping was a fifth of the idle CPU): instead a
// watchdog cuts a ping write that has made no progress for
// pingWriteTimeout, so a client that stopped reading holds up the rest of
// its slot only that long.
type pingWheel struct {
	every time.Duration
	grain time.Duration // every / pingSlots, at least a millisecond
	stuck time.Duration // pingWriteTimeout
	// epoch is when turn 0 was: turns are counted on the monotonic
	// clock, so a change of the wall clock moves no ping.
	epoch time.Time

	mu    sync.Mutex
	slots [pingSlots][]*pinged
	n     int  // streams in slots, stopped ones included until dropped
	armed bool // the timer of the next slot is set

	// writing is the ping being written and how many have been; the
	// watchdog compares the two between its checks.
	writing  atomic.Pointer[pinged]
	progress atomic.Uint64
}

func newPingWheel(every time.Duration) *pingWheel {
	return &pingWheel{
		every: every,
		grain: max(every/pingSlots, time.Millisecond),
		stuck: pingWriteTimeout,
		epoch: time.Now(),
	}
}

// pinged is one stream on the wheel. Its mutex orders the wheel's pings
// with the stream's own events, so the two never write at once.
type pinged struct {
	ev  *eventStream
	due time.Time // not pinged before

	// bell is rung with wokeFailed when a ping could not be written (the
	// client is gone, and the stream's handler ends), and with wokeTick
	// every tickEvery pings when that is set.
	bell *bell

	mu        sync.Mutex
	stopped   bool
	err       error // of the ping that failed
	tickEvery int
	pings     int
}

// start puts ev on the wheel, to be pinged every interval until stop; b
// is rung if a ping fails.
func (p *pingWheel) start(ev *eventStream, b *bell) *pinged { return p.startTicking(ev, b, 0) }

// startTicking is start for a stream that also wants b rung with
// wokeTick every n pings (none when n is 0): a wake-up of its goroutine
// only that often.
func (p *pingWheel) startTicking(ev *eventStream, b *bell, n int) *pinged {
	pd := &pinged{ev: ev, bell: b, tickEvery: n}
	now := time.Now()
	pd.due = now.Add(p.every)
	// The slot whose turn is the first at or after due.
	slot := int(p.turnAt(pd.due) % pingSlots)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.slots[slot] = append(p.slots[slot], pd)
	p.n++
	if !p.armed {
		p.armed = true
		p.arm(p.turnAt(now.Add(1)))
	}
	return pd
}

// catchUp is the turn to fire after turn when the clock is at turn now.
// Turns a walk ran past are fired at once, but after a stall of a whole
// interval (a suspended process) the wheel goes on from now: every stream
// is pinged once as its slot comes round, rather than once for every
// interval missed.
func catchUp(turn, now int64) int64 {
	if now-turn >= pingSlots {
		return now
	}
	return turn
}

// turnAt is the first turn at or after t.
func (p *pingWheel) turnAt(t time.Time) int64 {
	since := int64(t.Sub(p.epoch))
	return (since + int64(p.grain) - 1) / int64(p.grain)
}

// arm sets the timer for a slot's turn, the turn-th grain since the
// wheel's epoch: at once when that is past (a walk that took long
// catches up rather than skipping slots). p.mu is held.
func (p *pingWheel) arm(turn int64) {
	turn = catchUp(turn, p.turnAt(time.Now()))
	at := p.epoch.Add(time.Duration(turn) * p.grain)
	time.AfterFunc(max(time.Until(at), 0), func() { p.fire(turn, at) })
}

// fire pings the streams of the slot whose turn it is, drops the stopped
// ones, and sets the timer for the next turn while any stream is left.
func (p *pingWheel) fire(turn int64, at time.Time) {
	slot := int(turn % pingSlots)
	p.mu.Lock()
	list := p.slots[slot]
	p.slots[slot] = nil
	p.mu.Unlock()

	watch := p.watch()
	kept := list[:0]
	for _, pd := range list {
		if pd.pingAt(at, p) {
			kept = append(kept, pd)
		}
	}
	watch.stop()
	clear(list[len(kept):])

	p.mu.Lock()
	defer p.mu.Unlock()
	// Streams started during the walk went to the slot's new list.
	p.slots[slot] = append(kept, p.slots[slot]...)
	p.n -= len(list) - len(kept)
	if p.n == 0 {
		p.armed = false
		return
	}
	p.arm(turn + 1)
}

// watch starts the watchdog of one slot's walk: every p.stuck it cuts the ping being written if no ping finished since its last look.
func (p *pingWheel) watch() *watchdog {
	w := &watchdog{p: p, last: p.progress.Load()}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(w.p.stuck, w.look)
	return w
}

// watchdog is the watch over one slot's walk.
type watchdog struct {
	p *pingWheel

	mu      sync.Mutex
	t       *time.Timer
	last    uint64
	stopped bool
}

func (w *watchdog) look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	now := w.p.progress.Load()
	if pd := w.p.writing.Load(); pd != nil && now == w.last {
		// The write returns with an error and the stream ends.
		_ = pd.ev.rc.SetWriteDeadline(time.Now())
	}
	w.last = now
	w.t.Reset(w.p.stuck)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// pingAt writes one ping if the stream is due at at; it reports whether
// the stream stays on the wheel.
func (pd *pinged) pingAt(at time.Time, p *pingWheel) bool {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.stopped {
		return false
	}
	if at.Before(pd.due) {
		return true // started less than an interval ago
	}
	p.writing.Store(pd)
	err := pd.ev.ping()
	p.writing.Store(nil)
	p.progress.Add(1)
	if err != nil {
		pd.stopped, pd.err = true, err
		pd.bell.ring(wokeFailed)
		return false
	}
	pd.due = at.Add(p.every - p.grain/2)
	if pd.pings++; pd.tickEvery > 0 && pd.pings%pd.tickEvery == 0 {
		pd.bell.ring(wokeTick) // one not taken yet is enough
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
	pd.ev.finish()
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
