package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/shared/api"
)

// DefaultMaxWaiters is the cap on held waits when Config.MaxWaiters is 0.
const DefaultMaxWaiters = 20000

// waitersRetry is the Retry-After of a wait refused by the cap: long
// enough for held waits to end, short enough that a desktop hardly
// notices.
const waitersRetry = 5 * time.Second

// writeGrace is how long a held long-poll's answer may take to write once
// its wait is over.
const writeGrace = 10 * time.Second

// heldWaits are the waits (long-polls and event streams) the server
// holds: at most one per login session, at most max in all. A desktop
// needs only one; more would only let a client holding a poll token tie
// up the server.
type heldWaits struct {
	max     int
	metrics Metrics // the gauges of held waits, by kind

	mu        sync.Mutex
	n         int
	bySession map[string]*heldWait
}

// waitKind is what a held wait is, for the gauges.
type waitKind uint8

const (
	waitLongPoll   waitKind = iota // a desktop's long-poll of its session
	waitStream                     // a desktop's event stream of its session
	waitUserStream                 // an account's event stream (/me/events)
)

// count adds delta to the gauge of held waits of kind k.
func (h *heldWaits) count(k waitKind, delta int) {
	switch k {
	case waitLongPoll:
		h.metrics.DesktopWaiting("longpoll", delta)
	case waitStream:
		h.metrics.DesktopWaiting("stream", delta)
	case waitUserStream:
		h.metrics.UserStreams(delta)
	}
}

// heldWait is one held wait.
type heldWait struct {
	id   string
	kind waitKind
	// bell is rung with wokeDisplaced when a newer wait of the same
	// session takes over: the wait answers (a long-poll) or ends (a
	// stream) at once.
	bell *bell
}

// hold registers a wait of kind on session id, whose bell b is rung with
// wokeDisplaced if a newer wait of the session displaces it, as it rings
// the older one's now. It reports false when the server holds its maximum
// already.
func (h *heldWaits) hold(id string, kind waitKind, b *bell) (*heldWait, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.bySession[id]
	// A wait that displaces another does not add to the load for long.
	if old == nil && h.n >= h.max {
		return nil, false
	}
	if h.bySession == nil {
		h.bySession = make(map[string]*heldWait)
	}
	if old != nil {
		old.bell.ring(wokeDisplaced)
	}
	w := &heldWait{id: id, kind: kind, bell: b}
	h.bySession[id] = w
	h.n++
	h.count(kind, 1)
	return w, true
}

// release ends w's hold.
func (h *heldWaits) release(w *heldWait) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n--
	h.count(w.kind, -1)
	if h.bySession[w.id] == w {
		delete(h.bySession, w.id)
	}
}

func (h *heldWaits) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// errTooManyWaits answers a wait beyond the cap.
var errTooManyWaits = &Error{
	Code:       api.ErrUnavailable,
	Message:    "The server is holding as many waits as it may; try again shortly.",
	RetryAfter: waitersRetry,
}

// pollWait is how much longer a long-poll waiting for the status to leave
// after should wait given sess; 0 means answer now.
func (s *desktopSessions) pollWait(sess login.Session, after api.Status, deadline time.Time) time.Duration {
	if isClosed(s.closing) {
		return 0
	}
	now := s.now()
	st := sess.StatusAt(now)
	left := time.Until(deadline)
	if publicStatus(st) != after || st == login.Consumed || left <= 0 {
		return 0
	}
	if st.Live() {
		// Wake at expiry rather than a whole wait later.
		left = min(left, sess.ExpiresAt.Sub(now)+time.Millisecond)
	}
	return max(left, 0)
}

// holdPoll is the long-poll: it answers at once when it can, otherwise it
// waits for the session to change, its deadline, the session's expiry, a
// newer wait of the same session or shutdown. Its goroutine waits with a
// small stack (see wake.go): the work is longPoll's.
func (s *desktopSessions) holdPoll(c *gin.Context, after api.Status, deadline time.Time) {
	serveHeld(&longPoll{s: s, c: c, after: after, deadline: deadline})
}

// longPoll is one held long-poll.
type longPoll struct {
	s       *desktopSessions
	c       *gin.Context
	holding // alarm is the deadline or the session's expiry

	after    api.Status
	deadline time.Time
	sess     login.Session
}

