package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/park"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Parker takes over the connection of a waiting long-poll, so that no
// goroutine is held while it waits (park.Listener).
type Parker interface {
	Park(w http.ResponseWriter, r *http.Request) (*park.Conn, error)
}

// IsStatusPoll reports whether r is a desktop's status poll: what a
// park.Listener serving directly (park.Direct.Match) should serve on the
// connection of the poll it has just answered. Its answers are small and
// it never streams.
func IsStatusPoll(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/login-sessions/")
	return ok && r.Method == http.MethodGet && strings.HasSuffix(rest, "/status")
}

// answerTimeout bounds the store work of answering a parked poll.
const answerTimeout = 10 * time.Second

// poll is a desktop's long-poll: it waits while the session's status is
// still after, until its deadline, the session's expiry or shutdown.
type poll struct {
	s        *Server
	id       string
	after    api.Status
	deadline time.Time
	sess     login.Session // as last read
}

// waitFor is how much longer the poll waits given sess; 0 means answer now.
func (p *poll) waitFor() time.Duration {
	if isClosed(p.s.closing) {
		return 0
	}
	now := p.s.now()
	st := p.sess.StatusAt(now)
	left := time.Until(p.deadline)
	if publicStatus(st) != p.after || st == login.Consumed || left <= 0 {
		return 0
	}
	if st.Live() {
		left = min(left, p.sess.ExpiresAt.Sub(now)+time.Millisecond)
	}
	return max(left, 0)
}

func (p *poll) reload(ctx context.Context) error {
	sess, err := p.s.store.Session(ctx, p.id)
	if err != nil {
		return fmt.Errorf("reload login session: %w", err)
	}
	p.sess = sess
	return nil
}

// holdPoll waits holding the request, for connections that cannot be
// parked (HTTP/2, or a server without a Parker).
func (s *Server) holdPoll(c *gin.Context, p *poll) {
	// Subscribe before the first read, so that one read serves both the
	// poll token check and the wait: a change after the read still wakes
	// us.
	ch, unsubscribe := s.hub.Subscribe(p.id)
	sess, ok := s.desktopSession(c)
	if !ok {
		unsubscribe()
		return
	}
	p.sess = sess
	ctx := c.Request.Context()
	// The server's WriteTimeout would cut a long wait short.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{})
	for {
		left := p.waitFor()
		if left <= 0 {
			unsubscribe()
			break
		}
		timer := time.NewTimer(left)
		changed := false
		select {
		case <-ch:
			changed = true
		case <-timer.C:
		case <-s.closing:
		case <-ctx.Done():
		}
		timer.Stop()
		unsubscribe()
		if ctx.Err() != nil {
			return // the desktop went away; nothing to answer
		}
		if !changed && !isClosed(s.closing) {
			// The wait or the session's life ran out and no change was
			// published since the read: sess is current, and one read
			// per poll is what thousands of waiting desktops cost.
			break
		}
		ch, unsubscribe = s.hub.Subscribe(p.id)
		if err := p.reload(ctx); err != nil {
			unsubscribe()
			s.writeError(c, err)
			return
		}
	}
	s.answerPoll(c, p.sess)
}

// timerGrain is the grid the waits of parked polls end on: many waiting
// desktops then time out in batches, each batch one wake-up of the
// runtime instead of one per desktop.
const timerGrain = 50 * time.Millisecond

// onGrain is t, or the first multiple of timerGrain after it.
func onGrain(t time.Time) time.Time {
	if r := time.Duration(t.UnixNano() % int64(timerGrain)); r > 0 {
		return t.Add(timerGrain - r)
	}
	return t
}

// cacheFor is how long the session a parked poll answered with is kept
// for the desktop's next poll, which normally follows at once.
const cacheFor = 5 * time.Second

// parkedPoll is a long-poll whose connection is parked: nothing runs for
// it until the session is published, its timer fires or the server shuts
// down (which publishes every waiting session).
//
// After answering with a status it stays subscribed for a few seconds as
// a cache entry: the desktop's next poll takes it over and, as long as
// nothing was published, needs no store read.
type parkedPoll struct {
	poll
	req *parkedRequest // being answered; nil while cached

	mu          sync.Mutex
	state       pollState
	woken       bool        // a wake-up came while not armed
	changed     bool        // a publish came since the last read
	timer       *time.Timer // made once and reset: a desktop waits many times
	due         time.Time   // when the timer is to fire; zero when stopped
	unsubscribe func()
}

// parkedRequest is the request a parked poll answers.
type parkedRequest struct {
	conn   *park.Conn
	header http.Header  // as the middleware set it before parking
	line   *requestLine // logged when answered
}

