package park_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/park"
)

// directServer is a testServer whose Listener serves requests directly.
// Its handlers say in X-Via whether they ran directly ("direct") or in
// the http.Server ("http").
type directServer struct {
	*testServer
	news atomic.Int64 // connections the http.Server took: accepted, or given back
}

func matchAll(*http.Request) bool { return true }

// via tells a handler run directly from one run by the http.Server.
func via(w http.ResponseWriter) string {
	if fmt.Sprintf("%T", w) == "*park.directWriter" {
		return "direct"
	}
	return "http"
}

// newDirectServer starts a server like newServer's, with d's Handler
// filled in unless set. Besides /park and /plain,
// /echo answers "METHOD X-Data body", and routes adds more.
func newDirectServer(tb testing.TB, d park.Direct, routes map[string]http.HandlerFunc) *directServer {
	tb.Helper()
	return startDirect(tb, d, routes, nil)
}

// startDirect is newDirectServer with the listener under the
// park.Listener wrapped by wrap (TLS), when not nil.
func startDirect(tb testing.TB, d park.Direct, routes map[string]http.HandlerFunc, wrap func(net.Listener) net.Listener) *directServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &directServer{
		testServer: &testServer{
			addr:   ln.Addr().String(),
			inner:  &countingListener{Listener: ln},
			parked: make(chan parked, 512),
			served: make(chan error, 1),
		},
	}
	s.url = "http://" + s.addr
	var inner net.Listener = s.inner
	if wrap != nil {
		inner = wrap(inner)
	}
	s.pl = park.NewListener(inner)
	mux := http.NewServeMux()
	mux.HandleFunc("/park", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		w.Header().Set("X-Test", id)
		w.Header().Set("X-Via", via(w))
		c, err := s.pl.Park(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.parked <- parked{c: c, h: w.Header(), id: id}
	})
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Via", via(w))
		fmt.Fprintf(w, "plain %s", r.RemoteAddr)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Via", via(w))
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("X-Data"), b)
	})
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	if d.Handler == nil {
		d.Handler = mux
	}
	s.pl.ServeDirect(d)
	s.srv = &http.Server{
		// No ReadHeaderTimeout: net/http then sets no read deadline of its
		// own, so one left on a connection given back would show.
		Handler: mux,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.news.Add(1)
			}
		},
		ErrorLog: log.New(io.Discard, "", 0), // "superfluous WriteHeader" of /twice
	}
	go func() { s.served <- s.srv.Serve(s.pl) }()
	tb.Cleanup(func() { s.srv.Close() })
	return s
}

// logBuffer collects log output written from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// goReply answers p from another goroutine: with ServeDirect, Reply
// goes on serving the connection's next requests.
func goReply(p parked, status int, body string) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- p.c.Reply(status, p.h, []byte(body), nil) }()
	return errc
}

func recvErr(tb testing.TB, ch <-chan error) error {
	tb.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(wait):
		tb.Fatal("Reply has not returned")
		return nil
	}
}

// waitFor polls until cond holds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("still not %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// parkRaw opens a raw connection, has /park?id=r parked on it, writes
// pre (what the client sends while it is parked), answers the request
// with "answer" and reads the answer. The Reply goes on serving the
// connection; its result comes on the returned channel.
func parkRaw(t *testing.T, s *directServer, pre string) (net.Conn, *bufio.Reader, <-chan error) {
	t.Helper()
	nc, br := dial(t, s.testServer)
	write(t, nc, "GET /park?id=r HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	if pre != "" {
		write(t, nc, pre)
	}
	replied := goReply(p, http.StatusOK, "answer")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != http.StatusOK || body != "answer" || resp.Close {
		t.Fatalf("parked request answered %d %q, close %v", resp.StatusCode, body, resp.Close)
	}
	return nc, br, replied
}

// answer is what a raw client expects to read.
type answer struct {
	status int
	via    string // X-Via
	body   string
	close  bool
}

func expect(tb testing.TB, br *bufio.Reader, method string, want answer) *http.Response {
	tb.Helper()
	resp, body := readResponse(tb, br, method)
	got := answer{resp.StatusCode, resp.Header.Get("X-Via"), body, resp.Close}
	if got != want {
		tb.Errorf("answer %+v, want %+v", got, want)
	}
	return resp
}

// expectPlain sends /plain on nc and expects net/http's answer on it.
func expectPlain(tb testing.TB, nc net.Conn, br *bufio.Reader, via string) {
	tb.Helper()
	write(tb, nc, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	expect(tb, br, "GET", answer{200, via, "plain " + nc.LocalAddr().String(), false})
}

func waitParked(tb testing.TB, pl *park.Listener) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), wait)
	defer cancel()
	if err := pl.Wait(ctx); err != nil {
		tb.Errorf("Wait: %v", err)
	}
	if n := pl.Parked(); n != 0 {
		tb.Errorf("Parked() = %d, want 0", n)
	}
}

