package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// desktopSignIn signs a desktop in through a login session confirmed by
// the phone token phone, and returns its tokens.
func (e *env) desktopSignIn(phone string) api.Tokens {
	e.t.Helper()
	s := e.create()
	expect(e.t, e.phone("scan", s.ID, phone), 200, "")
	expect(e.t, e.phone("confirm", s.ID, phone), 200, "")
	st := decode[api.SessionStatusResponse](e.t, e.status(s, ""))
	if st.Tokens == nil {
		e.t.Fatalf("no tokens: %+v", st)
	}
	return *st.Tokens
}

// loginAs signs in with a password and a device description.
func (e *env) loginAs(user, pass, device string) api.LoginResponse {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/v1/auth/login", remote: "198.51.100.7:4000",
		body: `{"username":"` + user + `","password":"` + pass + `","device_name":"` + device + `","platform":"ios","app_name":"Safari"}`})
	expect(e.t, w, 200, "")
	return decode[api.LoginResponse](e.t, w)
}

func (e *env) devices(token string) api.DevicesResponse {
	e.t.Helper()
	w := e.do(req{method: "GET", path: "/api/v1/devices", bearer: token})
	expect(e.t, w, 200, "")
	return decode[api.DevicesResponse](e.t, w)
}

// deviceOfKind is the only listed device of kind.
func deviceOfKind(t *testing.T, ds api.DevicesResponse, kind string) api.SignedInDevice {
	t.Helper()
	var found []api.SignedInDevice
	for _, d := range ds.Devices {
		if d.Kind == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d devices of kind %s in %+v, want 1", len(found), kind, ds)
	}
	return found[0]
}

func TestDevicesListed(t *testing.T) {
	e := newEnv(t)
	old := e.loginAs("alice", alicePass, "Old phone")
	e.clock.Advance(time.Second)
	desk := e.desktopSignIn(old.AccessToken)
	// A desktop's token may not list or end sign-ins.
	expect(t, e.do(req{method: "GET", path: "/api/v1/devices", bearer: desk.AccessToken}), 403, api.ErrForbidden)
	expect(t, e.do(req{method: "GET", path: "/api/v1/devices"}), 401, api.ErrUnauthorized)
	e.clock.Advance(time.Second)
	w := e.do(req{method: "POST", path: "/api/v1/auth/cookie", remote: "198.51.100.8:4000",
		body: `{"username":"alice","password":"` + alicePass + `","device_name":"Pixel\u0007 8\u202e","platform":"android"}`})
	expect(t, w, 200, "")
	cookie := phoneCookie(t, w)
	e.loginAs("bob", bobPass, "Bob's phone")

	e.clock.Advance(api.NewDeviceHours*time.Hour + time.Minute)
	fresh := e.loginAs("alice", alicePass, "New phone")

	ds := e.devices(fresh.AccessToken)
	if len(ds.Devices) != 4 {
		t.Fatalf("alice's devices %+v, want 4 (bob's not among them)", ds)
	}
	names := []string{}
	for _, d := range ds.Devices {
		names = append(names, d.Name)
	}
	// Newest first; the cookie sign-in's name is cleaned of control and
	// format characters.
	if got := strings.Join(names, ","); got != "New phone,Pixel 8,Work laptop,Old phone" {
		t.Errorf("order %q", got)
	}
	for _, d := range ds.Devices {
		if d.Current != (d.Name == "New phone") || d.New != (d.Name == "New phone") {
			t.Errorf("%s: current %v new %v; only the requesting, recent sign-in is current and new", d.Name, d.Current, d.New)
		}
		if d.CreatedAt.Nanosecond() != 0 || d.LastUsedAt.Nanosecond() != 0 || d.CreatedAt.Location() != time.UTC {
			t.Errorf("%s: times %v %v, want whole seconds in UTC", d.Name, d.CreatedAt, d.LastUsedAt)
		}
	}
	d := deviceOfKind(t, ds, api.DeviceDesktop)
	if d.Name != "Work laptop" || d.Platform != "linux/amd64" || d.AppName != "qrlogin 1.0" || d.IP != "192.0.2.1" {
		t.Errorf("desktop %+v: its description and address come from its login session", d)
	}
	if ds.Devices[0].Kind != api.DevicePhone || ds.Devices[0].IP != "198.51.100.7" || ds.Devices[0].Platform != "ios" || ds.Devices[0].AppName != "Safari" {
		t.Errorf("password sign-in %+v", ds.Devices[0])
	}

	// The phone's cookie names its own sign-in as current.
	w = e.do(req{method: "GET", path: "/api/v1/devices", cookie: cookie})
	expect(t, w, 200, "")
	for _, d := range decode[api.DevicesResponse](t, w).Devices {
		if d.Current != (d.Name == "Pixel 8") {
			t.Errorf("by cookie: %s current %v", d.Name, d.Current)
		}
	}
	// The desktop's token, expired by now, is refused in any case.
	expect(t, e.do(req{method: "DELETE", path: "/api/v1/devices/" + d.ID, bearer: desk.AccessToken}), 401, api.ErrUnauthorized)
}