type pollState int

const (
	pollBusy   pollState = iota // in a handler, or answering
	pollArmed                   // parked and waiting: a wake-up answers
	pollCached                  // answered; kept for the next poll
	pollDone                    // dropped
)

// pollCache holds the parked polls kept for their desktop's next poll.
type pollCache struct {
	mu sync.Mutex
	m  map[string]*parkedPoll
}

// take removes and returns the kept poll of session id, or nil.
func (c *pollCache) take(id string) *parkedPoll {
	c.mu.Lock()
	p := c.m[id]
	delete(c.m, id)
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != pollCached {
		return nil
	}
	p.state = pollBusy
	p.woken = false
	p.stopTimerLocked()
	return p
}

// put keeps p unless it was dropped meanwhile.
func (c *pollCache) put(p *parkedPoll) {
	c.mu.Lock()
	p.mu.Lock()
	if p.state != pollCached {
		p.mu.Unlock()
		c.mu.Unlock()
		return
	}
	if c.m == nil {
		c.m = make(map[string]*parkedPoll)
	}
	old := c.m[p.id]
	c.m[p.id] = p
	p.mu.Unlock()
	c.mu.Unlock()
	if old != nil && old != p {
		old.drop()
	}
}

func (c *pollCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *pollCache) remove(p *parkedPoll) {
	c.mu.Lock()
	if c.m[p.id] == p {
		delete(c.m, p.id)
	}
	c.mu.Unlock()
}

func (s *Server) parkPoll(c *gin.Context, after api.Status, deadline time.Time) {
	p := s.polls.take(c.Param("id"))
	if p != nil && subtle.ConstantTimeCompare(auth.HashToken(bearer(c)), p.sess.PollTokenHash) != 1 {
		p.drop() // answered below, from the store
		p = nil
	}
	if p == nil {
		p = &parkedPoll{poll: poll{s: s, id: c.Param("id")}}
		p.subscribe()
		sess, ok := s.desktopSession(c)
		if !ok {
			p.unsubscribe()
			return
		}
		p.sess = sess
	}
	p.after, p.deadline = after, deadline
	left := p.waitFor()
	if left <= 0 {
		p.unsubscribe()
		s.answerPoll(c, p.sess)
		return
	}
	// The header map is ours once the connection is: net/http and gin
	// never touch a hijacked response again.
	r := &parkedRequest{header: c.Writer.Header(), line: lineOf(c)}
	conn, err := s.parker.Park(c.Writer, c.Request)
	if errors.Is(err, park.ErrNotSupported) {
		p.unsubscribe()
		s.holdPoll(c, &p.poll)
		return
	}
	if err != nil {
		p.unsubscribe()
		s.log.DebugContext(c.Request.Context(), "long-poll connection lost", slog.String("request_id", requestID(c)), slog.Any("err", err))
		r.line.status = 499
		return
	}
	r.line.parked = true
	r.conn = conn
	p.req = r
	if !p.arm(left) {
		go p.finish()
	}
}

// subscribe registers for the next publish of the session.
func (p *parkedPoll) subscribe() {
	p.unsubscribe = p.s.hub.SubscribeFunc(p.id, p.published)
}

// arm waits for left, or for the publish subscribed to. It reports false
// when a wake-up came first: the caller answers instead.
func (p *parkedPoll) arm(left time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.woken {
		p.woken = false
		return false
	}
	p.state = pollArmed
	p.startTimerLocked(left)
	return true
}

func (p *parkedPoll) startTimerLocked(d time.Duration) {
	now := time.Now()
	p.due = onGrain(now.Add(d))
	d = p.due.Sub(now)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.expired)
	} else {
		p.timer.Reset(d)
	}
}

func (p *parkedPoll) stopTimerLocked() {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.due = time.Time{}
}

// published is the hub's callback, which must not block.
func (p *parkedPoll) published() { p.wake(false) }

// expired runs on a goroutine of its own when the timer fires.
func (p *parkedPoll) expired() { p.wake(true) }

// wake handles a publish of the session or the timer firing.
func (p *parkedPoll) wake(timer bool) {
	p.mu.Lock()
	if timer && (p.due.IsZero() || time.Now().Before(p.due)) {
		// A run of the timer started before it was stopped or reset.
		p.mu.Unlock()
		return
	}
	if !timer {
		p.changed = true
	}
	switch p.state {
	case pollArmed:
		p.state = pollBusy
		p.stopTimerLocked()
		p.mu.Unlock()
		if timer {
			p.finish() // on the timer's own goroutine
		} else {
			go p.finish()
		}
	case pollCached:
		p.state = pollDone
		p.stopTimerLocked()
		p.mu.Unlock()
		p.unsubscribe()
		p.s.polls.remove(p)
	case pollBusy:
		p.woken = true
		p.mu.Unlock()
	default:
		p.mu.Unlock()
	}
}