// TestDirectRepoll: a client polling again at once on its connection is
// served directly, parks again, and keeps its one connection.
func TestDirectRepoll(t *testing.T) {
	s := newDirectServer(t, park.Direct{Match: matchAll}, nil)
	c := newClient(t)
	const n = 20
	reqs := make([]*http.Request, n, n+1)
	for i := range reqs {
		reqs[i] = get(t, s.url+"/park?id="+strconv.Itoa(i))
	}
	reqs = append(reqs, get(t, s.url+"/plain"))
	results := make(chan result, len(reqs))
	go func() {
		for _, req := range reqs {
			r := do(c, req)
			results <- r
			if r.err != nil {
				return
			}
		}
		c.CloseIdleConnections() // ends the last Reply
	}()

	waited := make(chan error, 1)
	var first result
	for i := range n {
		id := strconv.Itoa(i)
		p := s.next(t)
		if p.id != id {
			t.Fatalf("parked %q, want %q", p.id, id)
		}
		if got := s.pl.Parked(); got != 1 {
			t.Errorf("Parked() = %d with one poll parked", got)
		}
		if i == 0 {
			go func() { waited <- s.pl.Wait(t.Context()) }()
		}
		if i == n/2 {
			ended, end := context.WithCancel(t.Context())
			end()
			if err := s.pl.Wait(ended); err == nil || !strings.Contains(err.Error(), "1 parked") {
				t.Errorf("Wait with a poll parked: %v", err)
			}
		}
		// Returns once the next poll is parked, or the client has gone.
		reply(t, p, http.StatusOK, "answer "+id)
		r := recv(t, results)
		checkAnswer(t, r, http.StatusOK, id, "answer "+id)
		want := "direct"
		if i == 0 {
			want, first = "http", r
		}
		if got := r.resp.Header.Get("X-Via"); got != want {
			t.Errorf("poll %d parked via %q, want %q", i, got, want)
		}
		if r.resp.Close || i > 0 && (!r.reused || r.local != first.local) {
			t.Errorf("poll %d: close %v, reused %v, from %s (first %s)", i, r.resp.Close, r.reused, r.local, first.local)
		}
		if i < n-1 {
			select {
			case err := <-waited:
				t.Fatalf("Wait returned while polls go on: %v", err)
			default:
			}
		}
	}
	r := recv(t, results)
	if want := "plain " + first.local; r.body != want || r.resp.Header.Get("X-Via") != "direct" || !r.reused {
		t.Errorf("/plain after the polls: %q via %q, reused %v; want %q directly", r.body, r.resp.Header.Get("X-Via"), r.reused, want)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(wait):
		t.Error("Wait has not returned")
	}
	waitParked(t, s.pl)
	if got := s.inner.n.Load(); got != 1 {
		t.Errorf("%d connections accepted, want 1", got)
	}
	if got := s.news.Load(); got != 1 {
		t.Errorf("the http.Server took %d connections, want 1", got)
	}
}

// TestDirectMatchFalse: a next request Match does not pick is answered by
// the http.Server, on the same connection.
func TestDirectMatchFalse(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	s := newDirectServer(t, park.Direct{Wait: wait, Match: func(r *http.Request) bool {
		mu.Lock()
		asked = append(asked, r.URL.Path)
		mu.Unlock()
		return r.URL.Path == "/park"
	}}, nil)
	c := newClient(t)
	ch := goDo(c, get(t, s.url+"/park?id=m"))
	replied := goReply(s.next(t), http.StatusOK, "first")
	r := recv(t, ch)
	checkAnswer(t, r, http.StatusOK, "m", "first")

	second := do(c, get(t, s.url+"/plain"))
	if second.err != nil {
		t.Fatal(second.err)
	}
	if want := "plain " + r.local; second.body != want || !second.reused || second.resp.Header.Get("X-Via") != "http" {
		t.Errorf("/plain: %q via %q, reused %v; want %q from net/http", second.body, second.resp.Header.Get("X-Via"), second.reused, want)
	}
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	mu.Lock()
	if !slices.Equal(asked, []string{"/plain"}) {
		t.Errorf("Match asked about %q, want /plain", asked)
	}
	mu.Unlock()
	if got := s.inner.n.Load(); got != 1 {
		t.Errorf("%d connections accepted, want 1", got)
	}
	if got := s.news.Load(); got != 2 {
		t.Errorf("the http.Server took %d connections, want 2 (accepted, given back)", got)
	}
	waitParked(t, s.pl)
}

