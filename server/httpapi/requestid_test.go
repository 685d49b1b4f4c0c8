package httpapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// brokenSessions is a store whose session reads fail.
type brokenSessions struct{ store.Store }

func (brokenSessions) Session(context.Context, string) (login.Session, error) {
	return login.Session{}, errors.New("disk on fire")
}

// logLines are the lines of log that contain msg.
func logLines(log, msg string) []string {
	var out []string
	for l := range strings.Lines(log) {
		if strings.Contains(l, msg) {
			out = append(out, l)
		}
	}
	return out
}

// The request id travels in the request's context: lines logged deep
// inside a handler carry it without the handler naming it, once, and the
// response echoes it.
func TestRequestIDOnEveryLine(t *testing.T) {
	var buf syncBuffer
	e := newEnvLog(t, &buf)
	r0 := e.login("alice", alicePass).RefreshToken
	expect(t, e.refresh(r0), 200, "")
	w := e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + r0 + `"}`,
		header: map[string]string{"X-Request-ID": "trace-reuse-1"}})
	expect(t, w, 401, api.ErrUnauthorized)
	if got := w.Header().Get("X-Request-ID"); got != "trace-reuse-1" {
		t.Errorf("X-Request-ID %q, want the client's trace-reuse-1", got)
	}
	for _, msg := range []string{"refresh token reused", "msg=request"} {
		lines := logLines(buf.String(), "request_id=trace-reuse-1")
		if n := len(logLines(strings.Join(lines, ""), msg)); n != 1 {
			t.Errorf("%d lines %q with request_id=trace-reuse-1 in %q, want 1", n, msg, buf.String())
		}
	}

	// An internal error: the server makes the id when the client sends
	// none (or an unusable one), and logs the error with it.
	e = newEnvDeps(t, &buf, func(d *httpapi.Deps) { d.Store = brokenSessions{d.Store} })
	s := e.create()
	w = e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status", bearer: s.PollToken,
		header: map[string]string{"X-Request-ID": "bad id with spaces"}})
	expect(t, w, 500, api.ErrInternal)
	id := w.Header().Get("X-Request-ID")
	if id == "" || id == "bad id with spaces" {
		t.Fatalf("X-Request-ID %q, want one the server made", id)
	}
	lines := logLines(buf.String(), "msg=\"internal error\"")
	if len(lines) != 1 || !strings.Contains(lines[0], "request_id="+id+"\n") || !strings.Contains(lines[0], "disk on fire") {
		t.Fatalf("internal error lines %q, want one with request_id=%s", lines, id)
	}
	if strings.Count(lines[0], "request_id=") != 1 {
		t.Errorf("line %q names the request id more than once", lines[0])
	}
}
