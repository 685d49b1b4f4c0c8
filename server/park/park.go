// Package park holds the connections of waiting HTTP/1.1 requests without
// a goroutine each. A handler that has to wait (a long-poll) takes its
// connection over with Listener.Park and returns at once; when the answer
// is ready, Conn.Reply writes it and hands the connection back to the
// http.Server through the Listener, so keep-alive survives the wait.
//
// net/http holds a waiting request with two goroutines, their stacks and
// 10 KiB of buffers, about 30 KiB in all; a parked connection is the socket
// and a few hundred bytes, which is what lets one small server hold tens
// of thousands of waiting desktops.
package park

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// ErrNotSupported means the request's connection cannot be taken over
// (HTTP/2, or a ResponseWriter without http.Hijacker); answer it the usual
// way.
var ErrNotSupported = errors.New("park: connection cannot be taken over")

// WriteTimeout bounds writing an answer to a parked connection.
const WriteTimeout = 10 * time.Second

// Listener is a net.Listener for an http.Server that also accepts, again,
// the connections its handlers parked and answered.
type Listener struct {
	inner net.Listener

	startOnce sync.Once
	fresh     chan accepted // from inner.Accept
	ready     chan struct{} // a connection was given back
	done      chan struct{} // closed by Close

	direct *Direct // set by ServeDirect

	mu      sync.Mutex
	closed  bool
	back    []net.Conn            // answered connections waiting to be accepted again
	parked  int                   // parked connections not yet answered
	out     int                   // parked, or being answered (Wait waits for these)
	zero    chan struct{}         // closed when out drops to 0
	reading map[net.Conn]struct{} // answered, waiting for the next request to serve directly
}

type accepted struct {
	c   net.Conn
	err error
}