// TestDirectFallback: next requests that are not served directly reach
// the http.Server whole, with what was read of them, and get its answer.
func TestDirectFallback(t *testing.T) {
	const h = "Host: x\r\n"
	big := strings.Repeat("b", 5000)
	tests := []struct {
		name   string
		parts  []string // written one after the other
		method string
		want   []answer // the last one may close
	}{
		{"POST with body", []string{"POST /echo HTTP/1.1\r\n" + h + "X-Data: d\r\nContent-Length: 5\r\n\r\nhello"},
			"POST", []answer{{200, "http", "POST d hello", false}}},
		{"POST body later", []string{"POST /echo HTTP/1.1\r\n" + h + "X-Data: d\r\nContent-Length: 5\r\n\r\n", "hel", "lo"},
			"POST", []answer{{200, "http", "POST d hello", false}}},
		{"chunked", []string{"POST /echo HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
			"POST", []answer{{200, "http", "POST  hello", false}}},
		{"pipelined", []string{"GET /echo HTTP/1.1\r\n" + h + "X-Data: 1\r\n\r\nGET /echo HTTP/1.1\r\n" + h + "X-Data: 2\r\n\r\n"},
			"GET", []answer{{200, "http", "GET 1 ", false}, {200, "http", "GET 2 ", false}}},
		{"Connection: close", []string{"GET /echo HTTP/1.1\r\n" + h + "Connection: close\r\n\r\n"},
			"GET", []answer{{200, "http", "GET  ", true}}},
		{"HTTP/1.0", []string{"GET /echo HTTP/1.0\r\n" + h + "\r\n"},
			"GET", []answer{{200, "http", "GET  ", true}}},
		{"HTTP/1.0 keep-alive", []string{"GET /echo HTTP/1.0\r\n" + h + "Connection: keep-alive\r\n\r\n"},
			"GET", []answer{{200, "http", "GET  ", false}}},
		{"Expect: 100-continue", []string{"GET /echo HTTP/1.1\r\n" + h + "Expect: 100-continue\r\n\r\n"},
			"GET", []answer{{200, "http", "GET  ", false}}},
		{"Expect other", []string{"GET /echo HTTP/1.1\r\n" + h + "Expect: x\r\n\r\n"},
			"GET", []answer{{417, "", "", true}}},
		{"absolute form", []string{"GET http://x/echo HTTP/1.1\r\n" + h + "X-Data: abs\r\n\r\n"},
			"GET", []answer{{200, "http", "GET abs ", false}}},
		{"missing Host", []string{"GET /echo HTTP/1.1\r\n\r\n"},
			"GET", []answer{{400, "", "400 Bad Request: missing required Host header", true}}},
		{"two Hosts", []string{"GET /echo HTTP/1.1\r\n" + h + h + "\r\n"},
			"GET", []answer{{400, "", "400 Bad Request", true}}},
		{"invalid Host", []string{"GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n"},
			"GET", []answer{{400, "", "400 Bad Request: malformed Host header", true}}},
		{"invalid header name", []string{"GET /echo HTTP/1.1\r\n" + h + "Bad Name: v\r\n\r\n"},
			"GET", []answer{{400, "", "400 Bad Request: invalid header name", true}}},
		{"invalid header value", []string{"GET /echo HTTP/1.1\r\n" + h + "X-Data: a\x01b\r\n\r\n"},
			"GET", []answer{{400, "", "400 Bad Request", true}}},
		// The header ends in the second read, a pipelined request starts.
		{"pipelined in parts", []string{"GET /echo HTTP/1.1\r\n" + h + "X-Data: p1", "\r\n\r\nGE", "T /echo HTTP/1.1\r\n" + h + "X-Data: p2\r\n\r\n"},
			"GET", []answer{{200, "http", "GET p1 ", false}, {200, "http", "GET p2 ", false}}},
		{"header over 4 KiB", []string{"GET /echo HTTP/1.1\r\n" + h + "X-Data: " + big + "\r\n\r\n"},
			"GET", []answer{{200, "http", "GET " + big + " ", false}}},
		{"header over 4 KiB in parts", []string{"GET /echo HTTP/1.1\r\n" + h + "X-Data: " + big[:4000], big[4000:] + "\r\n\r\n"},
			"GET", []answer{{200, "http", "GET " + big + " ", false}}},
		{"HEAD", []string{"HEAD /echo HTTP/1.1\r\n" + h + "X-Data: hd\r\n\r\n"},
			"HEAD", []answer{{200, "http", "", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, nil)
			nc, br, replied := parkRaw(t, s, "")
			for i, part := range tt.parts {
				if i > 0 {
					time.Sleep(10 * time.Millisecond) // so the parts come in separate reads
				}
				write(t, nc, part)
			}
			for _, want := range tt.want {
				expect(t, br, tt.method, want)
			}
			if tt.want[len(tt.want)-1].close {
				expectEOF(t, br)
			} else {
				expectPlain(t, nc, br, "http")
			}
			if err := recvErr(t, replied); err != nil {
				t.Errorf("Reply: %v", err)
			}
			if got := s.inner.n.Load(); got != 1 {
				t.Errorf("%d connections accepted, want 1", got)
			}
			if got := s.news.Load(); got != 2 {
				t.Errorf("the http.Server took %d connections, want 2 (accepted, given back)", got)
			}
			waitParked(t, s.pl)
		})
	}
}

// TestDirectExpectContinue: a request with a body waiting for
// "100 Continue" gets it from the http.Server.
func TestDirectExpectContinue(t *testing.T) {
	s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, nil)
	nc, br, replied := parkRaw(t, s, "")
	write(t, nc, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	expect(t, br, "POST", answer{100, "", "", false})
	write(t, nc, "hello")
	expect(t, br, "POST", answer{200, "http", "POST  hello", false})
	expectPlain(t, nc, br, "http")
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
}

// TestDirectHeaderInParts: a header that comes in parts, the last within
// Wait, is served directly, wherever it is cut.
func TestDirectHeaderInParts(t *testing.T) {
	const req = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Data: parts\r\n\r\n"
	for _, cut := range []int{1, 10, len(req) / 2, len(req) - 4, len(req) - 3, len(req) - 2, len(req) - 1} {
		t.Run(strconv.Quote(req[cut:]), func(t *testing.T) {
			s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, nil)
			// The first part waits in the socket, read at once.
			nc, br, replied := parkRaw(t, s, req[:cut])
			waitFor(t, "waiting for a next request", func() bool { return park.ReadingNext(s.pl) == 1 })
			time.Sleep(10 * time.Millisecond) // so the last part comes in another read
			write(t, nc, req[cut:])
			expect(t, br, "GET", answer{200, "direct", "GET parts ", false})
			// Still served directly after that.
			expectPlain(t, nc, br, "direct")
			nc.Close()
			if err := recvErr(t, replied); err != nil {
				t.Errorf("Reply: %v", err)
			}
			if got := s.news.Load(); got != 1 {
				t.Errorf("the http.Server took %d connections, want 1", got)
			}
		})
	}
}