// A request records itself as its device's latest use, at most once a
// minute.
func TestDeviceLastUse(t *testing.T) {
	e := newEnv(t)
	phone := e.loginAs("alice", alicePass, "Phone")
	e.clock.Advance(10 * time.Minute)
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", bearer: phone.AccessToken, remote: "203.0.113.5:1"}), 200, "")
	// Within the minute another request writes nothing.
	e.clock.Advance(30 * time.Second)
	w := e.do(req{method: "GET", path: "/api/v1/devices", bearer: phone.AccessToken, remote: "203.0.113.5:1"})
	d := decode[api.DevicesResponse](t, w).Devices[0]
	if want := e.clock.Now().UTC().Add(-30 * time.Second).Truncate(time.Second); !d.LastUsedAt.Equal(want) || d.LastIP != "203.0.113.5" || d.IP != "198.51.100.7" {
		t.Errorf("after a use: %+v, want last use %v from 203.0.113.5", d, want)
	}
}

type recordedAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (r *recordedAudit) Record(_ context.Context, e audit.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
}

func (r *recordedAudit) events() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Entry(nil), r.entries...)
}

// newNetEnvDeps is newNetEnv with deps adjusting the server's
// dependencies.
func newNetEnvDeps(t *testing.T, deps func(*httpapi.Deps)) *netEnv {
	t.Helper()
	ne := &netEnv{store: &panicStore{}}
	ne.env = newEnvDeps(t, t.Output(), func(d *httpapi.Deps) {
		ne.store.Store = d.Store
		d.Store = ne.store
		deps(d)
	})
	ne.hs = httptest.NewServer(ne.srv.Handler())
	t.Cleanup(func() {
		ne.srv.Shutdown()
		ne.hs.Close()
	})
	return ne
}

// meEvents is an open GET /api/v1/me/events stream.
type meEvents struct {
	resp *http.Response
	sc   *bufio.Scanner
}