// drop ends a kept poll.
func (p *parkedPoll) drop() {
	p.mu.Lock()
	p.state = pollDone
	p.stopTimerLocked()
	p.mu.Unlock()
	p.unsubscribe()
	p.s.polls.remove(p)
}

// finish runs after a wake-up: it waits again if the session is still in
// the status the desktop waits to leave, otherwise it answers.
func (p *parkedPoll) finish() {
	s := p.s
	r := p.req
	// Most wake-ups are timers answered from the session as read; only
	// store work needs a deadline.
	ctx := context.Background()
	var cancel context.CancelFunc
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	withDeadline := func() {
		if cancel == nil {
			ctx, cancel = context.WithTimeout(ctx, answerTimeout)
		}
	}
	for {
		p.mu.Lock()
		changed := p.changed
		p.changed, p.woken = false, false
		p.mu.Unlock()
		if !changed && !isClosed(s.closing) {
			// Timed out with nothing published: sess is current, and the
			// subscription stays valid.
			break
		}
		p.unsubscribe()
		p.subscribe()
		withDeadline()
		if err := p.reload(ctx); err != nil {
			p.unsubscribe()
			p.replyError(ctx, r, err)
			return
		}
		left := p.waitFor()
		if left <= 0 {
			break
		}
		if p.arm(left) {
			return
		}
	}
	now := s.now()
	switch st := p.sess.StatusAt(now); {
	case st == login.Confirmed && !r.conn.Alive():
		// The desktop has gone: keep the tokens for its next poll
		// rather than write them into a closed connection.
		p.unsubscribe()
		s.log.DebugContext(ctx, "client went away", slog.String("request_id", r.line.id))
		r.line.status = 499
		_ = r.conn.Close()
		s.logRequest(ctx, r.line, 0)
	case (st == login.Pending || st == login.Scanned) && !isClosed(s.closing):
		// A status the desktop polls again after: keep the poll for
		// that (before answering, as the next poll follows at once).
		sess := p.sess
		p.keep()
		s.reply(ctx, r, http.StatusOK, statusResponse(sess, st))
	default:
		p.unsubscribe()
		withDeadline()
		status, body, err := s.pollAnswer(ctx, p.sess)
		if err != nil {
			p.replyError(ctx, r, err)
			return
		}
		s.reply(ctx, r, status, body)
	}
}

// keep caches the answered poll for the desktop's next one, unless a
// publish came since its session was read.
func (p *parkedPoll) keep() {
	p.mu.Lock()
	if p.changed || p.woken {
		p.state = pollDone
		p.mu.Unlock()
		p.unsubscribe()
		return
	}
	p.state = pollCached
	p.req = nil
	p.startTimerLocked(cacheFor)
	p.mu.Unlock()
	p.s.polls.put(p)
}

func (p *parkedPoll) replyError(ctx context.Context, r *parkedRequest, err error) {
	status, retry, body := p.s.errorReply(ctx, r.line.id, r.line.route, err)
	if retry != "" {
		r.header.Set("Retry-After", retry)
	}
	p.s.reply(ctx, r, status, body)
}

// reply answers a parked request and logs it.
func (s *Server) reply(ctx context.Context, r *parkedRequest, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		s.log.ErrorContext(ctx, "encode answer", slog.String("request_id", r.line.id), slog.Any("err", err))
		status, data = http.StatusInternalServerError, []byte(`{"error":"internal","message":"Internal error; the server has logged it."}`)
	}
	r.header.Set("Content-Type", "application/json; charset=utf-8")
	if isClosed(s.closing) {
		// Shutting down: a connection given back now would only hold up
		// http.Server.Shutdown until the desktop's next request.
		r.header.Set("Connection", "close")
	}
	r.line.status = status
	// Logged once written: the connection may then serve the desktop's
	// next poll on this goroutine before Reply returns.
	_ = r.conn.Reply(status, r.header, data, func(err error) {
		if err != nil {
			s.log.DebugContext(ctx, "answer not sent", slog.String("request_id", r.line.id), slog.Any("err", err))
			r.line.status = 499
			data = nil
		}
		s.logRequest(ctx, r.line, len(data))
	})
}
