package park_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/park"
)

// wait bounds every wait in these tests; none of them measures time.
const wait = 10 * time.Second

// countingListener counts the TCP connections really accepted, so a test
// can tell a kept connection from a new one.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// parked is a request parked by the test server's /park handler.
type parked struct {
	c  *park.Conn
	h  http.Header // w.Header() as the handler left it
	id string
}

// testServer is an http.Server on 127.0.0.1:0 served on a park.Listener.
// /park?id=X sets X-Test: X and parks; /plain answers "plain <RemoteAddr>".
type testServer struct {
	url    string
	addr   string
	inner  *countingListener
	pl     *park.Listener
	srv    *http.Server
	parked chan parked
	served chan error // Serve's result
}

func newServer(tb testing.TB) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &testServer{
		addr:   ln.Addr().String(),
		inner:  &countingListener{Listener: ln},
		parked: make(chan parked, 512),
		served: make(chan error, 1),
	}
	s.url = "http://" + s.addr
	s.pl = park.NewListener(s.inner)
	mux := http.NewServeMux()
	mux.HandleFunc("/park", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		w.Header().Set("X-Test", id)
		c, err := s.pl.Park(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.parked <- parked{c: c, h: w.Header(), id: id}
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "plain %s", r.RemoteAddr)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: wait}
	go func() { s.served <- s.srv.Serve(s.pl) }()
	tb.Cleanup(func() { s.srv.Close() })
	return s
}

// next returns the next parked request.
func (s *testServer) next(tb testing.TB) parked {
	tb.Helper()
	select {
	case p := <-s.parked:
		return p
	case <-time.After(wait):
		tb.Fatal("no request parked")
		return parked{}
	}
}

func newClient(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 512}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: wait}
}

// result is what a client got back, its body read to the end.
type result struct {
	resp   *http.Response
	body   string
	reused bool
	local  string // the client's end of the connection
	err    error
}

// do sends req and reads the whole answer, noting which connection
// carried it.
func do(c *http.Client, req *http.Request) result {
	var res result
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		res.reused = info.Reused
		res.local = info.Conn.LocalAddr().String()
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := c.Do(req)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	res.resp, res.body, res.err = resp, string(b), err
	return res
}

func get(tb testing.TB, url string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// goDo sends req from another goroutine.
func goDo(c *http.Client, req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- do(c, req) }()
	return ch
}

func recv(tb testing.TB, ch <-chan result) result {
	tb.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatalf("request: %v", r.err)
		}
		return r
	case <-time.After(wait):
		tb.Fatal("no answer")
		return result{}
	}
}

// checkAnswer checks an answer given with Reply(status, h, body) for a
// request parked as id.
func checkAnswer(tb testing.TB, r result, status int, id, body string) {
	tb.Helper()
	if r.resp.StatusCode != status {
		tb.Errorf("status = %d, want %d", r.resp.StatusCode, status)
	}
	if got := r.resp.Header.Get("X-Test"); got != id {
		tb.Errorf("X-Test = %q, want %q", got, id)
	}
	if got, want := r.resp.Header.Get("Content-Length"), strconv.Itoa(len(body)); got != want {
		tb.Errorf("Content-Length = %q, want %q", got, want)
	}
	if _, err := http.ParseTime(r.resp.Header.Get("Date")); err != nil {
		tb.Errorf("Date: %v", err)
	}
	if r.body != body {
		tb.Errorf("body = %q, want %q", r.body, body)
	}
}

func reply(tb testing.TB, p parked, status int, body string) {
	tb.Helper()
	if err := p.c.Reply(status, p.h, []byte(body), nil); err != nil {
		tb.Errorf("Reply: %v", err)
	}
}

