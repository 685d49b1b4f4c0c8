package park

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReadingNext is the number of connections l waits on for a next request
// to serve directly, for park_test to know when a connection has got
// there.
func ReadingNext(l *Listener) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reading)
}

func TestAppendHead(t *testing.T) {
	many := make(http.Header)
	for i := range 40 {
		many.Add("X-Key-"+strconv.Itoa(39-i), "v"+strconv.Itoa(i))
	}
	tests := []struct {
		name string
		h    http.Header
	}{
		{"nil", nil},
		{"empty", http.Header{}},
		{"one", http.Header{"Content-Type": {"text/plain"}}},
		{"sorted", http.Header{"X-B": {"2"}, "X-A": {"1"}, "Content-Length": {"3"}, "Date": {"now"}}},
		{"many values", http.Header{"Set-Cookie": {"a=1", "b=2", "c=3"}, "Vary": {"Accept", "Origin"}}},
		{"empty value", http.Header{"X-Empty": {""}, "X-None": {}, "X-Nil": nil}},
		{"spaces", http.Header{"X-Pad": {"  padded \t", "\t\r\n lead", "trail \r\n"}}},
		{"line breaks", http.Header{"X-Split": {"a\r\nb", "c\nd", "e\rf", "\r\n\r\n", "g\r\n\r\nInjected: yes"}}},
		{"other controls", http.Header{"X-Ctl": {"a\x00b", "\x0bv\x0b", "tab\tinside"}}},
		{"non-canonical keys", http.Header{"x-lower": {"1"}, "X-UPPER": {"2"}}},
		// http.Header.Write drops keys that are no header names, so that
		// none can break the head.
		{"invalid keys", http.Header{"Bad Key": {"1"}, "X-Ok": {"2"}, "Inject\r\nSet-Cookie": {"evil"}, "": {"none"}, "A:B": {"3"}}},
		{"many keys", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			want.WriteString("HTTP/1.1 200 OK\r\n")
			if err := tt.h.Write(&want); err != nil {
				t.Fatal(err)
			}
			want.WriteString("\r\n")
			prefix := []byte("kept")
			got := appendHead(prefix, http.StatusOK, tt.h)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("appendHead dropped what b held: %q", got)
			}
			if got := string(got[len(prefix):]); got != want.String() {
				t.Errorf("appendHead =\n%q\nwant\n%q", got, want.String())
			}
		})
	}
}

func TestAppendHeadStatusLine(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{100, "HTTP/1.1 100 Continue\r\n"},
		{200, "HTTP/1.1 200 OK\r\n"},
		{204, "HTTP/1.1 204 No Content\r\n"},
		{304, "HTTP/1.1 304 Not Modified\r\n"},
		{404, "HTTP/1.1 404 Not Found\r\n"},
		{418, "HTTP/1.1 418 I'm a teapot\r\n"},
		{503, "HTTP/1.1 503 Service Unavailable\r\n"},
		{299, "HTTP/1.1 299 status code 299\r\n"},
		{599, "HTTP/1.1 599 status code 599\r\n"},
		{999, "HTTP/1.1 999 status code 999\r\n"},
	}
	for _, tt := range tests {
		got := string(appendHead(nil, tt.status, nil))
		if want := tt.want + "\r\n"; got != want {
			t.Errorf("status %d: %q, want %q", tt.status, got, want)
		}
	}
}

// TestWriteResponse reads what writeResponse sends with a client's
// parser, and checks which answers have a Content-Length and a body.
func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		head     bool
		keep     bool
		body     string
		wantLen  string // "" for no Content-Length
		wantBody string
	}{
		{"200", 200, false, true, "hello", "5", "hello"},
		{"200 empty", 200, false, true, "", "0", ""},
		{"200 close", 200, false, false, "bye", "3", "bye"},
		{"404", 404, false, true, "nope", "4", "nope"},
		{"HEAD", 200, true, true, "hello", "5", ""},
		{"204", 204, false, true, "dropped", "", ""},
		{"304", 304, false, true, "dropped", "", ""},
		{"103", 103, false, true, "dropped", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			if err := client.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			h := http.Header{"X-Test": {"t"}}
			errc := make(chan error, 1)
			go func() { errc <- writeResponse(server, tt.status, h, []byte(tt.body), tt.head, tt.keep) }()
			br := bufio.NewReader(client)
			method := http.MethodGet
			if tt.head {
				method = http.MethodHead
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if n := br.Buffered(); n > 0 {
				t.Errorf("%d bytes after the answer", n)
			}
			if !tt.keep {
				// Closed after the answer: nothing more comes.
				if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
					t.Errorf("after the answer: %q, %v", rest, err)
				}
			}
			if err := <-errc; err != nil {
				t.Fatalf("writeResponse: %v", err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("X-Test") != "t" {
				t.Errorf("got %d, X-Test %q", resp.StatusCode, resp.Header.Get("X-Test"))
			}
			if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
				t.Errorf("Date: %v", err)
			}
			if got := strings.Join(resp.Header["Content-Length"], ","); got != tt.wantLen {
				t.Errorf("Content-Length = %q, want %q", got, tt.wantLen)
			}
			if string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			if resp.Close == tt.keep {
				t.Errorf("Connection: close = %v with keep %v", resp.Close, tt.keep)
			}
			// The connection is open when kept, closed otherwise.
			err = server.SetWriteDeadline(time.Now())
			if closed := errors.Is(err, io.ErrClosedPipe); closed == tt.keep {
				t.Errorf("connection closed = %v (%v) with keep %v", closed, err, tt.keep)
			}
		})
	}
}