// open reads the session and answers at once when it can; it reports
// whether the poll waits.
//
//go:noinline
func (p *longPoll) open() bool {
	s, c := p.s, p.c
	// Subscribe before the first read, so that one read serves both the
	// poll token check and the wait: a change after the read still wakes
	// us.
	p.subscribe(s.hub, c.Param("id")) // the key is the session's id
	var ok bool
	offStack(func() { p.sess, ok = s.desktopSession(c) })
	if !ok {
		return false
	}
	left := s.pollWait(p.sess, p.after, p.deadline)
	if left <= 0 {
		offStack(func() { s.answerPoll(c, p.sess) })
		return false
	}
	p.waits = s.waits
	if p.w, ok = s.waits.hold(p.key, waitLongPoll, p.bell); !ok {
		s.writeError(c, errTooManyWaits)
		return false
	}
	// The server's read and write timeouts would cut a long wait short.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(p.deadline.Add(writeGrace))
	p.alarm = time.NewTimer(left)
	p.timer, p.closing, p.gone = p.alarm.C, s.closing, c.Request.Context().Done()
	return true
}

// next acts on what woke the poll and reports whether it waits on; when
// it does not, the poll has been answered.
//
//go:noinline
func (p *longPoll) next(why wake) bool {
	c := p.c
	if c.Request.Context().Err() != nil {
		lineOf(c).status = 499 // the desktop went away; nothing to answer
		return false
	}
	var more bool
	offStack(func() { more = p.update(why) })
	return more
}

// update reads the session again when it was published and either
// answers the poll or sets its timer for the rest of the wait.
func (p *longPoll) update(why wake) bool {
	s, c := p.s, p.c
	if why == wokeChanged || why == wokeClosing {
		p.resubscribe()
		var ok bool
		if p.sess, ok = s.reload(c, p.key); !ok {
			return false
		}
		if left := s.pollWait(p.sess, p.after, p.deadline); left > 0 {
			p.alarm.Reset(left)
			return true
		}
	}
	// Otherwise the wait or the session's life ran out with nothing
	// published since the read, so sess is current (one read per wait is
	// what thousands of waiting desktops cost); or a newer wait took
	// over, which is answered before a publication it may have missed:
	// the newer wait reads the session afresh.
	s.answerPoll(c, p.sess)
	return false
}

// reload reads session id again, answering the request on failure.
func (s *desktopSessions) reload(c *gin.Context, id string) (login.Session, bool) {
	sess, err := s.store.Session(c.Request.Context(), id)
	if err != nil {
		s.writeError(c, fmt.Errorf("reload login session: %w", err))
		return login.Session{}, false
	}
	return sess, true
}

// answerPoll answers a status poll with the session as read.
func (s *desktopSessions) answerPoll(c *gin.Context, sess login.Session) {
	status, body, delivered, err := s.pollAnswer(c.Request.Context(), sess, c.ClientIP())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(status, body)
	s.recordDelivery(c.Request.Context(), delivered)
}

// pollAnswer is the answer to a status poll or the data of a status
// event: the status, or the tokens of a confirmed session for the desktop
// at ip. With tokens it also returns their delivery's audit entry, which
// the caller records once the answer is on its way.
func (s *desktopSessions) pollAnswer(ctx context.Context, sess login.Session, ip string) (int, any, *audit.Entry, error) {
	now := s.now()
	switch st := sess.StatusAt(now); st {
	case login.Consumed:
		return 0, nil, nil, login.ErrConsumed
	case login.Confirmed:
		if sess.ClientID != "" {
			// An OAuth client's session: its tokens (for that client) come
			// from the token endpoint only, never as this API's tokens.
			return http.StatusOK, statusResponse(sess, st), nil, nil
		}
		if err := ctx.Err(); err != nil {
			// The desktop has gone: keep the tokens for its next request
			// rather than hand them to a closed connection.
			return 0, nil, nil, err
		}
		return s.deliver(ctx, sess, ip, now)
	default:
		return http.StatusOK, statusResponse(sess, st), nil, nil
	}
}

// recordDelivery records a delivery's audit entry, if any. It runs after
// the tokens were written: the desktop does not wait for the audit log.
func (s *desktopSessions) recordDelivery(ctx context.Context, e *audit.Entry) {
	if e != nil {
		s.audit.Record(ctx, *e)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