func TestReplyKeepsConnection(t *testing.T) {
	s := newServer(t)
	c := newClient(t)

	first := goDo(c, get(t, s.url+"/park?id=a"))
	p := s.next(t)
	if p.id != "a" {
		t.Fatalf("parked id = %q", p.id)
	}
	if n := s.pl.Parked(); n != 1 {
		t.Errorf("Parked() = %d, want 1", n)
	}
	select {
	case r := <-first:
		t.Fatalf("answered before Reply: %+v", r)
	default:
	}

	signal := make(chan struct{})
	replied := make(chan error, 1)
	go func() {
		<-signal
		replied <- p.c.Reply(http.StatusAccepted, p.h, []byte("hello"), nil)
	}()
	close(signal)

	r := recv(t, first)
	if err := <-replied; err != nil {
		t.Fatalf("Reply: %v", err)
	}
	checkAnswer(t, r, http.StatusAccepted, "a", "hello")
	if r.resp.Close {
		t.Error("answer closes the connection")
	}

	second := do(c, get(t, s.url+"/plain"))
	if second.err != nil {
		t.Fatal(second.err)
	}
	if !second.reused {
		t.Error("second request on a new connection")
	}
	if want := "plain " + r.local; second.body != want {
		t.Errorf("second answer = %q, want %q", second.body, want)
	}
	if n := s.inner.n.Load(); n != 1 {
		t.Errorf("%d connections accepted, want 1", n)
	}
	if n := s.pl.Parked(); n != 0 {
		t.Errorf("Parked() = %d after Reply, want 0", n)
	}
}

func TestReplyNilHeader(t *testing.T) {
	s := newServer(t)
	c := newClient(t)
	ch := goDo(c, get(t, s.url+"/park?id=n"))
	p := s.next(t)
	if err := p.c.Reply(http.StatusOK, nil, []byte("no headers"), nil); err != nil {
		t.Fatal(err)
	}
	r := recv(t, ch)
	if r.body != "no headers" || r.resp.ContentLength != int64(len("no headers")) {
		t.Errorf("got %q, Content-Length %d", r.body, r.resp.ContentLength)
	}
}

func TestRequestClose(t *testing.T) {
	s := newServer(t)
	c := newClient(t)

	req := get(t, s.url+"/park?id=c")
	req.Close = true
	ch := goDo(c, req)
	reply(t, s.next(t), http.StatusOK, "bye")
	r := recv(t, ch)
	checkAnswer(t, r, http.StatusOK, "c", "bye")
	if !r.resp.Close { // the client takes Connection: close out of Header
		t.Error("answer without Connection: close")
	}

	second := do(c, get(t, s.url+"/plain"))
	if second.err != nil {
		t.Fatal(second.err)
	}
	if second.reused {
		t.Error("second request reused a closed connection")
	}
	if n := s.inner.n.Load(); n != 2 {
		t.Errorf("%d connections accepted, want 2", n)
	}
}

// dial opens a raw connection to s with a deadline so no read can hang.
func dial(tb testing.TB, s *testServer) (net.Conn, *bufio.Reader) {
	tb.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(wait)); err != nil {
		tb.Fatal(err)
	}
	return nc, bufio.NewReader(nc)
}

func write(tb testing.TB, nc net.Conn, s string) {
	tb.Helper()
	if _, err := io.WriteString(nc, s); err != nil {
		tb.Fatal(err)
	}
}