// openMeEvents opens the account event stream with token; it fails the
// test unless the server answers 200.
func (ne *netEnv) openMeEvents(t *testing.T, token string) *meEvents {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	r, _ := http.NewRequestWithContext(ctx, "GET", ne.hs.URL+"/api/v1/me/events", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := ne.hs.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != api.EventStreamType {
		t.Fatalf("me/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &meEvents{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// revoked reads up to the stream's revoked event, past pings, and returns
// its reason; then the stream must end.
func (m *meEvents) revoked(t *testing.T) string {
	t.Helper()
	var event, data string
	for m.sc.Scan() {
		l := m.sc.Text()
		switch {
		case strings.HasPrefix(l, ":"):
		case strings.HasPrefix(l, "event:"):
			event = strings.TrimPrefix(strings.TrimPrefix(l, "event:"), " ")
		case strings.HasPrefix(l, "data:"):
			data = strings.TrimPrefix(strings.TrimPrefix(l, "data:"), " ")
		case l == "" && event != "":
			var r api.Revoked
			if event != api.EventRevoked || json.Unmarshal([]byte(data), &r) != nil {
				t.Fatalf("event %q data %q", event, data)
			}
			if m.sc.Scan() {
				t.Fatalf("the stream goes on after revoked: %q", m.sc.Text())
			}
			return r.Reason
		}
	}
	t.Fatalf("stream ended without a revoked event: %v", m.sc.Err())
	return ""
}

func TestDeleteDeviceEndsItAtOnce(t *testing.T) {
	rec := &recordedAudit{}
	e := newNetEnvDeps(t, func(d *httpapi.Deps) { d.Audit = rec })
	phone := e.loginAs("alice", alicePass, "Phone")
	desk := e.desktopSignIn(phone.AccessToken)
	e.clock.Advance(time.Second)
	other := e.desktopSignIn(phone.AccessToken)
	bob := e.loginAs("bob", bobPass, "Bob's phone")
	stream := e.openMeEvents(t, desk.AccessToken)
	e.waitHeld(t, 1)

	var id string
	for _, d := range e.devices(phone.AccessToken).Devices {
		if d.Kind == api.DeviceDesktop && !d.Current {
			id = d.ID // newest first: the last is desk, the first signed in
		}
	}
	// Another user's device, an unknown and a malformed one: 404, nothing ended.
	for _, tt := range []struct{ token, id string }{
		{bob.AccessToken, id}, {phone.AccessToken, strings.Repeat("A", 22)}, {phone.AccessToken, "no*such"},
	} {
		expect(t, e.do(req{method: "DELETE", path: "/api/v1/devices/" + tt.id, bearer: tt.token}), 404, api.ErrNotFound)
	}
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", bearer: desk.AccessToken}), 200, "")

	w := e.do(req{method: "DELETE", path: "/api/v1/devices/" + id, bearer: phone.AccessToken})
	if w.Code != 204 {
		t.Fatalf("DELETE: %d %s", w.Code, w.Body)
	}
	if got := stream.revoked(t); got != api.ReasonSignedOut {
		t.Errorf("stream told %q, want %q", got, api.ReasonSignedOut)
	}
	e.waitHeld(t, 0)
	w = e.do(req{method: "GET", path: "/api/v1/me", bearer: desk.AccessToken})
	expect(t, w, 401, api.ErrUnauthorized)
	if !strings.Contains(w.Body.String(), "This sign-in was ended; sign in again.") {
		t.Errorf("refusal %s", w.Body)
	}
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + desk.RefreshToken + `"}`}), 401, api.ErrUnauthorized)
	expect(t, e.do(req{method: "DELETE", path: "/api/v1/devices/" + id, bearer: phone.AccessToken}), 404, api.ErrNotFound)
	// The other desktop, and the phone, are untouched.
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", bearer: other.AccessToken}), 200, "")
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + other.RefreshToken + `"}`}), 200, "")
	if n := len(e.devices(phone.AccessToken).Devices); n != 2 {
		t.Errorf("%d devices left, want 2", n)
	}
	// An ended sign-in opening its stream later learns why at once.
	if got := e.openMeEvents(t, desk.AccessToken).revoked(t); got != api.ReasonSignedOut {
		t.Errorf("late stream told %q", got)
	}

	// The sign-out's own entry; the sign-ins before it have theirs.
	var entries []audit.Entry
	for _, en := range rec.events() {
		if en.Event == audit.DeviceSignedOut {
			entries = append(entries, en)
		}
	}
	checkNoSecrets(t, rec.events(), desk.AccessToken, desk.RefreshToken, phone.AccessToken, alicePass)
	if len(entries) != 1 || entries[0].Event != audit.DeviceSignedOut || entries[0].DeviceID != id ||
		entries[0].UserID != e.alice || entries[0].Device != "Work laptop (qrlogin 1.0)" || entries[0].Detail["by"] != "phone" {
		t.Fatalf("audit %+v", entries)
	}
	checkNoSecrets(t, entries, desk.AccessToken, desk.RefreshToken, phone.AccessToken, alicePass)
}

// checkNoSecrets fails if an audit entry holds any of secrets.
func checkNoSecrets(t *testing.T, entries []audit.Entry, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(entries)
	for _, s := range secrets {
		if strings.Contains(string(b), s) {
			t.Fatalf("an audit entry holds a secret: %s", b)
		}
	}
}

func TestPhoneSignsItselfOut(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: `{"username":"alice","password":"` + alicePass + `"}`})
	expect(t, w, 200, "")
	cookie := phoneCookie(t, w)
	w = e.do(req{method: "GET", path: "/api/v1/devices", cookie: cookie})
	self := deviceOfKind(t, decode[api.DevicesResponse](t, w), api.DevicePhone)
	if !self.Current {
		t.Fatal("the cookie's own device is not current")
	}
	w = e.do(req{method: "DELETE", path: "/api/v1/devices/" + self.ID, cookie: cookie})
	if w.Code != 204 {
		t.Fatalf("DELETE own device: %d %s", w.Code, w.Body)
	}
	if c := phoneCookie(t, w); c.MaxAge >= 0 {
		t.Errorf("the cookie was not cleared: %+v", c)
	}
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", cookie: cookie}), 401, api.ErrUnauthorized)
}

