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
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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

	mu     sync.Mutex
	closed bool
	back   []net.Conn    // answered connections waiting to be accepted again
	out    int           // parked connections not yet released
	zero   chan struct{} // closed when out drops to 0
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
// accepted. Parked connections stay open until they are answered.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	back := l.back
	l.back = nil
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
	l.mu.Unlock()
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
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
	return l.out
}

// Wait blocks until every parked connection has been answered or closed,
// or ctx ends.
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
		return fmt.Errorf("%d parked connections not answered: %w", l.Parked(), ctx.Err())
	}
}

// giveBack queues an answered connection for the http.Server's next
// Accept, or closes it if the listener is closed.
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
// body, which is left out for a HEAD request. The connection then goes back
// to the server for the client's next request, unless the request asked to
// close it, had a body, was followed by pipelined bytes, h says
// "Connection: close" (a server shutting down), or the listener is closed.
func (c *Conn) Reply(status int, h http.Header, body []byte) error {
	defer c.l.release()
	keep := c.keepAlive && !c.l.isClosed() && !asksClose(h)
	if h == nil {
		h = make(http.Header)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if !keep {
		h.Set("Connection", "close")
	}
	var buf bytes.Buffer
	buf.Grow(512 + len(body))
	fmt.Fprintf(&buf, "HTTP/1.1 %03d %s\r\n", status, http.StatusText(status))
	_ = h.Write(&buf) // sorted, and values cleaned of line breaks
	buf.WriteString("\r\n")
	if !c.head {
		buf.Write(body)
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
		c.nc.Close()
		return fmt.Errorf("answer parked request: %w", err)
	}
	if _, err := c.nc.Write(buf.Bytes()); err != nil {
		c.nc.Close()
		return fmt.Errorf("answer parked request: %w", err)
	}
	if !keep {
		return c.nc.Close()
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		c.nc.Close()
		return fmt.Errorf("answer parked request: %w", err)
	}
	c.l.giveBack(c.nc)
	return nil
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
	return c.nc.Close()
}

// Alive reports whether the client still holds the connection open, so
// that nothing is handed to a client that has gone (where the system
// cannot tell, it reports true).
func (c *Conn) Alive() bool { return alive(c.nc) }