// readResponse reads one answer to a request with the given method.
func readResponse(tb testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	tb.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		tb.Fatalf("read answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// expectEOF checks that the server closed the connection after the last
// answer, sending nothing more.
func expectEOF(tb testing.TB, br *bufio.Reader) {
	tb.Helper()
	b, err := io.ReadAll(br)
	if err != nil {
		tb.Fatalf("connection not closed: %v (after %q)", err, b)
	}
	if len(b) > 0 {
		tb.Fatalf("%q after the answer", b)
	}
}

func TestRawRequests(t *testing.T) {
	const h = "Host: x\r\n"
	tests := []struct {
		name   string
		req    string // ends with a request to /park?id=r
		method string
		keep   bool
		body   string // what the client gets
	}{
		{"HTTP/1.1", "GET /park?id=r HTTP/1.1\r\n" + h + "\r\n", "GET", true, "answer"},
		{"HEAD", "HEAD /park?id=r HTTP/1.1\r\n" + h + "\r\n", "HEAD", true, ""},
		{"HTTP/1.0", "GET /park?id=r HTTP/1.0\r\n" + h + "\r\n", "GET", false, "answer"},
		{"HTTP/1.0 keep-alive", "GET /park?id=r HTTP/1.0\r\n" + h + "Connection: keep-alive\r\n\r\n", "GET", false, "answer"},
		{"Connection: close", "GET /park?id=r HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n", "GET", false, "answer"},
		{"pipelined", "GET /park?id=r HTTP/1.1\r\n" + h + "\r\nGET /plain HTTP/1.1\r\n" + h + "\r\n", "GET", false, "answer"},
		// The body has not arrived when the request is answered: the
		// server must not read it as the next request.
		{"body not read", "POST /park?id=r HTTP/1.1\r\n" + h + "Content-Length: 30\r\n\r\n", "POST", false, "answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			nc, br := dial(t, s)
			write(t, nc, tt.req) // one write, so a pipelined pair arrives together
			reply(t, s.next(t), http.StatusOK, "answer")

			resp, body := readResponse(t, br, tt.method)
			if resp.StatusCode != http.StatusOK || body != tt.body {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, tt.body)
			}
			if got := resp.Header.Get("Content-Length"); got != "6" {
				t.Errorf("Content-Length = %q, want 6", got)
			}
			if got := resp.Header.Get("X-Test"); got != "r" {
				t.Errorf("X-Test = %q, want r", got)
			}
			if resp.Close == tt.keep {
				t.Fatalf("Connection: close = %v, want %v", resp.Close, !tt.keep)
			}
			if !tt.keep {
				expectEOF(t, br)
				return
			}
			write(t, nc, "GET /plain HTTP/1.1\r\n"+h+"\r\n")
			resp, body = readResponse(t, br, "GET")
			if want := "plain " + nc.LocalAddr().String(); resp.StatusCode != http.StatusOK || body != want {
				t.Errorf("next request: %d %q, want 200 %q", resp.StatusCode, body, want)
			}
			if n := s.inner.n.Load(); n != 1 {
				t.Errorf("%d connections accepted, want 1", n)
			}
		})
	}
}

// hijacker is a ResponseWriter whose connection is one end of a pipe, for
// driving a Listener without an http.Server.
type hijacker struct {
	*httptest.ResponseRecorder
	nc net.Conn
}

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.nc, bufio.NewReadWriter(bufio.NewReader(h.nc), bufio.NewWriter(h.nc)), nil
}

// parkPipe parks a request on a pipe and returns the Conn and the client's
// end of the pipe.
func parkPipe(t *testing.T, pl *park.Listener) (*park.Conn, net.Conn, net.Conn) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	if err := client.SetDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	c, err := pl.Park(hijacker{httptest.NewRecorder(), server}, httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	return c, client, server
}

// replyPipe answers c and reads the answer from client.
func replyPipe(t *testing.T, c *park.Conn, client net.Conn) (*http.Response, *bufio.Reader) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Reply(http.StatusOK, http.Header{}, []byte("x"), nil) }() // a pipe write waits for the read
	br := bufio.NewReader(client)
	resp, _ := readResponse(t, br, "GET")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return resp, br
}

func newListener(t *testing.T) *park.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := park.NewListener(ln)
	t.Cleanup(func() { pl.Close() })
	return pl
}

func TestAcceptGivesBack(t *testing.T) {
	pl := newListener(t)
	c, client, server := parkPipe(t, pl)
	if resp, _ := replyPipe(t, c, client); resp.Close {
		t.Fatal("answer closes the connection")
	}
	got, err := pl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got != server {
		t.Errorf("Accept = %v, want the answered connection", got)
	}
}