// TestDirectHeaderStalls: a header not whole within Wait goes to the
// http.Server with what was read of it, which reads the rest.
func TestDirectHeaderStalls(t *testing.T) {
	tests := []struct {
		name   string
		first  string // sent while the request is parked
		rest   string // sent once the connection is given back
		answer string
	}{
		{"stalled", "GET /echo HTTP/1.1\r\nHost: x\r\nX-Da", "ta: slow\r\n\r\n", "GET slow "},
		{"stalled at the end", "GET /echo HTTP/1.1\r\nHost: x\r\nX-Data: slow\r\n\r", "\n", "GET slow "},
		// Lines ending in LF alone, which net/http takes.
		{"LF", "GET /echo HTTP/1.1\nHost: x\nX-Data: lf\n\n", "", "GET lf "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDirectServer(t, park.Direct{Wait: 50 * time.Millisecond, Match: matchAll}, nil)
			nc, br, replied := parkRaw(t, s, tt.first)
			waitFor(t, "given back", func() bool { return s.news.Load() == 2 })
			write(t, nc, tt.rest)
			expect(t, br, "GET", answer{200, "http", tt.answer, false})
			expectPlain(t, nc, br, "http")
			if err := recvErr(t, replied); err != nil {
				t.Errorf("Reply: %v", err)
			}
			if got := s.inner.n.Load(); got != 1 {
				t.Errorf("%d connections accepted, want 1", got)
			}
		})
	}
}

// TestDirectNoNextRequest: a connection with no next request within Wait
// goes back to the http.Server, which answers what comes later.
func TestDirectNoNextRequest(t *testing.T) {
	s := newDirectServer(t, park.Direct{Wait: 50 * time.Millisecond, Match: matchAll}, nil)
	nc, br, replied := parkRaw(t, s, "")
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	waitFor(t, "given back", func() bool { return s.news.Load() == 2 })
	waitParked(t, s.pl)
	expectPlain(t, nc, br, "http")

	// Parked again by the http.Server, and answered: then served
	// directly again.
	write(t, nc, "GET /park?id=again HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	if via := p.h.Get("X-Via"); via != "http" {
		t.Errorf("parked via %q", via)
	}
	write(t, nc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Data: next\r\n\r\n")
	replied = goReply(p, http.StatusOK, "again")
	expect(t, br, "GET", answer{200, "http", "again", false})
	expect(t, br, "GET", answer{200, "direct", "GET next ", false})
	nc.Close()
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	if got := s.inner.n.Load(); got != 1 {
		t.Errorf("%d connections accepted, want 1", got)
	}
}

// TestDirectAfterReplay: a connection given back with bytes to replay
// is served directly again after its next parked request is answered.
func TestDirectAfterReplay(t *testing.T) {
	s := newDirectServer(t, park.Direct{Wait: wait, Match: func(r *http.Request) bool { return r.URL.Path != "/echo" }}, nil)
	nc, br, replied := parkRaw(t, s, "")
	write(t, nc, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Data: replayed\r\n\r\n")
	expect(t, br, "GET", answer{200, "http", "GET replayed ", false})
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	write(t, nc, "GET /park?id=2 HTTP/1.1\r\nHost: x\r\n\r\n")
	p := s.next(t)
	replied = goReply(p, http.StatusOK, "second")
	expect(t, br, "GET", answer{200, "http", "second", false})
	expectPlain(t, nc, br, "direct")
	nc.Close()
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	waitParked(t, s.pl)
}

// TestDirectClientCloses: a client that goes after its answer has its
// connection closed, and nothing is left waiting.
func TestDirectClientCloses(t *testing.T) {
	tests := []struct {
		name  string
		close func(*net.TCPConn) error
	}{
		{"half-close", (*net.TCPConn).CloseWrite},
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
			// Waits far longer than the test: only the close ends it.
			s := newDirectServer(t, park.Direct{Wait: time.Hour, Match: matchAll}, nil)
			nc, br, replied := parkRaw(t, s, "")
			if err := tt.close(nc.(*net.TCPConn)); err != nil {
				t.Fatal(err)
			}
			if err := recvErr(t, replied); err != nil {
				t.Errorf("Reply: %v", err)
			}
			waitParked(t, s.pl)
			if tt.name == "half-close" {
				expectEOF(t, br) // closed by the server
			}
			time.Sleep(20 * time.Millisecond) // time to be given back, were it
			if got := s.news.Load(); got != 1 {
				t.Errorf("the http.Server took %d connections, want 1", got)
			}
		})
	}
}

