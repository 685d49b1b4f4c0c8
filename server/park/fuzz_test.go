package park

import (
	"bufio"
	"bytes"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pipeListener hands an http.Server the server ends of in-memory pipes.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { close(l.done); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// seen is what the http.Server's handler saw of a request.
type seen struct {
	method, uri, host string
	header            http.Header
}

// FuzzParseRequest: any request header read off a connection. One that
// parseRequest passes for direct serving is one that net/http's server
// also accepts and reads the same way (method, target, Host, header), so
// serving it directly changes nothing a client or handler can see.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /api/v1/login-sessions/abc/status?after=pending&wait=30 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer x\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX :b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET //a/b HTTP/1.1\r\nHost: a\r\n\r\n",
		"get / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.01\r\nHost: a\r\n\r\n",
		"GET / HTTP/01.1\r\nHost: a\r\n\r\n",
		"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=b\r\nCookie: c=d\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	got := make(chan seen, 1)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- seen{r.Method, r.RequestURI, r.Host, r.Header.Clone()}
			w.WriteHeader(http.StatusNoContent)
		}),
		ErrorLog: nil,
	}
	srv.SetKeepAlivesEnabled(true)
	go srv.Serve(l) //nolint:errcheck // ends with Close
	f.Cleanup(func() { srv.Close() })

	f.Fuzz(func(t *testing.T, head []byte) {
		// Direct serving parses only what ends with the header's end,
		// as readNext reads it.
		end := bytes.Index(head, []byte("\r\n\r\n"))
		if end < 0 {
			head, end = append(head[:len(head):len(head)], "\r\n\r\n"...), len(head)
		}
		if len(head) > maxHeader || end != len(head)-4 {
			return
		}
		req, ok := parseRequest(head)
		if !ok {
			return
		}
		want := seen{req.Method, req.RequestURI, req.Host, req.Header}

		client, server := net.Pipe()
		defer client.Close()
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))
		l.conns <- server
		go client.Write(head) //nolint:errcheck // a refusal may close first
		resp, err := http.ReadResponse(bufio.NewReader(client), nil)
		if err != nil {
			t.Fatalf("net/http gave no answer to %q: %v", head, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("parseRequest passed %q, net/http answers %s", head, resp.Status)
		}
		s := <-got
		if s.method != want.method || s.uri != want.uri || s.host != want.host || !maps.EqualFunc(s.header, want.header, func(a, b []string) bool {
			return strings.Join(a, "\x00") == strings.Join(b, "\x00")
		}) {
			t.Fatalf("%q: parseRequest read %+v, net/http %+v", head, want, s)
		}
	})
}