func TestCloseClosesGivenBack(t *testing.T) {
	pl := newListener(t)
	c, client, _ := parkPipe(t, pl)
	resp, br := replyPipe(t, c, client)
	if resp.Close {
		t.Fatal("answer closes the connection")
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, br)
	if _, err := pl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func TestNotSupported(t *testing.T) {
	pl := newListener(t)
	h2 := httptest.NewRequest(http.MethodGet, "/", nil)
	h2.Proto, h2.ProtoMajor, h2.ProtoMinor = "HTTP/2.0", 2, 0
	tests := []struct {
		name string
		w    http.ResponseWriter
		r    *http.Request
	}{
		{"no Hijacker", httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)},
		{"HTTP/2", hijacker{httptest.NewRecorder(), nil}, h2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pl.Park(tt.w, tt.r)
			if !errors.Is(err, park.ErrNotSupported) || c != nil {
				t.Errorf("Park = %v, %v; want ErrNotSupported", c, err)
			}
			if n := pl.Parked(); n != 0 {
				t.Errorf("Parked() = %d, want 0", n)
			}
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			if err := pl.Wait(ctx); err != nil {
				t.Errorf("Wait: %v", err)
			}
		})
	}
}

func TestWait(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := s.pl.Wait(ctx); err != nil {
		t.Fatalf("Wait with nothing parked: %v", err)
	}

	c := newClient(t)
	a := goDo(c, get(t, s.url+"/park?id=a"))
	b := goDo(c, get(t, s.url+"/park?id=b"))
	p1, p2 := s.next(t), s.next(t)
	if n := s.pl.Parked(); n != 2 {
		t.Errorf("Parked() = %d, want 2", n)
	}
	ended, end := context.WithCancel(t.Context())
	end()
	err := s.pl.Wait(ended)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "2 parked") {
		t.Errorf("Wait with 2 parked and an ended context: %v", err)
	}

	waited := make(chan error, 1)
	go func() { waited <- s.pl.Wait(ctx) }()
	reply(t, p1, http.StatusOK, p1.id)
	if n := s.pl.Parked(); n != 1 {
		t.Errorf("Parked() = %d after one Reply, want 1", n)
	}
	select {
	case err := <-waited:
		t.Fatalf("Wait returned with one still parked: %v", err)
	default:
	}
	reply(t, p2, http.StatusOK, p2.id)
	if err := <-waited; err != nil {
		t.Errorf("Wait after all answered: %v", err)
	}
	for _, ch := range []<-chan result{a, b} {
		if r := recv(t, ch); r.body != r.resp.Header.Get("X-Test") {
			t.Errorf("request %s answered %q", r.resp.Header.Get("X-Test"), r.body)
		}
	}

	// Dropping a parked connection also counts as done.
	nc, br := dial(t, s)
	write(t, nc, "GET /park?id=d HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	if err := p.c.Close(); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, br)
	if err := s.pl.Wait(ctx); err != nil {
		t.Errorf("Wait after Conn.Close: %v", err)
	}
}

func TestListenerClose(t *testing.T) {
	s := newServer(t)
	nc, br := dial(t, s)
	write(t, nc, "GET /park?id=k HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	if err := s.pl.Close(); err != nil {
		t.Fatal(err)
	}
	reply(t, p, http.StatusOK, "late")
	resp, body := readResponse(t, br, "GET")
	if !resp.Close || body != "late" {
		t.Errorf("got Close = %v, %q; want Connection: close and %q", resp.Close, body, "late")
	}
	expectEOF(t, br)
	if _, err := s.pl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	select {
	case err := <-s.served:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve = %v, want net.ErrClosed", err)
		}
	case <-time.After(wait):
		t.Error("Serve still running after Close")
	}
}