// TestDirectListenerClose: closing the Listener ends the wait for a next
// request at once and closes the connection.
func TestDirectListenerClose(t *testing.T) {
	tests := []struct {
		name  string
		close func(*directServer) error
	}{
		{"Close", func(s *directServer) error { return s.pl.Close() }},
		{"Shutdown", func(s *directServer) error {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			return s.srv.Shutdown(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDirectServer(t, park.Direct{Wait: time.Hour, Match: matchAll}, nil)
			_, br, replied := parkRaw(t, s, "")
			waitFor(t, "waiting for a next request", func() bool { return park.ReadingNext(s.pl) == 1 })
			// Answered, but Wait waits for what comes next.
			if n := s.pl.Parked(); n != 0 {
				t.Errorf("Parked() = %d after the answer, want 0", n)
			}
			ended, end := context.WithCancel(t.Context())
			end()
			if err := s.pl.Wait(ended); err == nil {
				t.Error("Wait returned while a connection waits for its next request")
			}
			if err := tt.close(s); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			if err := s.pl.Wait(ctx); err != nil {
				t.Fatalf("Wait after Close: %v", err)
			}
			if err := recvErr(t, replied); err != nil {
				t.Errorf("Reply: %v", err)
			}
			expectEOF(t, br)
			if n := park.ReadingNext(s.pl); n != 0 {
				t.Errorf("%d connections still waiting", n)
			}
		})
	}
}

// TestDirectAnswers: requests served directly get the answer net/http
// gives the same handler.
func TestDirectAnswers(t *testing.T) {
	gz := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	var misses atomic.Int64 // writes that should have been refused
	refused := func(w http.ResponseWriter) {
		if _, err := io.WriteString(w, "x"); !errors.Is(err, http.ErrBodyNotAllowed) {
			misses.Add(1)
		}
	}
	routes := map[string]http.HandlerFunc{
		"/text":  func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello, world") },
		"/html":  func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "<!DOCTYPE html><p>hi</p>") },
		"/empty": func(http.ResponseWriter, *http.Request) {},
		"/json": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", " b ")
			w.Header().Set("X-Split", "c\r\nd")
			io.WriteString(w, `{"a":1}`)
		},
		"/created": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "made")
		},
		"/twice": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "first wins")
		},
		"/missing": http.NotFound,
		"/nocontent": func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			refused(w)
		},
		"/notmodified": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("ETag", `"1"`)
			w.WriteHeader(http.StatusNotModified)
			refused(w)
		},
		"/gzip": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gz)
		},
		"/typeless": func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "hello")
		},
		"/length": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
		},
		// Keys that are no header names are dropped, not sent as they are.
		"/badkey": func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["X-Bad\r\nInjected"] = []string{"yes"}
			w.Header()["Bad Key"] = []string{"v"}
			io.WriteString(w, "k")
		},
		"/close": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		},
	}
	for path, h := range routes {
		routes[path] = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Via", via(w))
			h(w, r)
		}
	}
	// What each answer must be, directly or not.
	type want struct {
		status int
		ctype  string // "-" for none
		length string // "-" for none
		body   string
	}
	wants := map[string]want{
		"/text":        {200, "text/plain; charset=utf-8", "12", "hello, world"},
		"/html":        {200, "text/html; charset=utf-8", "24", "<!DOCTYPE html><p>hi</p>"},
		"/empty":       {200, "-", "0", ""},
		"/json":        {200, "application/json", "7", `{"a":1}`},
		"/created":     {201, "text/plain; charset=utf-8", "4", "made"},
		"/twice":       {202, "text/plain; charset=utf-8", "10", "first wins"},
		"/missing":     {404, "text/plain; charset=utf-8", "19", "404 page not found\n"},
		"/nocontent":   {204, "-", "-", ""},
		"/notmodified": {304, "-", "-", ""},
		"/gzip":        {200, "-", strconv.Itoa(len(gz)), string(gz)},
		"/typeless":    {200, "-", "5", "hello"},
		"/length":      {200, "text/plain; charset=utf-8", "3", "abc"},
		"/badkey":      {200, "text/plain; charset=utf-8", "1", "k"},
	}
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range wants {
			if !yield(p) {
				return
			}
		}
	})

	s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, routes)
	direct, dbr, replied := parkRaw(t, s, "")
	plain, pbr := dial(t, s.testServer) // never parked: net/http answers
	for _, path := range paths {
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
		write(t, direct, req)
		dresp, dbody := readResponse(t, dbr, "GET")
		write(t, plain, req)
		presp, pbody := readResponse(t, pbr, "GET")

		w := wants[path]
		for _, a := range []struct {
			via  string
			resp *http.Response
			body string
		}{{"direct", dresp, dbody}, {"http", presp, pbody}} {
			header := func(k string) string {
				if v, ok := a.resp.Header[k]; ok {
					return strings.Join(v, ",")
				}
				return "-"
			}
			got := want{a.resp.StatusCode, header("Content-Type"), header("Content-Length"), a.body}
			if got != w {
				t.Errorf("%s %s: %+v, want %+v", a.via, path, got, w)
			}
			if _, err := http.ParseTime(a.resp.Header.Get("Date")); err != nil {
				t.Errorf("%s %s: Date: %v", a.via, path, err)
			}
			if a.resp.Close {
				t.Errorf("%s %s: connection closed", a.via, path)
			}
		}
		// The whole head is net/http's, but for Date and X-Via.
		dh, ph := dresp.Header.Clone(), presp.Header.Clone()
		for _, h := range []http.Header{dh, ph} {
			h.Del("Date")
			h.Del("X-Via")
		}
		if !equalHeaders(dh, ph) {
			t.Errorf("%s: head directly %q, by net/http %q", path, dh, ph)
		}
		if dv, pv := dresp.Header.Get("X-Via"), presp.Header.Get("X-Via"); dv != "direct" || pv != "http" {
			t.Errorf("%s served via %q and %q, want direct and http", path, dv, pv)
		}
	}
	if n := misses.Load(); n != 0 {
		t.Errorf("%d writes for answers without a body not refused", n)
	}

	// An answer asking to close closes the connection.
	write(t, direct, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := expect(t, dbr, "GET", answer{200, "direct", "bye", true})
	if resp.ContentLength != 3 {
		t.Errorf("Content-Length %d", resp.ContentLength)
	}
	expectEOF(t, dbr)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	waitParked(t, s.pl)
	if got := s.news.Load(); got != 2 {
		t.Errorf("the http.Server took %d connections, want 2", got)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestDirectStreaming: a flushed or large answer is sent as it comes and
// ends by closing the connection.
func TestDirectStreaming(t *testing.T) {
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	var hijackErr atomic.Value
	tests := []struct {
		name   string
		handle http.HandlerFunc
		status int
		ctype  string
		body   string
	}{
		{"Flush", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "part one, ")
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
			io.WriteString(w, "part two")
			if _, _, err := http.NewResponseController(w).Hijack(); err != nil {
				hijackErr.Store(err.Error())
			}
		}, 200, "text/plain; charset=utf-8", "part one, part two"},
		{"Flush first", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
			io.WriteString(w, "later")
		}, 202, "", "later"},
		{"many writes", func(w http.ResponseWriter, _ *http.Request) {
			for b := big; len(b) > 0; b = b[min(len(b), 10<<10):] {
				w.Write(b[:min(len(b), 10<<10)])
			}
		}, 200, "text/plain; charset=utf-8", string(big)},
		{"one write", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(big))) // dropped: the answer is close-delimited
			w.Write(big)
		}, 200, "application/octet-stream", string(big)},
		{"just over", func(w http.ResponseWriter, _ *http.Request) {
			w.Write(big[:64<<10])
			w.Write(big[64<<10 : 64<<10+1])
		}, 200, "text/plain; charset=utf-8", string(big[:64<<10+1])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, map[string]http.HandlerFunc{"/stream": tt.handle})
			nc, br, replied := parkRaw(t, s, "")
			if br.Buffered() > 0 {
				t.Fatalf("%d bytes after the first answer", br.Buffered())
			}
			var raw bytes.Buffer // what comes, as it comes
			br = bufio.NewReader(io.TeeReader(nc, &raw))
			write(t, nc, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body := readResponse(t, br, "GET") // to the end of the stream
			head, _, _ := strings.Cut(raw.String(), "\r\n\r\n")
			if !strings.Contains(head+"\r\n", "\r\nConnection: close\r\n") {
				t.Errorf("head without Connection: close:\n%s", head)
			}
			if resp.StatusCode != tt.status || body != tt.body {
				t.Errorf("got %d, %d bytes, want %d, %d bytes", resp.StatusCode, len(body), tt.status, len(tt.body))
			}
			if got := resp.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tt.ctype)
			}
			if !resp.Close || resp.ContentLength != -1 || resp.TransferEncoding != nil {
				t.Errorf("close %v, Content-Length %d, Transfer-Encoding %q; want a close-delimited answer",
					resp.Close, resp.ContentLength, resp.TransferEncoding)
			}
			if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
				t.Errorf("Date: %v", err)
			}
			if err := recvErr(t, replied); err != nil {
				t.Errorf("Reply: %v", err)
			}
			waitParked(t, s.pl)
		})
	}
	if v, _ := hijackErr.Load().(string); v == "" {
		t.Error("Hijack while streaming did not fail")
	}
}

