//go:build !race

// The race detector's instrumentation changes frame sizes, so this test
// runs without it (make test runs it so too).

package httpapi_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/shared/api"
)

// TestHeldStreamsParkOnSmallStacks guards the design of wake.go: a held
// event stream parks with so little of its stack in use that it keeps 8
// KiB, as the garbage collector halves a parked goroutine's stack only
// while less than a quarter of it is in use. A few KiB of frames put back
// under the parked handler would keep every waiting desktop on 16 KiB,
// which no other test would notice. Each stream costs its handler's stack
// and that of net/http's background reader (2 or 4 KiB); the clients here
// are bare connections, with no goroutine of their own.
func TestHeldStreamsParkOnSmallStacks(t *testing.T) {
	e := newNetEnv(t, io.Discard, nil)
	const n = 300
	before := stacksAfterGC()
	addr := e.hs.Listener.Addr().String()
	for range n {
		conn, err := net.DialTimeout("tcp", addr, bound)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := conn.SetDeadline(time.Now().Add(bound)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		// As a desktop does: the session is created on the connection
		// the stream then holds, so the handler's goroutine has grown its
		// stack for the store and JSON work before it parks.
		var s api.CreateSessionResponse
		resp := roundTrip(t, conn, br, "POST", "/api/v1/login-sessions", `{"device_name":"Laptop","platform":"linux/amd64"}`, "")
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %s, %v", resp.Status, err)
		}
		resp.Body.Close()
		resp = roundTrip(t, conn, br, "GET", "/api/v1/login-sessions/"+s.ID+"/events", "", s.PollToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream answered %s", resp.Status)
		}
		// The first event is out: the handler parks.
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "event:") {
			t.Fatalf("first line %q, %v; want an event", line, err)
		}
	}
	e.waitHeld(t, n)
	per := (stacksAfterGC() - before) / n
	t.Logf("%.1f KiB of stack per held stream", float64(per)/1024)
	if per > 13<<10 {
		t.Errorf("%.1f KiB of stack per held stream, want about 12 (8 KiB for the handler, up to 4 for the reader) and at most 13: frames under the parked handler grew; see wake.go", float64(per)/1024)
	}
}

// roundTrip sends one request on conn and reads its answer's head.
func roundTrip(t *testing.T, conn net.Conn, br *bufio.Reader, method, path, body, bearer string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+conn.RemoteAddr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// stacksAfterGC is the stack memory in use once collections have shrunk
// what they can.
func stacksAfterGC() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.StackInuse
}