func TestAlive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Alive peeks at sockets; its end-of-stream detection is tested on linux")
	}
	tests := []struct {
		name  string
		close func(*net.TCPConn) error
	}{
		{"FIN", (*net.TCPConn).Close},
		{"RST", func(c *net.TCPConn) error {
			if err := c.SetLinger(0); err != nil {
				return err
			}
			return c.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			nc, _ := dial(t, s)
			write(t, nc, "GET /park?id=v HTTP/1.1\r\nHost: x\r\n\r\n")
			p := s.next(t)
			defer p.c.Close()
			if !p.c.Alive() {
				t.Fatal("Alive = false while the client holds the connection")
			}
			if err := tt.close(nc.(*net.TCPConn)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(wait)
			for p.c.Alive() {
				if time.Now().After(deadline) {
					t.Fatal("Alive still true after the client closed")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// TestAliveWithData: bytes the client sent while parked are not mistaken
// for the end of the stream, and peeking does not consume them.
func TestAliveWithData(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Alive peeks at sockets; tested on linux")
	}
	s := newServer(t)
	nc, br := dial(t, s)
	write(t, nc, "GET /park?id=v HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	write(t, nc, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	for range 3 {
		if !p.c.Alive() {
			t.Fatal("Alive = false with data waiting")
		}
	}
	reply(t, p, http.StatusOK, "first")
	if _, body := readResponse(t, br, "GET"); body != "first" {
		t.Errorf("first answer %q", body)
	}
	if resp, body := readResponse(t, br, "GET"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "plain ") {
		t.Errorf("request sent while parked answered %d %q", resp.StatusCode, body)
	}
}

// parkMany sends n requests with ids 0 to n-1 and waits until all are
// parked, in the order they arrived.
func parkMany(tb testing.TB, s *testServer, c *http.Client, n int) ([]<-chan result, []parked) {
	tb.Helper()
	results := make([]<-chan result, n)
	for i := range n {
		results[i] = goDo(c, get(tb, s.url+"/park?id="+strconv.Itoa(i)))
	}
	ps := make([]parked, n)
	for i := range ps {
		ps[i] = s.next(tb)
	}
	return results, ps
}

func TestManyParked(t *testing.T) {
	const n = 200
	s := newServer(t)
	c := newClient(t)
	results, all := parkMany(t, s, c, n)
	if got := s.pl.Parked(); got != n {
		t.Errorf("Parked() = %d, want %d", got, n)
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	// Answer from several goroutines at once, in random order.
	var wg sync.WaitGroup
	work := make(chan parked)
	for range 8 {
		wg.Go(func() {
			for p := range work {
				reply(t, p, http.StatusOK, "answer "+p.id)
			}
		})
	}
	for _, p := range all {
		work <- p
	}
	close(work)
	wg.Wait()

	// Each client then sends a second request, served on a kept connection.
	seconds := make([]<-chan result, n)
	for i, ch := range results {
		id := strconv.Itoa(i)
		r := recv(t, ch)
		checkAnswer(t, r, http.StatusOK, id, "answer "+id)
		seconds[i] = goDo(c, get(t, s.url+"/plain"))
	}
	for _, ch := range seconds {
		if r := recv(t, ch); r.resp.StatusCode != http.StatusOK || !r.reused {
			t.Errorf("second request: %d %q, reused %v", r.resp.StatusCode, r.body, r.reused)
		}
	}
	if got := s.inner.n.Load(); got != n {
		t.Errorf("%d connections accepted, want %d", got, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := s.pl.Wait(ctx); err != nil {
		t.Error(err)
	}
}

func TestShutdownWhileParked(t *testing.T) {
	const n = 3
	s := newServer(t)
	c := newClient(t)
	results, ps := parkMany(t, s, c, n)

	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with parked connections: %v", err)
	}
	if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	if got := s.pl.Parked(); got != n {
		t.Errorf("Parked() = %d after Shutdown, want %d", got, n)
	}

	for _, p := range ps {
		reply(t, p, http.StatusOK, "answer "+p.id)
	}
	if err := s.pl.Wait(ctx); err != nil {
		t.Errorf("Wait: %v", err)
	}
	for i, ch := range results {
		id := strconv.Itoa(i)
		r := recv(t, ch)
		checkAnswer(t, r, http.StatusOK, id, "answer "+id)
		if !r.resp.Close {
			t.Errorf("answer %s after Shutdown keeps the connection", id)
		}
	}
}

// A handler that asks for Connection: close (a server shutting down) gets
// the connection closed, not given back.
func TestReplyAsksClose(t *testing.T) {
	s := newServer(t)
	nc, br := dial(t, s)
	write(t, nc, "GET /park?id=s HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	if err := p.c.Reply(http.StatusOK, http.Header{"Connection": {"keep-alive, Close"}}, []byte("bye"), nil); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, br, "GET"); body != "bye" || !resp.Close {
		t.Fatalf("answer %q, Connection: close %v", body, resp.Close)
	}
	expectEOF(t, br)
}