// TestDirectPanic: a handler's panic is logged, its connection closed,
// and the server goes on serving.
func TestDirectPanic(t *testing.T) {
	routes := map[string]http.HandlerFunc{
		"/panic": func(http.ResponseWriter, *http.Request) { panic("boom") },
		"/abort": func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) },
		"/half": func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "not sent")
			panic("half")
		},
	}
	logs := new(logBuffer)
	s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll, Log: slog.New(slog.NewTextHandler(logs, nil))}, routes)

	nc, br, replied := parkRaw(t, s, "")
	write(t, nc, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	expectEOF(t, br)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	logged := logs.String()
	for _, want := range []string{"level=ERROR", `msg="panic serving request"`, "remote=" + nc.LocalAddr().String(), "panic=boom", "stack=", "direct_test.go"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q: %s", want, logged)
		}
	}
	if n := strings.Count(logged, "\n"); n != 1 {
		t.Errorf("%d lines logged, want 1", n)
	}

	nc, br, replied = parkRaw(t, s, "")
	write(t, nc, "GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
	expectEOF(t, br)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	if !strings.Contains(logs.String(), "panic=half") {
		t.Errorf("second panic not logged: %s", logs.String())
	}

	before := logs.String()
	nc, br, replied = parkRaw(t, s, "")
	write(t, nc, "GET /abort HTTP/1.1\r\nHost: x\r\n\r\n")
	expectEOF(t, br)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	if after := logs.String(); after != before {
		t.Errorf("http.ErrAbortHandler logged: %s", after[len(before):])
	}

	// The server goes on, directly and not.
	nc, br, replied = parkRaw(t, s, "")
	expectPlain(t, nc, br, "direct")
	nc.Close()
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	other, obr := dial(t, s.testServer)
	expectPlain(t, other, obr, "http")
	waitParked(t, s.pl)
}