// TestParseRequest: which request heads may be served directly.
func TestParseRequest(t *testing.T) {
	const host = "Host: example.com\r\n"
	tests := []struct {
		name string
		head string
		ok   bool
	}{
		{"GET", "GET /a?b=c HTTP/1.1\r\n" + host + "\r\n", true},
		{"headers", "GET / HTTP/1.1\r\n" + host + "Accept: */*\r\nAuthorization: Bearer x\r\n\r\n", true},
		{"keep-alive", "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive\r\n\r\n", true},
		{"Content-Length 0", "GET / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", true},
		{"host with port", "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", true},
		// A HEAD answer has no body: net/http drops what the handler writes.
		{"HEAD", "HEAD / HTTP/1.1\r\n" + host + "\r\n", false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n" + host + "\r\n", false},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\n" + host + "Connection: keep-alive\r\n\r\n", false},
		{"HTTP/2", "GET / HTTP/2.0\r\n" + host + "\r\n", false},
		{"close", "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", false},
		{"close among tokens", "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive, Close\r\n\r\n", false},
		{"body", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\n", false},
		{"chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", false},
		{"Expect 100-continue", "GET / HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n", false},
		{"Expect other", "GET / HTTP/1.1\r\n" + host + "Expect: x\r\n\r\n", false},
		{"absolute form", "GET http://example.com/ HTTP/1.1\r\n" + host + "\r\n", false},
		{"authority form", "CONNECT example.com:443 HTTP/1.1\r\n" + host + "\r\n", false},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", false},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", false},
		{"two Hosts", "GET / HTTP/1.1\r\n" + host + host + "\r\n", false},
		{"invalid Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", false},
		{"invalid name", "GET / HTTP/1.1\r\n" + host + "Bad Name: v\r\n\r\n", false},
		{"invalid value", "GET / HTTP/1.1\r\n" + host + "X-A: a\x01b\r\n\r\n", false},
		{"bad request line", "GET /\r\n" + host + "\r\n", false},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, ok := parseRequest([]byte(tt.head))
			if ok != tt.ok {
				t.Fatalf("parseRequest = %v, want %v", ok, tt.ok)
			}
			if ok && (req.Host == "" || req.URL.Path == "" || req.Body == nil) {
				t.Errorf("request Host %q, path %q, body %v", req.Host, req.URL.Path, req.Body)
			}
		})
	}
}

// TestDirectWriter drives a directWriter without a connection: what a
// handler's calls leave to be sent.
func TestDirectWriter(t *testing.T) {
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter)
		status int
		ctype  string // "-" for none
		body   string
	}{
		{"nothing", func(http.ResponseWriter) {}, 200, "-", ""},
		{"text", func(w http.ResponseWriter) { io.WriteString(w, "hi there") }, 200, "text/plain; charset=utf-8", "hi there"},
		{"html", func(w http.ResponseWriter) { io.WriteString(w, "<html><body>") }, 200, "text/html; charset=utf-8", "<html><body>"},
		{"set type", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}, 200, "application/json", "{}"},
		{"no type wanted", func(w http.ResponseWriter) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "hi")
		}, 200, "-", "hi"},
		{"encoded", func(w http.ResponseWriter) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
		}, 200, "-", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"},
		{"first status wins", func(w http.ResponseWriter) {
			w.WriteHeader(201)
			w.WriteHeader(500)
			io.WriteString(w, "x")
		}, 201, "text/plain; charset=utf-8", "x"},
		{"1xx not kept", func(w http.ResponseWriter) {
			w.WriteHeader(103)
			w.WriteHeader(202)
		}, 202, "-", ""},
		{"204", func(w http.ResponseWriter) {
			w.WriteHeader(204)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				panic(err)
			}
		}, 204, "-", ""},
		{"304", func(w http.ResponseWriter) {
			w.WriteHeader(304)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				panic(err)
			}
		}, 304, "-", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &directWriter{header: make(http.Header)}
			tt.handle(w)
			w.complete()
			if w.streaming || w.hijacked {
				t.Fatalf("streaming %v, hijacked %v", w.streaming, w.hijacked)
			}
			if w.status != tt.status || string(w.body) != tt.body {
				t.Errorf("got %d %q, want %d %q", w.status, w.body, tt.status, tt.body)
			}
			ctype, ok := w.header["Content-Type"]
			got := strings.Join(ctype, ",")
			if !ok || len(ctype) == 0 {
				got = "-"
			}
			if got != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", got, tt.ctype)
			}
		})
	}
}

func TestDirectWriterInvalidCode(t *testing.T) {
	for _, code := range []int{0, 99, 1000} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("WriteHeader(%d) did not panic", code)
				}
			}()
			(&directWriter{header: make(http.Header)}).WriteHeader(code)
		}()
	}
}

func TestServeDirectDefaults(t *testing.T) {
	l := NewListener(nil)
	l.ServeDirect(Direct{Match: func(*http.Request) bool { return true }})
	if l.direct.Wait != time.Second || l.direct.Log == nil {
		t.Errorf("Wait %v, Log %v; want 1s and a logger", l.direct.Wait, l.direct.Log)
	}
	l.ServeDirect(Direct{Wait: -1})
	if l.direct.Wait != time.Second {
		t.Errorf("Wait %v for a negative one, want 1s", l.direct.Wait)
	}
	l.ServeDirect(Direct{Wait: time.Minute})
	if l.direct.Wait != time.Minute {
		t.Errorf("Wait %v, want 1m", l.direct.Wait)
	}
}
