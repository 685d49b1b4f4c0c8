package park

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Direct has a Listener serve a client's next request itself, on the
// goroutine that has just answered the client's parked request, instead
// of handing the connection back to the http.Server first. A long-poll
// client asks again at once, and its next request then costs no new
// connection goroutine, buffers or hand-offs between goroutines.
//
// Only plain TCP connections are served directly (not TLS). The Listener
// reads the request's header; one that does not arrive whole within
// Wait, is followed by more bytes (a body, a pipelined request), is not a
// bodiless persistent HTTP/1.1 request in origin form, is not valid as
// net/http checks it, or is not picked by Match goes to the http.Server,
// which reads the bytes already read first and answers it as usual.
type Direct struct {
	// Handler serves the requests Match picks: the http.Server's handler.
	Handler http.Handler
	// Match picks the requests served directly. They must be answered
	// with a small body, or parked again; their context is never
	// cancelled, and Flush makes the answer close the connection.
	Match func(*http.Request) bool
	// Wait bounds waiting for the next request; after it, the connection
	// goes back to the http.Server. One second when zero.
	Wait time.Duration
	// Log receives panics of Handler; nil discards them.
	Log *slog.Logger
}

// ServeDirect turns direct serving on. Call it before serving.
func (l *Listener) ServeDirect(d Direct) {
	if d.Wait <= 0 {
		d.Wait = time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	l.direct = &d
}

// maxHeader is the largest request header served directly; larger ones
// go to the http.Server.
const maxHeader = 4 << 10

// maxBuffered is the largest answer body a direct request's writer holds
// before it starts sending it, closing the connection after it.
const maxBuffered = 64 << 10

var headerBufs = sync.Pool{New: func() any { b := make([]byte, maxHeader); return &b }}

// handOn passes on an answered connection that stays open: it serves the
// client's next requests while Direct picks them, then gives the
// connection back to the http.Server.
func (l *Listener) handOn(nc net.Conn) {
	d := l.direct
	tc, ok := plainTCP(nc)
	if d == nil || !ok {
		l.giveBackRead(nc, nil)
		return
	}
	for {
		req := l.readNext(tc, d)
		if req == nil {
			return
		}
		w := &directWriter{nc: tc, header: make(http.Header)}
		if !l.serve(d, w, req) {
			if !w.hijacked {
				tc.Close()
			}
			return
		}
		switch {
		case w.hijacked:
			return
		case w.streaming:
			tc.Close()
			return
		}
		w.complete()
		keep := !l.isClosed() && !asksClose(w.header)
		if err := writeResponse(tc, w.status, w.header, w.body, false, keep); err != nil || !keep {
			return
		}
	}
}

// plainTCP returns the TCP connection under nc, when it is one whose
// bytes can be read here and, if need be, handed on (not TLS).
func plainTCP(nc net.Conn) (*net.TCPConn, bool) {
	if r, ok := nc.(*replayConn); ok {
		if len(r.pending) > 0 {
			return nil, false
		}
		nc = r.TCPConn
	}
	tc, ok := nc.(*net.TCPConn)
	return tc, ok
}

// readNext waits for the client's next request and returns it when it is
// to be served directly. Otherwise it gives the connection back with
// whatever it read of the request, or closes it when the client has gone
// or the listener is closed, and returns nil.
func (l *Listener) readNext(tc *net.TCPConn, d *Direct) *http.Request {
	// The deadline is set before Close can see the connection, so that
	// Close's deadline is not overwritten.
	err := tc.SetReadDeadline(time.Now().Add(d.Wait))
	if !l.startReading(tc) {
		tc.Close()
		return nil
	}
	bp := headerBufs.Get().(*[]byte)
	defer headerBufs.Put(bp)
	buf := *bp
	n, end := 0, -1
	for err == nil && end < 0 && n < len(buf) {
		var m int
		m, err = tc.Read(buf[n:])
		// The header's end may straddle two reads.
		end = bytes.Index(buf[max(n-3, 0):n+m], []byte("\r\n\r\n"))
		if end >= 0 {
			end += max(n-3, 0) + 4
		}
		n += m
	}
	l.stopReading(tc)
	switch {
	case l.isClosed():
		tc.Close()
		return nil
	case end < 0 && n > 0 || end >= 0 && end < n:
		// Incomplete (slow, too long), or followed by a body or a
		// pipelined request: the http.Server reads it as it comes.
		l.giveBackRead(tc, buf[:n])
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.giveBackRead(tc, nil) // nothing yet
		return nil
	case end < 0:
		tc.Close() // an error, or the client closed the connection
		return nil
	}
	// No deadlines while the handler has the connection, as with
	// net/http (a parked poll waits for longer than any of them).
	if err := tc.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return nil
	}
	req, ok := parseRequest(buf[:n])
	if !ok || !d.Match(req) {
		l.giveBackRead(tc, buf[:n])
		return nil
	}
	req.RemoteAddr = tc.RemoteAddr().String()
	return req
}

// giveBackRead gives nc back to the http.Server with no deadlines set;
// the server reads read (from a *net.TCPConn) first.
func (l *Listener) giveBackRead(nc net.Conn, read []byte) {
	if err := nc.SetDeadline(time.Time{}); err != nil {
		nc.Close()
		return
	}
	if len(read) > 0 {
		nc = &replayConn{TCPConn: nc.(*net.TCPConn), pending: bytes.Clone(read)}
	}
	l.giveBack(nc)
}