// TestDirectNilLog: without Log, panics are dropped, and the server
// goes on.
func TestDirectNilLog(t *testing.T) {
	s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll},
		map[string]http.HandlerFunc{"/panic": func(http.ResponseWriter, *http.Request) { panic("boom") }})
	nc, br, replied := parkRaw(t, s, "")
	write(t, nc, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	expectEOF(t, br)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	nc, br, replied = parkRaw(t, s, "")
	expectPlain(t, nc, br, "direct")
	nc.Close()
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
}

// TestReplyWritten: Reply's written is called once, after the answer was
// written (or failed) and before the connection is served on.
func TestReplyWritten(t *testing.T) {
	t.Run("written", func(t *testing.T) {
		var mu sync.Mutex
		var events []string
		event := func(e string) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}
		s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, map[string]http.HandlerFunc{
			"/next": func(w http.ResponseWriter, _ *http.Request) { event("served " + via(w)) },
		})
		nc, br := dial(t, s.testServer)
		write(t, nc, "GET /park?id=w HTTP/1.1\r\nHost: x\r\n\r\n")
		p := s.next(t)
		write(t, nc, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n") // there when the answer is written
		replied := make(chan error, 1)
		go func() {
			replied <- p.c.Reply(http.StatusOK, p.h, []byte("w"), func(err error) { event(fmt.Sprintf("written %v", err)) })
		}()
		expect(t, br, "GET", answer{200, "http", "w", false})
		expect(t, br, "GET", answer{200, "", "", false})
		nc.Close()
		if err := recvErr(t, replied); err != nil {
			t.Errorf("Reply: %v", err)
		}
		mu.Lock()
		if want := []string{"written <nil>", "served direct"}; !slices.Equal(events, want) {
			t.Errorf("events %q, want %q", events, want)
		}
		mu.Unlock()
	})
	t.Run("closing", func(t *testing.T) {
		s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, nil)
		nc, br := dial(t, s.testServer)
		write(t, nc, "GET /park?id=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		p := s.next(t)
		var calls []error
		if err := p.c.Reply(http.StatusOK, p.h, []byte("c"), func(err error) { calls = append(calls, err) }); err != nil {
			t.Fatal(err)
		}
		if len(calls) != 1 || calls[0] != nil {
			t.Errorf("written called with %v, want once with nil", calls)
		}
		expect(t, br, "GET", answer{200, "http", "c", true})
		expectEOF(t, br)
	})
	t.Run("client gone", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("tells when the reset has arrived with Alive, tested on linux")
		}
		s := newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, nil)
		nc, _ := dial(t, s.testServer)
		write(t, nc, "GET /park?id=g HTTP/1.1\r\nHost: x\r\n\r\n")
		p := s.next(t)
		tc := nc.(*net.TCPConn)
		if err := tc.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		tc.Close() // resets the connection
		waitFor(t, "seen gone", func() bool { return !p.c.Alive() })
		var calls []error
		err := p.c.Reply(http.StatusOK, p.h, []byte("lost"), func(err error) { calls = append(calls, err) })
		if err == nil {
			t.Fatal("Reply to a reset connection succeeded")
		}
		if len(calls) != 1 || calls[0] == nil || calls[0].Error() != err.Error() {
			t.Errorf("written called with %v, want once with %v", calls, err)
		}
		waitParked(t, s.pl)
	})
}

