package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/ratelimit"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

const (
	proxyAddr = "10.0.0.1"
	proxyPeer = proxyAddr + ":41000"
)

// behindProxy configures an https:// deployment behind a TLS proxy at
// proxyAddr, with the server itself listening on plain HTTP.
func behindProxy(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
	c.PublicURL = "https://login.example.test"
	c.TrustedProxies = []string{proxyAddr}
}

// viaProxy are the headers the TLS proxy adds for a phone at 203.0.113.9.
var viaProxy = map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}

func phoneCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	cks := w.Result().Cookies()
	if len(cks) != 1 {
		t.Fatalf("cookie sign-in set %d cookies, want 1: %v", len(cks), w.Header().Values("Set-Cookie"))
	}
	return cks[0]
}

const aliceBody = `{"username":"alice","password":"` + alicePass + `"}`

// TestHTTPSBehindTrustedProxy: with an https:// public URL and a TLS proxy
// in front of a plain listener, the phone cookie is __Host- and Secure, and
// every response, error or not, carries HSTS.
func TestHTTPSBehindTrustedProxy(t *testing.T) {
	e := newEnv(t, behindProxy)
	w := e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: aliceBody, header: viaProxy, remote: proxyPeer})
	expect(t, w, 200, "")
	ck := phoneCookie(t, w)
	if ck.Name != "__Host-qrlogin_phone" || !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly {
		t.Fatalf("cookie %q (Secure %v, Path %q, Domain %q, HttpOnly %v): want __Host-qrlogin_phone, Secure, Path=/, no Domain, HttpOnly",
			ck.Name, ck.Secure, ck.Path, ck.Domain, ck.HttpOnly)
	}
	if got := e.srv.PhoneCookie(); got != ck.Name {
		t.Errorf("PhoneCookie() = %q, want %q", got, ck.Name)
	}
	me := decode[api.Me](t, e.do(req{method: "GET", path: "/api/v1/me", cookie: ck, header: viaProxy, remote: proxyPeer}))
	if me.Username != "alice" {
		t.Fatalf("me with the __Host- cookie: %+v", me)
	}
	// The same value under the plain name is not the phone's cookie here: a
	// plain-HTTP page could have planted it.
	planted := &http.Cookie{Name: "qrlogin_phone", Value: ck.Value}
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", cookie: planted, header: viaProxy, remote: proxyPeer}), 401, api.ErrUnauthorized)

	crossSite := map[string]string{"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"}
	for name, w := range map[string]*httptest.ResponseRecorder{
		"sign-in":            w,
		"health":             e.do(req{method: "GET", path: "/healthz", header: viaProxy, remote: proxyPeer}),
		"phone page":         e.do(req{method: "GET", path: "/m", header: viaProxy, remote: proxyPeer}),
		"no such endpoint":   e.do(req{method: "GET", path: "/nope", header: viaProxy, remote: proxyPeer}),
		"cross-origin POST":  e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: aliceBody, header: crossSite, remote: proxyPeer}),
		"direct, no proxy":   e.do(req{method: "GET", path: "/healthz"}),
		"sign-out":           e.do(req{method: "DELETE", path: "/api/v1/auth/cookie", cookie: ck, header: viaProxy, remote: proxyPeer}),
		"wrong password 401": e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"nope-nope"}`}),
	} {
		if got := w.Header().Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s (%d): Strict-Transport-Security %q, want max-age=31536000", name, w.Code, got)
		}
	}
}

// TestServerTLSMeansHTTPS: a server terminating TLS itself (SecureCookies)
// behaves the same even with an http:// public URL in its config.
func TestServerTLSMeansHTTPS(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) { c.SecureCookies = true })
	w := e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: aliceBody})
	if ck := phoneCookie(t, w); ck.Name != "__Host-qrlogin_phone" || !ck.Secure {
		t.Errorf("cookie %q Secure %v over the server's own TLS", ck.Name, ck.Secure)
	}
	if w.Header().Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over the server's own TLS")
	}
}

// TestPlainHTTPCookie: on an http:// deployment the cookie is the plain,
// non-Secure one and there is no HSTS, whatever X-Forwarded-Proto says
// and whoever says it.
func TestPlainHTTPCookie(t *testing.T) {
	for name, r := range map[string]req{
		"direct":                     {},
		"forged proto, untrusted":    {header: map[string]string{"X-Forwarded-Proto": "https"}, remote: "198.51.100.7:1"},
		"forged proto, trusted peer": {header: viaProxy, remote: proxyPeer},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) { c.TrustedProxies = []string{proxyAddr} })
			r.method, r.path, r.body = "POST", "/api/v1/auth/cookie", aliceBody
			w := e.do(r)
			expect(t, w, 200, "")
			ck := phoneCookie(t, w)
			if ck.Name != "qrlogin_phone" || ck.Secure {
				t.Errorf("cookie %q Secure %v on plain HTTP, want qrlogin_phone, not Secure", ck.Name, ck.Secure)
			}
			if got := w.Header().Get("Strict-Transport-Security"); got != "" {
				t.Errorf("Strict-Transport-Security %q on plain HTTP", got)
			}
		})
	}
}

// TestForwardedProto: behind the TLS proxy, a client that reached the
// proxy over plain HTTP is sent to https:// for pages and refused for the
// API; the same header from anyone but the proxy changes nothing.
func TestForwardedProto(t *testing.T) {
	e := newEnv(t, behindProxy)
	plain := map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}

	w := e.do(req{method: "GET", path: "/m/abc?x=1", header: plain, remote: proxyPeer})
	if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "https://login.example.test/m/abc?x=1" {
		t.Fatalf("page over plain HTTP: %d Location %q, want 308 to https://login.example.test/m/abc?x=1", w.Code, w.Header().Get("Location"))
	}
	w = e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: aliceBody, header: plain, remote: proxyPeer})
	expect(t, w, 403, api.ErrForbidden)
	if len(w.Result().Cookies()) != 0 {
		t.Error("a sign-in over plain HTTP set a cookie")
	}
	if msg := decode[api.Error](t, w).Message; !strings.Contains(msg, "https://login.example.test") {
		t.Errorf("message %q does not say where to go", msg)
	}

	// Forged by a client that is not the proxy: ignored.
	forged := map[string]string{"X-Forwarded-Proto": "http"}
	if w := e.do(req{method: "GET", path: "/m", header: forged, remote: "198.51.100.7:1"}); w.Code != 200 {
		t.Errorf("page with a forged X-Forwarded-Proto: %d, want 200", w.Code)
	}
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: aliceBody, header: forged, remote: "198.51.100.7:1"}), 200, "")
	// And the proxy saying https is what it should say.
	if w := e.do(req{method: "GET", path: "/m", header: viaProxy, remote: proxyPeer}); w.Code != 200 {
		t.Errorf("page over https through the proxy: %d, want 200", w.Code)
	}
}

// TestUntrustedForwardedForWarnsOnce: X-Forwarded-For from an address not
// in --trusted-proxies is logged once, naming the flag; from a trusted
// proxy it is not.
func TestUntrustedForwardedForWarnsOnce(t *testing.T) {
	var buf syncBuffer
	e := newEnvLog(t, &buf, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) { c.TrustedProxies = []string{proxyAddr} })
	warnings := func() int {
		n := 0
		for l := range strings.Lines(buf.String()) {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "X-Forwarded-For") {
				n++
				if !strings.Contains(l, "--trusted-proxies") || !strings.Contains(l, "proxy=198.51.100.7") {
					t.Errorf("warning does not name the flag and the proxy: %s", l)
				}
			}
		}
		return n
	}
	for range 3 {
		e.do(req{method: "GET", path: "/healthz", header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, remote: proxyPeer})
		e.do(req{method: "GET", path: "/healthz"})
	}
	if n := warnings(); n != 0 {
		t.Fatalf("%d warnings for a trusted proxy or no proxy, want none", n)
	}
	for _, peer := range []string{"198.51.100.7:1", "198.51.100.7:2", "198.51.100.8:1"} {
		e.do(req{method: "GET", path: "/healthz", header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, remote: peer})
	}
	if n := warnings(); n != 1 {
		t.Fatalf("%d X-Forwarded-For warnings, want exactly 1:\n%s", n, buf.String())
	}
}

// TestNetworkVerdict: the phone's view says same, different or unknown.
func TestNetworkVerdict(t *testing.T) {
	type client struct {
		remote, xff string
	}
	tests := []struct {
		name           string
		proxies        []string
		desktop, phone client
		want           string
	}{
		{name: "both on loopback", desktop: client{remote: "127.0.0.1:1"}, phone: client{remote: "127.0.0.1:2"}, want: api.NetworkUnknown},
		{name: "desktop on loopback", desktop: client{remote: "127.0.0.1:1"}, phone: client{remote: "192.168.1.30:2"}, want: api.NetworkUnknown},
		{name: "IPv6 loopback", desktop: client{remote: "[::1]:1"}, phone: client{remote: "192.168.1.30:2"}, want: api.NetworkUnknown},
		{name: "same LAN", desktop: client{remote: "192.168.1.20:1"}, phone: client{remote: "192.168.1.30:2"}, want: api.NetworkSame},
		{name: "public addresses on one LAN", desktop: client{remote: "203.0.113.7:1"}, phone: client{remote: "203.0.113.9:2"}, want: api.NetworkSame},
		{name: "other network", desktop: client{remote: "198.51.100.7:1"}, phone: client{remote: "192.168.1.30:2"}, want: api.NetworkDifferent},
		{name: "identical peers prove nothing", desktop: client{remote: "198.51.100.7:1"}, phone: client{remote: "198.51.100.7:2"}, want: api.NetworkUnknown},
		{
			name:    "unconfigured proxy: both look like it",
			desktop: client{remote: "10.0.0.1:1", xff: "203.0.113.7"}, phone: client{remote: "10.0.0.1:2", xff: "198.51.100.9"},
			want: api.NetworkUnknown,
		},
		{
			name: "trusted proxy, far apart", proxies: []string{proxyAddr},
			desktop: client{remote: proxyPeer, xff: "203.0.113.7"}, phone: client{remote: proxyPeer, xff: "198.51.100.9"},
			want: api.NetworkDifferent,
		},
		{
			name: "trusted proxy, one NAT", proxies: []string{proxyAddr},
			desktop: client{remote: proxyPeer, xff: "203.0.113.7"}, phone: client{remote: proxyPeer, xff: "203.0.113.7"},
			want: api.NetworkSame,
		},
		{
			name: "trusted proxy, phone's address not given", proxies: []string{proxyAddr},
			desktop: client{remote: proxyPeer, xff: "203.0.113.7"}, phone: client{remote: proxyPeer},
			want: api.NetworkUnknown,
		},
		{
			name: "IPv6 clients", desktop: client{remote: "[2001:db8:1:2::10]:1"}, phone: client{remote: "[2001:db8:9:9::10]:2"},
			want: api.NetworkDifferent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) { c.TrustedProxies = tt.proxies })
			hdr := func(c client) map[string]string {
				if c.xff == "" {
					return nil
				}
				return map[string]string{"X-Forwarded-For": c.xff}
			}
			w := e.do(req{method: "POST", path: "/api/v1/login-sessions", header: hdr(tt.desktop), remote: tt.desktop.remote})
			expect(t, w, 201, "")
			s := decode[api.CreateSessionResponse](t, w)
			tok := e.login("alice", alicePass).AccessToken
			for _, path := range []string{"/api/v1/login-sessions/" + s.ID, "/api/v1/login-sessions/by-code/" + s.UserCode} {
				w = e.do(req{method: "GET", path: path, bearer: tok, header: hdr(tt.phone), remote: tt.phone.remote})
				expect(t, w, 200, "")
				if strings.Contains(w.Body.String(), "same_network") {
					t.Errorf("%s still says same_network: %s", path, w.Body)
				}
				if got := decode[api.SessionInfo](t, w).Network; got != tt.want {
					t.Errorf("%s: network %q, want %q", path, got, tt.want)
				}
			}
		})
	}
}

// TestRateLimitIPv6Prefix: IPv6 clients share their /64's budget; IPv4
// neighbours do not share theirs.
func TestRateLimitIPv6Prefix(t *testing.T) {
	e := newEnv(t, func(_ *httpapi.Config, l *httpapi.Limits, c *testclock.Clock) { l.Create = ratelimit.New(2, 2, c.Now) })
	create := func(remote string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/login-sessions", remote: remote})
	}
	expect(t, create("[2001:db8:1:2::1]:1"), 201, "")
	expect(t, create("[2001:db8:1:2::2]:1"), 201, "")
	expect(t, create("[2001:db8:1:2:ffff::3]:1"), 429, api.ErrRateLimited) // another address, same /64
	expect(t, create("[2001:db8:1:3::1]:1"), 201, "")                      // the next /64
	expect(t, create("192.0.2.1:1"), 201, "")
	expect(t, create("192.0.2.1:1"), 201, "")
	expect(t, create("192.0.2.2:1"), 201, "")
}

// TestSuccessfulLoginsNeverLockUser: the per-username limit counts failed
// sign-ins only.
func TestSuccessfulLoginsNeverLockUser(t *testing.T) {
	e := newEnv(t, func(_ *httpapi.Config, l *httpapi.Limits, c *testclock.Clock) {
		l.LoginUser = ratelimit.New(3, 3, c.Now)
	})
	login := func(path, pass string, i int) *httptest.ResponseRecorder {
		// A new address each time: only the username's limit applies.
		return e.do(req{method: "POST", path: path, body: `{"username":"alice","password":"` + pass + `"}`, remote: "198.51.100." + string(rune('0'+i%10)) + ":1"})
	}
	for i := range 10 {
		expect(t, login("/api/v1/auth/login", alicePass, i), 200, "")
		expect(t, login("/api/v1/auth/cookie", alicePass, i), 200, "")
	}
	for i := range 3 {
		expect(t, login("/api/v1/auth/login", "wrong-guess", i), 401, api.ErrInvalidCredentials)
	}
	w := login("/api/v1/auth/login", "wrong-guess", 4)
	expect(t, w, 429, api.ErrRateLimited)
	if got, want := decode[api.Error](t, w).Message, "Too many requests; try again in 20 seconds."; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got := w.Header().Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After %q, want 20", got)
	}
	// Guessing has locked the name for now, the right password included.
	expect(t, login("/api/v1/auth/login", alicePass, 5), 429, api.ErrRateLimited)
	e.clock.Advance(20 * time.Second)
	expect(t, login("/api/v1/auth/login", alicePass, 6), 200, "")
}

// TestRateLimitMessage: the 429 message says the wait in words, singular
// or plural, matching Retry-After.
func TestRateLimitMessage(t *testing.T) {
	for _, tt := range []struct {
		perMinute int
		want      string
		retry     string
	}{
		{60, "Too many requests; try again in 1 second.", "1"},
		{30, "Too many requests; try again in 2 seconds.", "2"},
	} {
		e := newEnv(t, func(_ *httpapi.Config, l *httpapi.Limits, c *testclock.Clock) {
			l.Create = ratelimit.New(tt.perMinute, 1, c.Now)
		})
		expect(t, e.do(req{method: "POST", path: "/api/v1/login-sessions"}), 201, "")
		w := e.do(req{method: "POST", path: "/api/v1/login-sessions"})
		expect(t, w, 429, api.ErrRateLimited)
		if got := decode[api.Error](t, w).Message; got != tt.want {
			t.Errorf("%d a minute: message %q, want %q", tt.perMinute, got, tt.want)
		}
		if got := w.Header().Get("Retry-After"); got != tt.retry {
			t.Errorf("%d a minute: Retry-After %q, want %s", tt.perMinute, got, tt.retry)
		}
	}
}