func TestSignOutsEndTheirStreams(t *testing.T) {
	tests := []struct {
		name   string
		end    func(e *netEnv, phone api.LoginResponse, desk api.Tokens)
		reason string
	}{
		{"own logout", func(e *netEnv, _ api.LoginResponse, desk api.Tokens) {
			expect(e.t, e.do(req{method: "POST", path: "/api/v1/auth/logout", bearer: desk.AccessToken,
				body: `{"refresh_token":"` + desk.RefreshToken + `"}`}), 204, "")
		}, api.ReasonSignedOut},
		{"logout-all", func(e *netEnv, phone api.LoginResponse, _ api.Tokens) {
			expect(e.t, e.do(req{method: "POST", path: "/api/v1/auth/logout-all", bearer: phone.AccessToken}), 204, "")
		}, api.ReasonLogoutAll},
		{"refresh reuse", func(e *netEnv, _ api.LoginResponse, desk api.Tokens) {
			body := `{"refresh_token":"` + desk.RefreshToken + `"}`
			expect(e.t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: body}), 200, "")
			expect(e.t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: body}), 401, api.ErrUnauthorized)
		}, api.ReasonReuseDetected},
		// Changed and deleted from the command line, another process: no
		// publish reaches the stream, which checks again at its ping.
		{"user passwd", func(e *netEnv, _ api.LoginResponse, _ api.Tokens) {
			if err := e.accts.SetPassword(context.Background(), "alice", "a-new-password"); err != nil {
				e.t.Fatal(err)
			}
		}, api.ReasonPasswordChanged},
		{"user delete", func(e *netEnv, _ api.LoginResponse, _ api.Tokens) {
			if err := e.accts.Delete(context.Background(), "alice"); err != nil {
				e.t.Fatal(err)
			}
		}, api.ReasonUserDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newNetEnv(t, t.Output(), nil, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
				c.PingInterval = 50 * time.Millisecond
			})
			phone := e.loginAs("alice", alicePass, "Phone")
			desk := e.desktopSignIn(phone.AccessToken)
			stream := e.openMeEvents(t, desk.AccessToken)
			e.waitHeld(t, 1)
			tt.end(e, phone, desk)
			if got := stream.revoked(t); got != tt.reason {
				t.Errorf("stream told %q, want %q", got, tt.reason)
			}
			e.waitHeld(t, 0)
		})
	}
}

func TestMeEventsRefusedBeforeAnyEvent(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil)
	s := e.create()
	for _, tt := range []struct{ name, token string }{
		{"no token", ""},
		{"garbage", "not-a-token"},
		{"poll token", s.PollToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: "GET", path: "/api/v1/me/events", bearer: tt.token})
			expect(t, w, 401, api.ErrUnauthorized)
			if strings.Contains(w.Body.String(), "event:") {
				t.Fatalf("an event before the refusal: %s", w.Body)
			}
		})
	}
	// Expired: 401 too, not a revoked event.
	phone := e.loginAs("alice", alicePass, "Phone")
	e.clock.Advance(16 * time.Minute)
	expect(t, e.do(req{method: "GET", path: "/api/v1/me/events", bearer: phone.AccessToken}), 401, api.ErrUnauthorized)
	e.waitHeld(t, 0)
}

// One stream per sign-in: a newer one displaces the older; each counts
// against the cap on held waits.
func TestMeEventsOnePerSignIn(t *testing.T) {
	e := newNetEnv(t, t.Output(), nil, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.MaxWaiters = 2
		c.PingInterval = time.Hour
	})
	phone := e.loginAs("alice", alicePass, "Phone")
	desk := e.desktopSignIn(phone.AccessToken)
	first := e.openMeEvents(t, desk.AccessToken)
	e.waitHeld(t, 1)
	second := e.openMeEvents(t, desk.AccessToken)
	if first.sc.Scan() {
		t.Fatalf("the displaced stream goes on: %q", first.sc.Text())
	}
	e.waitHeld(t, 1)
	e.openMeEvents(t, phone.AccessToken)
	e.waitHeld(t, 2)
	other := e.desktopSignIn(phone.AccessToken)
	w := e.do(req{method: "GET", path: "/api/v1/me/events", bearer: other.AccessToken})
	expect(t, w, 503, api.ErrUnavailable)
	_ = second
}