// TestDirectTLS: TLS connections are never served directly; their polls
// go on through the http.Server.
func TestDirectTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	var matched atomic.Int64
	s := startDirect(t, park.Direct{Wait: wait, Match: func(*http.Request) bool { matched.Add(1); return true }}, nil,
		func(ln net.Listener) net.Listener {
			return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: wait}
	url := "https://" + s.addr

	var first result
	const n = 3
	for i := range n {
		id := strconv.Itoa(i)
		ch := goDo(c, get(t, url+"/park?id="+id))
		p := s.next(t)
		reply(t, p, http.StatusOK, "tls "+id) // gives the connection back at once
		r := recv(t, ch)
		checkAnswer(t, r, http.StatusOK, id, "tls "+id)
		if r.resp.TLS == nil || r.resp.ProtoMajor != 1 {
			t.Fatalf("answer over %s, TLS %v", r.resp.Proto, r.resp.TLS != nil)
		}
		if via := r.resp.Header.Get("X-Via"); via != "http" {
			t.Errorf("poll %d parked via %q", i, via)
		}
		if i == 0 {
			first = r
		} else if !r.reused || r.local != first.local {
			t.Errorf("poll %d on a new connection", i)
		}
	}
	r := do(c, get(t, url+"/plain"))
	if r.err != nil || r.resp.Header.Get("X-Via") != "http" || r.body != "plain "+first.local {
		t.Errorf("/plain: %v %q", r.err, r.body)
	}
	if got := matched.Load(); got != 0 {
		t.Errorf("Match asked %d times", got)
	}
	if got := s.inner.n.Load(); got != 1 {
		t.Errorf("%d connections accepted, want 1", got)
	}
	if got := s.news.Load(); got != n+1 {
		t.Errorf("the http.Server took %d connections, want %d", got, n+1)
	}
	waitParked(t, s.pl)
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestDirectClosedWhileServing: an answer served directly after the
// Listener was closed closes the connection.
func TestDirectClosedWhileServing(t *testing.T) {
	var s *directServer
	s = newDirectServer(t, park.Direct{Wait: wait, Match: matchAll}, map[string]http.HandlerFunc{
		"/closing": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Via", via(w))
			s.pl.Close()
			io.WriteString(w, "closing")
		},
	})
	nc, br, replied := parkRaw(t, s, "")
	write(t, nc, "GET /closing HTTP/1.1\r\nHost: x\r\n\r\n")
	expect(t, br, "GET", answer{200, "direct", "closing", true})
	expectEOF(t, br)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	waitParked(t, s.pl)
}

// TestDirectHijack: a handler served directly that takes the connection
// over (a WebSocket, say) gets it without deadlines.
func TestDirectHijack(t *testing.T) {
	handlerErr := make(chan error, 1)
	s := newDirectServer(t, park.Direct{Wait: 20 * time.Millisecond, Match: matchAll}, map[string]http.HandlerFunc{
		"/upgrade": func(w http.ResponseWriter, _ *http.Request) {
			if via(w) != "direct" {
				handlerErr <- errors.New("not served directly")
				return
			}
			nc, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				handlerErr <- err
				return
			}
			defer nc.Close()
			if _, err := io.WriteString(nc, "ready\n"); err != nil {
				handlerErr <- err
				return
			}
			line, err := rw.ReadString('\n')
			if err == nil {
				_, err = io.WriteString(nc, "got "+line)
			}
			handlerErr <- err
		},
	})
	// Sent while parked, so it is there within the short Wait.
	nc, br, replied := parkRaw(t, s, "GET /upgrade HTTP/1.1\r\nHost: x\r\n\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	time.Sleep(50 * time.Millisecond) // past Wait, which must not bound the handler's reads
	write(t, nc, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "got ping\n" {
		t.Errorf("read %q, %v", line, err)
	}
	select {
	case err := <-handlerErr:
		if err != nil {
			t.Errorf("handler: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("handler still running")
	}
	expectEOF(t, br)
	if err := recvErr(t, replied); err != nil {
		t.Errorf("Reply: %v", err)
	}
	waitParked(t, s.pl)
}