// NewListener wraps inner. Serve an http.Server on the result.
func NewListener(inner net.Listener) *Listener {
	return &Listener{
		inner: inner,
		fresh: make(chan accepted),
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// Accept returns the next connection: one given back after a parked
// request was answered, or a new one.
func (l *Listener) Accept() (net.Conn, error) {
	l.startOnce.Do(func() { go l.acceptLoop() })
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		if len(l.back) > 0 {
			c := l.back[0]
			l.back[0] = nil
			l.back = l.back[1:]
			if len(l.back) > 0 {
				l.signal()
			}
			l.mu.Unlock()
			return c, nil
		}
		l.mu.Unlock()
		select {
		case <-l.ready:
		case a := <-l.fresh:
			return a.c, a.err
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

// acceptLoop feeds Accept from the inner listener. It accepts the next
// connection only after the last one was taken, so the http.Server's
// back-off after errors still paces it.
func (l *Listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		select {
		case l.fresh <- accepted{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		var ne net.Error
		//lint:ignore SA1019 http.Server retries exactly the errors it calls temporary.
		if err != nil && !(errors.As(err, &ne) && ne.Temporary()) {
			return
		}
	}
}

func (l *Listener) signal() {
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// Close stops accepting and closes the connections given back but not yet
// accepted, and those waiting for a next request to serve directly.
// Parked connections stay open until they are answered.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	back := l.back
	l.back = nil
	for nc := range l.reading {
		// Ends the wait for a next request at once (it then closes).
		_ = nc.SetReadDeadline(time.Unix(1, 0))
	}
	l.mu.Unlock()
	close(l.done)
	for _, c := range back {
		c.Close()
	}
	return l.inner.Close()
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Park takes over the connection of request r, answered through w. The
// handler must return without writing to w; the request is answered later
// with Conn.Reply (or dropped with Conn.Close).
func (l *Listener) Park(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	if r.ProtoMajor != 1 {
		return nil, ErrNotSupported
	}
	l.mu.Lock()
	if l.out == 0 {
		l.zero = make(chan struct{})
	}
	l.out++
	l.parked++
	l.mu.Unlock()
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		l.unpark()
		l.release()
		if errors.Is(err, http.ErrNotSupported) {
			return nil, ErrNotSupported
		}
		return nil, fmt.Errorf("take over connection: %w", err)
	}
	return &Conn{
		l:    l,
		nc:   nc,
		head: r.Method == http.MethodHead,
		// Bytes already read past this request mean a pipelining client,
		// and a request with a body may have some of it still to come
		// (the handler may not have read it all); rather than replay or
		// skip them, answer this request and close.
		keepAlive: !r.Close && r.ProtoAtLeast(1, 1) && r.ContentLength == 0 && rw.Reader.Buffered() == 0,
	}, nil
}

func (l *Listener) unpark() {
	l.mu.Lock()
	l.parked--
	l.mu.Unlock()
}

func (l *Listener) release() {
	l.mu.Lock()
	l.out--
	if l.out == 0 {
		close(l.zero)
	}
	l.mu.Unlock()
}

// Parked is the number of parked connections not yet answered.
func (l *Listener) Parked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.parked
}

func (l *Listener) outstanding() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out
}

// Wait blocks until every parked connection has been answered or closed
// (and any next request served directly, see ServeDirect), or ctx ends.
func (l *Listener) Wait(ctx context.Context) error {
	l.mu.Lock()
	if l.out == 0 {
		l.mu.Unlock()
		return nil
	}
	zero := l.zero
	l.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d parked connections not answered: %w", l.outstanding(), ctx.Err())
	}
}

// giveBack queues a connection for the http.Server's next Accept, or
// closes it if the listener is closed.
func (l *Listener) giveBack(c net.Conn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.back = append(l.back, c)
	l.signal()
	l.mu.Unlock()
}

func (l *Listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Conn is a parked connection. Exactly one of Reply and Close must be
// called, once.
type Conn struct {
	l         *Listener
	nc        net.Conn
	head      bool // a HEAD request: the answer has no body
	keepAlive bool
}

// Reply writes an HTTP/1.1 response: status, h (may be nil; Content-Length,
// Date and, when the connection is not kept, Connection are set here) and
// body, which is left out for a HEAD request or a status without a body.
// written, when not nil, is then called with the write's error, which
// Reply also returns.
//
// The connection is then handed on for the client's next request: back to
// the http.Server, or, with ServeDirect, served on this goroutine first
// when it is a request Direct.Match picks, so Reply may return only after
// that. It is closed instead if the request asked to close it, had a
// body, was followed by pipelined bytes, h says "Connection: close" (a
// server shutting down), or the listener is closed.
func (c *Conn) Reply(status int, h http.Header, body []byte, written func(error)) error {
	defer c.l.release()
	keep := c.keepAlive && !c.l.isClosed() && !asksClose(h)
	if h == nil {
		h = make(http.Header)
	}
	err := writeResponse(c.nc, status, h, body, c.head, keep)
	c.l.unpark()
	if err != nil {
		err = fmt.Errorf("answer parked request: %w", err)
	}
	if written != nil {
		written(err)
	}
	if err != nil || !keep {
		return err
	}
	c.l.handOn(c.nc)
	return nil
}

// writeResponse writes an answer whose whole body is known (leaving the
// body out for a HEAD request), and closes nc unless the connection is
// kept (or the write failed). A kept connection still has the write
// deadline set: whoever writes next sets its own, and it is cleared
// before the connection goes back to the http.Server.
func writeResponse(nc net.Conn, status int, h http.Header, body []byte, head, keep bool) error {
	if bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	if head || !bodyAllowed(status) {
		body = nil
	}
	if !keep {
		h.Set("Connection", "close")
	}
	err := writeHead(nc, status, h, body)
	if err != nil || !keep {
		nc.Close()
	}
	return err
}

// writeHead writes the status line, h with a Date, and then body.
func writeHead(nc net.Conn, status int, h http.Header, body []byte) error {
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	bp := answerBufs.Get().(*[]byte)
	b := append(appendHead((*bp)[:0], status, h), body...)
	err := nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if err == nil {
		_, err = nc.Write(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b
		answerBufs.Put(bp)
	}
	return err
}

var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// appendHead appends the status line and h, sorted by key, without
// invalid keys and with values trimmed and line breaks made spaces as
// http.Header.Write does, but
// without its allocations (this runs for every answered long-poll).
func appendHead(b []byte, status int, h http.Header) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if text := http.StatusText(status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, "\r\n"...)
	var arr [16]string
	keys := arr[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue // dropped, as http.Header.Write does: it could break the head
		}
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			for _, c := range []byte(strings.Trim(v, " \t\r\n")) {
				if c == '\r' || c == '\n' {
					c = ' '
				}
				b = append(b, c)
			}
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// bodyAllowed reports whether an answer with status may have a body
// (RFC 9110: not 1xx, 204 or 304).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// asksClose reports whether h carries the Connection token "close".
func asksClose(h http.Header) bool {
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return true
			}
		}
	}
	return false
}

// Close drops the connection without an answer.
func (c *Conn) Close() error {
	defer c.l.release()
	c.l.unpark()
	return c.nc.Close()
}

// Alive reports whether the client still holds the connection open, so
// that nothing is handed to a client that has gone (where the system
// cannot tell, it reports true).
func (c *Conn) Alive() bool {
	if r, ok := c.nc.(*replayConn); ok && len(r.pending) > 0 {
		return true // it has sent a request
	}
	return alive(c.nc)
}