// replayConn is a connection given back with bytes already read from it,
// which its first reads return.
type replayConn struct {
	*net.TCPConn
	pending []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		return c.TCPConn.Read(b)
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return n, nil
}

// WriteTo reads through Read, so that the pending bytes come first.
func (c *replayConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

// startReading registers nc as waiting for its next request, so that
// Close can interrupt the wait; it reports false if the listener is
// closed.
func (l *Listener) startReading(nc net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.reading == nil {
		l.reading = make(map[net.Conn]struct{})
	}
	l.reading[nc] = struct{}{}
	return true
}

func (l *Listener) stopReading(nc net.Conn) {
	l.mu.Lock()
	delete(l.reading, nc)
	l.mu.Unlock()
}

type requestParser struct {
	rd bytes.Reader
	br *bufio.Reader
}

var parsers = sync.Pool{New: func() any {
	p := new(requestParser)
	p.br = bufio.NewReaderSize(&p.rd, maxHeader)
	return p
}}

// parseRequest parses a request header read off the connection. It
// reports false unless the request is one that can be served directly:
// HTTP/1.1, persistent, in origin form, not HEAD, without a body or
// Expect, and valid by the rules the http.Server applies (one valid
// Host, valid header names and values). The http.Server answers the
// others itself.
func parseRequest(head []byte) (*http.Request, bool) {
	p := parsers.Get().(*requestParser)
	p.rd.Reset(head)
	p.br.Reset(&p.rd)
	req, err := http.ReadRequest(p.br) // copies what it keeps
	p.rd.Reset(nil)
	parsers.Put(p)
	if err != nil {
		return nil, false
	}
	// A HEAD answer has no body, but a handler may write one, which
	// net/http drops.
	if req.Method == http.MethodHead || req.ProtoMajor != 1 || req.ProtoMinor != 1 || req.Close ||
		req.ContentLength != 0 || len(req.TransferEncoding) > 0 || req.Header.Get("Expect") != "" {
		return nil, false
	}
	// ReadRequest has taken the Host header out (refusing two), and uses
	// it for req.Host unless the target is an absolute URL.
	// Origin form starts with a slash; "OPTIONS *" is answered by the
	// http.Server itself.
	if !strings.HasPrefix(req.RequestURI, "/") || req.URL.Host != "" || req.Host == "" || !httpguts.ValidHostHeader(req.Host) {
		return nil, false
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, false
			}
		}
	}
	return req, true
}

// serve runs the handler, reporting false if it panicked.
func (l *Listener) serve(d *Direct, w *directWriter, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v == http.ErrAbortHandler {
				return
			}
			stack := make([]byte, 16<<10)
			stack = stack[:runtime.Stack(stack, false)]
			d.Log.LogAttrs(context.Background(), slog.LevelError, "panic serving request",
				slog.String("remote", req.RemoteAddr), slog.Any("panic", v), slog.String("stack", string(stack)))
		}
	}()
	d.Handler.ServeHTTP(w, req)
	return true
}

// directWriter is the ResponseWriter of a request served directly. It
// holds the answer until the handler returns, when its length is known,
// unless the handler flushes or writes more than maxBuffered; the answer
// is then sent as it comes and ends by closing the connection.
type directWriter struct {
	nc        net.Conn
	header    http.Header
	status    int
	body      []byte
	hijacked  bool
	streaming bool
	err       error // of the first failed write while streaming
}

func (w *directWriter) Header() http.Header { return w.header }

func (w *directWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	if w.hijacked || w.status != 0 || code < 200 {
		return // informational answers are not sent
	}
	w.status = code
}

func (w *directWriter) Write(b []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if !w.streaming && len(w.body)+len(b) > maxBuffered {
		w.startStreaming()
	}
	if !w.streaming {
		w.body = append(w.body, b...)
		return len(b), nil
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.nc.Write(b)
	if err != nil {
		w.err = err
	}
	return n, err
}

// complete finishes a held answer as net/http would: 200 when nothing
// was written, and a sniffed Content-Type when none was set.
func (w *directWriter) complete() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.sniff()
}

func (w *directWriter) sniff() {
	// Not an encoded body (gzip), as net/http.
	if _, ok := w.header["Content-Type"]; !ok && len(w.body) > 0 && bodyAllowed(w.status) && w.header.Get("Content-Encoding") == "" {
		w.header.Set("Content-Type", http.DetectContentType(w.body))
	}
}

// Flush sends what is held; the answer then ends by closing the
// connection.
func (w *directWriter) Flush() {
	if !w.hijacked && !w.streaming {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.startStreaming()
	}
}

func (w *directWriter) startStreaming() {
	w.streaming = true
	w.header.Del("Content-Length")
	w.header.Set("Connection", "close")
	w.sniff()
	w.err = writeHead(w.nc, w.status, w.header, w.body)
	w.body = nil
}

// Hijack hands the connection to the handler (a long-poll parking
// again). Nothing of the next request has been read from it.
func (w *directWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.streaming {
		return nil, nil, errors.New("park: answer already being sent")
	}
	w.hijacked = true
	return w.nc, bufio.NewReadWriter(bufio.NewReaderSize(w.nc, 16), bufio.NewWriterSize(w.nc, 16)), nil
}
