package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/ratelimit"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

func TestMain(m *testing.M) {
	// As main does: no route listing on stdout.
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

type env struct {
	t      *testing.T
	srv    *httpapi.Server
	h      http.Handler
	clock  *testclock.Clock
	issuer *auth.Issuer
	accts  *account.Service
	alice  string // user ids
	bob    string
}

type envOption func(*httpapi.Config, *httpapi.Limits, *testclock.Clock)

const (
	alicePass = "alice-password"
	bobPass   = "bob-password"
)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvLog(t, t.Output(), opts...)
}

// newEnvLog is newEnv with the server's log written to w.
func newEnvLog(t *testing.T, w io.Writer, opts ...envOption) *env {
	t.Helper()
	return newEnvDeps(t, w, nil, opts...)
}

// newEnvDeps is newEnvLog with deps, when not nil, adjusting the server's
// dependencies before it is built (a Parker, a wrapped store).
func newEnvDeps(t *testing.T, w io.Writer, deps func(*httpapi.Deps), opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	cfg := httpapi.Config{
		PublicURL:  "http://192.0.2.10:8080",
		SessionTTL: 2 * time.Minute,
		RefreshTTL: 30 * 24 * time.Hour,
		Now:        clk.Now,
	}
	var limits httpapi.Limits
	for _, o := range opts {
		o(&cfg, &limits, clk)
	}
	issuer, err := auth.NewIssuer(ctx, db, auth.IssuerConfig{Issuer: "qrlogin", Audience: "qrlogin", TTL: 15 * time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	accts := &account.Service{
		Store:  db,
		Hasher: auth.NewHasher(auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2),
		NewID:  auth.NewID,
		Now:    clk.Now,
	}
	d := httpapi.Deps{Store: db, Accounts: accts, Tokens: issuer, Limits: limits,
		Log: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if deps != nil {
		deps(&d)
	}
	srv, err := httpapi.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, h: srv.Handler(), clock: clk, issuer: issuer, accts: accts}
	a, err := accts.Add(ctx, "alice", "Alice", alicePass)
	if err != nil {
		t.Fatal(err)
	}
	b, err := accts.Add(ctx, "bob", "Bob", bobPass)
	if err != nil {
		t.Fatal(err)
	}
	e.alice, e.bob = a.ID, b.ID
	return e
}

// req describes one request.
type req struct {
	method, path string
	body         string // sent as JSON when not empty
	bearer       string
	header       map[string]string
	cookie       *http.Cookie
	remote       string
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body *strings.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	} else {
		body = strings.NewReader("")
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return w
}

// expect checks the status and, for errors, the JSON error code.
func expect(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if code != "" {
		var e api.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != code || e.Message == "" {
			t.Fatalf("body %s, want error %q with a message", w.Body, code)
		}
	}
	if ct := w.Header().Get("Content-Type"); w.Body.Len() > 0 && !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, w.Body, err)
	}
	return v
}

func (e *env) create() api.CreateSessionResponse {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/v1/login-sessions", body: `{"device_name":"Work laptop","platform":"linux/amd64","app_name":"qrlogin 1.0"}`})
	expect(e.t, w, 201, "")
	return decode[api.CreateSessionResponse](e.t, w)
}

func (e *env) login(user, pass string) api.LoginResponse {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"` + user + `","password":"` + pass + `"}`})
	expect(e.t, w, 200, "")
	return decode[api.LoginResponse](e.t, w)
}

func (e *env) status(s api.CreateSessionResponse, query string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status" + query, bearer: s.PollToken})
}

func (e *env) phone(action, id, token string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(req{method: "POST", path: "/api/v1/login-sessions/" + id + "/" + action, bearer: token})
}

func TestCreateSession(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	if len(s.ID) < 22 || strings.ContainsAny(s.ID, "+/=") {
		t.Errorf("id %q: want ≥22 URL-safe characters (128 bits)", s.ID)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(s.PollToken); err != nil || len(raw) < 32 {
		t.Errorf("poll token: want ≥256 random bits, got %q", s.PollToken)
	}
	if s.VerifyURL != "http://192.0.2.10:8080/m/"+s.ID {
		t.Errorf("verify_url %q", s.VerifyURL)
	}
	if len(s.UserCode) != 9 || s.UserCode[4] != '-' || strings.Trim(strings.Replace(s.UserCode, "-", "", 1), "BCDFGHJKLMNPQRSTVWXZ") != "" {
		t.Errorf("user_code %q: want XXXX-XXXX from BCDFGHJKLMNPQRSTVWXZ", s.UserCode)
	}
	if s.QRURL != "http://192.0.2.10:8080/api/v1/login-sessions/"+s.ID+"/qr.png" {
		t.Errorf("qr_url %q", s.QRURL)
	}
	if s.ExpiresIn != 120 || !s.ExpiresAt.Equal(e.clock.Now().Add(2*time.Minute)) || s.Interval <= 0 {
		t.Errorf("expiry: expires_in %d, expires_at %v, interval %d", s.ExpiresIn, s.ExpiresAt, s.Interval)
	}
	if s2 := e.create(); s2.ID == s.ID || s2.PollToken == s.PollToken || s2.UserCode == s.UserCode {
		t.Error("two sessions share an id, token or code")
	}
}

func TestCreateSessionRecordsDevice(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", 500)
	w := e.do(req{
		method: "POST", path: "/api/v1/login-sessions",
		body:   `{"device_name":"  Evil\u0007\nname\u202e  ","platform":"` + long + `"}`,
		header: map[string]string{"User-Agent": "qrlogin-desktop/1.0", "X-Forwarded-For": "203.0.113.9"},
		remote: "198.51.100.7:5555",
	})
	expect(t, w, 201, "")
	s := decode[api.CreateSessionResponse](t, w)
	tok := e.login("alice", alicePass).AccessToken
	info := decode[api.SessionInfo](t, e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID, bearer: tok, remote: "198.51.100.8:1"}))
	d := info.Device
	if d.Name != "Evilname" {
		t.Errorf("device name %q: control and format characters must be dropped", d.Name)
	}
	if n := len([]rune(d.Platform)); n != 100 {
		t.Errorf("platform kept %d characters, want 100", n)
	}
	// No proxy is trusted by default, so X-Forwarded-For is ignored.
	if d.IP != "198.51.100.7" || d.UserAgent != "qrlogin-desktop/1.0" {
		t.Errorf("device ip %q ua %q", d.IP, d.UserAgent)
	}
	if info.Network != api.NetworkSame {
		t.Errorf("network %q: the same /24 should be the same network", info.Network)
	}
	if strings.Contains(w.Body.String(), "poll_token_hash") {
		t.Error("hash leaked")
	}
}

func TestTrustedProxy(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.TrustedProxies = []string{"10.0.0.1"}
	})
	w := e.do(req{method: "POST", path: "/api/v1/login-sessions", header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, remote: "10.0.0.1:1234"})
	s := decode[api.CreateSessionResponse](t, w)
	tok := e.login("alice", alicePass).AccessToken
	info := decode[api.SessionInfo](t, e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID, bearer: tok}))
	if info.Device.IP != "203.0.113.9" {
		t.Errorf("device ip %q, want the forwarded address from the trusted proxy", info.Device.IP)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"malformed json", req{method: "POST", path: "/api/v1/login-sessions", body: `{"device_name":`}, 400, api.ErrInvalidRequest},
		{"wrong type", req{method: "POST", path: "/api/v1/login-sessions", body: `{"device_name":42}`}, 400, api.ErrInvalidRequest},
		{"array body", req{method: "POST", path: "/api/v1/login-sessions", body: `[1,2]`}, 400, api.ErrInvalidRequest},
		{"two values", req{method: "POST", path: "/api/v1/login-sessions", body: `{} {}`}, 400, api.ErrInvalidRequest},
		{"oversized", req{method: "POST", path: "/api/v1/login-sessions", body: `{"device_name":"` + strings.Repeat("a", 20000) + `"}`}, 413, api.ErrTooLarge},
		{"not json", req{method: "POST", path: "/api/v1/auth/login", body: "username=a", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, api.ErrUnsupportedMedia},
		{"login without body", req{method: "POST", path: "/api/v1/auth/login"}, 400, api.ErrInvalidRequest},
		{"login missing password", req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice"}`}, 400, api.ErrInvalidRequest},
		{"login null", req{method: "POST", path: "/api/v1/auth/login", body: `null`}, 400, api.ErrInvalidRequest},
		{"bad after", req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status?after=bogus", bearer: s.PollToken}, 400, api.ErrInvalidRequest},
		{"bad wait", req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status?wait=-1", bearer: s.PollToken}, 400, api.ErrInvalidRequest},
		{"wait not a number", req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status?wait=1e9", bearer: s.PollToken}, 400, api.ErrInvalidRequest},
		{"absurd id", req{method: "GET", path: "/api/v1/login-sessions/" + strings.Repeat("x", 5000) + "/status", bearer: s.PollToken}, 404, api.ErrNotFound},
		{"id with dots", req{method: "GET", path: "/api/v1/login-sessions/..%2F..%2Fetc/status", bearer: s.PollToken}, 404, ""},
		{"unknown route", req{method: "GET", path: "/api/v1/nope"}, 404, api.ErrNotFound},
		{"wrong method", req{method: "PUT", path: "/api/v1/login-sessions"}, 405, api.ErrMethodNotAllowed},
		{"refresh empty", req{method: "POST", path: "/api/v1/auth/refresh", body: `{}`}, 400, api.ErrInvalidRequest},
		{"refresh huge", req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + strings.Repeat("a", 1000) + `"}`}, 400, api.ErrInvalidRequest},
		{"by-code garbage", req{method: "GET", path: "/api/v1/login-sessions/by-code/%00%01", bearer: e.login("alice", alicePass).AccessToken}, 404, api.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, e.do(tt.r), tt.status, tt.code)
		})
	}
}

func TestPollTokenRequired(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	other := e.create()
	access := e.login("alice", alicePass).AccessToken
	for _, tt := range []struct {
		name, token string
		status      int
	}{
		{"missing", "", 401},
		{"wrong", "not-the-token", 401},
		{"session id", s.ID, 401},
		{"another session's token", other.PollToken, 401},
		{"access token", access, 401},
		{"password", alicePass, 401},
		{"right", s.PollToken, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status", bearer: tt.token})
			expect(t, w, tt.status, map[int]string{401: api.ErrUnauthorized}[tt.status])
		})
	}
	expect(t, e.do(req{method: "GET", path: "/api/v1/login-sessions/AAAAAAAAAAAAAAAAAAAAAA/status", bearer: s.PollToken}), 404, api.ErrNotFound)
	expect(t, e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + s.ID, bearer: other.PollToken}), 401, api.ErrUnauthorized)
}

func TestFullFlowDeliversTokensOnce(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken
	bob := e.login("bob", bobPass).AccessToken

	st := decode[api.SessionStatusResponse](t, e.status(s, ""))
	if st.Status != api.StatusPending || st.ScannedBy != nil || st.Tokens != nil {
		t.Fatalf("initial status %+v", st)
	}
	expect(t, e.phone("confirm", s.ID, alice), 409, api.ErrInvalidState) // before scan

	w := e.phone("scan", s.ID, alice)
	expect(t, w, 200, "")
	if info := decode[api.SessionInfo](t, w); info.Status != api.StatusScanned || info.Device.Name != "Work laptop" {
		t.Fatalf("scan answer %+v", info)
	}
	expect(t, e.phone("scan", s.ID, alice), 200, "")                // same user again is fine
	expect(t, e.phone("scan", s.ID, bob), 409, api.ErrInvalidState) // another phone
	expect(t, e.phone("confirm", s.ID, bob), 403, api.ErrForbidden) // not the scanner
	expect(t, e.phone("cancel", s.ID, bob), 403, api.ErrForbidden)  // not the scanner
	st = decode[api.SessionStatusResponse](t, e.status(s, ""))
	if st.Status != api.StatusScanned || st.ScannedBy == nil || st.ScannedBy.DisplayName != "Alice" {
		t.Fatalf("after scan %+v", st)
	}

	w = e.phone("confirm", s.ID, alice)
	expect(t, w, 200, "")
	if decode[api.StatusResponse](t, w).Status != api.StatusConfirmed {
		t.Fatal(w.Body)
	}

	w = e.status(s, "")
	expect(t, w, 200, "")
	st = decode[api.SessionStatusResponse](t, w)
	if st.Status != api.StatusConfirmed || st.Tokens == nil || st.User == nil {
		t.Fatalf("confirmed status without tokens: %s", w.Body)
	}
	if st.Tokens.TokenType != "Bearer" || st.Tokens.ExpiresIn != 900 || st.Tokens.RefreshToken == "" || st.User.Username != "alice" {
		t.Fatalf("tokens %+v user %+v", st.Tokens, st.User)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Error("token response must not be cached")
	}
	expect(t, e.status(s, ""), 410, api.ErrConsumed)
	expect(t, e.status(s, "?after=confirmed&wait=1"), 410, api.ErrConsumed)
	expect(t, e.phone("cancel", s.ID, alice), 409, api.ErrInvalidState)
	expect(t, e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + s.ID, bearer: s.PollToken}), 410, api.ErrConsumed)

	// The delivered tokens work.
	me := decode[api.Me](t, e.do(req{method: "GET", path: "/api/v1/me", bearer: st.Tokens.AccessToken}))
	if me.Username != "alice" || me.DisplayName != "Alice" || me.ID != e.alice {
		t.Fatalf("me %+v", me)
	}
	w = e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + st.Tokens.RefreshToken + `"}`})
	expect(t, w, 200, "")
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	scanned := e.create()
	confirmed := e.create()
	alice := e.login("alice", alicePass).AccessToken
	expect(t, e.phone("scan", scanned.ID, alice), 200, "")
	expect(t, e.phone("scan", confirmed.ID, alice), 200, "")
	expect(t, e.phone("confirm", confirmed.ID, alice), 200, "")

	e.clock.Advance(2*time.Minute - time.Second)
	if st := decode[api.SessionStatusResponse](t, e.status(s, "")); st.Status != api.StatusPending {
		t.Fatalf("one second before expiry: %s", st.Status)
	}
	e.clock.Advance(time.Second)
	for _, x := range []api.CreateSessionResponse{s, scanned, confirmed} {
		st := decode[api.SessionStatusResponse](t, e.status(x, ""))
		if st.Status != api.StatusExpired || st.Tokens != nil {
			t.Fatalf("at expiry: %+v", st)
		}
	}
	expect(t, e.phone("scan", s.ID, alice), 410, api.ErrExpired)
	expect(t, e.phone("confirm", scanned.ID, alice), 410, api.ErrExpired)
	expect(t, e.phone("cancel", s.ID, alice), 410, api.ErrExpired)
	// A long-poll on an expired session answers at once.
	if st := decode[api.SessionStatusResponse](t, e.status(s, "?after=pending&wait=30")); st.Status != api.StatusExpired {
		t.Fatalf("long-poll after expiry: %s", st.Status)
	}
}

func TestCancelAndWithdraw(t *testing.T) {
	e := newEnv(t)
	alice := e.login("alice", alicePass).AccessToken
	bob := e.login("bob", bobPass).AccessToken

	s := e.create()
	w := e.phone("cancel", s.ID, bob) // pending: any signed-in phone with the id
	expect(t, w, 200, "")
	if decode[api.StatusResponse](t, w).Status != api.StatusCancelled {
		t.Fatal(w.Body)
	}
	if st := decode[api.SessionStatusResponse](t, e.status(s, "")); st.Status != api.StatusCancelled {
		t.Fatalf("status %s", st.Status)
	}
	expect(t, e.phone("scan", s.ID, alice), 409, api.ErrInvalidState)

	s = e.create()
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	expect(t, e.phone("cancel", s.ID, alice), 200, "")

	s = e.create()
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	w = e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + s.ID, bearer: s.PollToken})
	expect(t, w, 200, "")
	expect(t, e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + s.ID, bearer: s.PollToken}), 200, "") // twice is fine
	expect(t, e.phone("confirm", s.ID, alice), 409, api.ErrInvalidState)
	if info := decode[api.SessionInfo](t, e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID, bearer: alice})); info.Status != api.StatusCancelled {
		t.Fatalf("phone sees %s after withdrawal", info.Status)
	}
}

func TestPhoneEndpointsNeedSignIn(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	for _, r := range []req{
		{method: "GET", path: "/api/v1/login-sessions/" + s.ID},
		{method: "GET", path: "/api/v1/login-sessions/by-code/" + s.UserCode},
		{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/scan"},
		{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/scan", bearer: s.PollToken},
		{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/confirm", bearer: "garbage"},
		{method: "GET", path: "/api/v1/me"},
		{method: "POST", path: "/api/v1/auth/logout", body: `{"refresh_token":"x"}`},
	} {
		expect(t, e.do(r), 401, api.ErrUnauthorized)
	}
	alice := e.login("alice", alicePass).AccessToken
	expect(t, e.do(req{method: "GET", path: "/api/v1/login-sessions/AAAAAAAAAAAAAAAAAAAAAA", bearer: alice}), 404, api.ErrNotFound)
	expect(t, e.phone("scan", "AAAAAAAAAAAAAAAAAAAAAA", alice), 404, api.ErrNotFound)
}

func TestByCode(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken
	for _, code := range []string{s.UserCode, strings.ToLower(s.UserCode), strings.ReplaceAll(s.UserCode, "-", "")} {
		w := e.do(req{method: "GET", path: "/api/v1/login-sessions/by-code/" + code, bearer: alice})
		expect(t, w, 200, "")
		if info := decode[api.SessionInfo](t, w); info.ID != s.ID {
			t.Fatalf("code %s found %s", code, info.ID)
		}
	}
	expect(t, e.do(req{method: "GET", path: "/api/v1/login-sessions/by-code/BBBB-BBBB", bearer: alice}), 404, api.ErrNotFound)
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	lr := e.login("alice", alicePass)
	if lr.TokenType != "Bearer" || lr.AccessToken == "" || lr.RefreshToken == "" || lr.User.ID != e.alice || lr.ExpiresIn != 900 {
		t.Fatalf("login response %+v", lr)
	}
	wrong := e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"nope-nope"}`})
	unknown := e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"mallory","password":"nope-nope"}`})
	expect(t, wrong, 401, api.ErrInvalidCredentials)
	expect(t, unknown, 401, api.ErrInvalidCredentials)
	if wrong.Body.String() != unknown.Body.String() {
		t.Fatalf("unknown user and wrong password answer differently: %s vs %s", wrong.Body, unknown.Body)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	r0 := e.login("alice", alicePass).RefreshToken
	refresh := func(tok string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + tok + `"}`})
	}
	w := refresh(r0)
	expect(t, w, 200, "")
	r1 := decode[api.LoginResponse](t, w)
	if r1.RefreshToken == r0 || r1.AccessToken == "" || r1.User.Username != "alice" {
		t.Fatalf("refresh %+v", r1)
	}
	// Presenting r0 again is theft or a bug: the whole chain dies.
	expect(t, refresh(r0), 401, api.ErrUnauthorized)
	expect(t, refresh(r1.RefreshToken), 401, api.ErrUnauthorized)
	expect(t, refresh("never-issued"), 401, api.ErrUnauthorized)

	// Expired refresh tokens are refused.
	r2 := e.login("alice", alicePass).RefreshToken
	e.clock.Advance(31 * 24 * time.Hour)
	expect(t, refresh(r2), 401, api.ErrUnauthorized)
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	a := e.login("alice", alicePass)
	b := e.login("bob", bobPass)
	logout := func(access, refresh string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/auth/logout", bearer: access, body: `{"refresh_token":"` + refresh + `"}`})
	}
	expect(t, logout(b.AccessToken, a.RefreshToken), 404, api.ErrNotFound) // not bob's to revoke
	expect(t, logout(a.AccessToken, a.RefreshToken), 204, "")
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + a.RefreshToken + `"}`}), 401, api.ErrUnauthorized)
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + b.RefreshToken + `"}`}), 200, "")
}

func TestAccessTokenForgery(t *testing.T) {
	e := newEnv(t)
	valid := e.login("alice", alicePass).AccessToken
	kid := e.issuer.JWKS().Keys[0].Kid
	claims := jwt.MapClaims{"sub": e.alice, "iss": "qrlogin", "aud": "qrlogin", "iat": e.clock.Now().Unix(), "exp": e.clock.Now().Add(time.Hour).Unix()}

	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	none.Header["kid"] = kid
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	pub, _ := base64.RawURLEncoding.DecodeString(e.issuer.JWKS().Keys[0].X)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = kid
	hsTok, _ := hs.SignedString(pub)

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	other := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	other.Header["kid"] = kid
	otherTok, _ := other.SignedString(otherKey)

	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+e.bob+`","iss":"qrlogin","aud":"qrlogin","exp":9999999999}`)) + "." + parts[2]

	for name, tok := range map[string]string{"alg none": noneTok, "HS256 with public key": hsTok, "wrong key": otherTok, "tampered claims": tampered, "garbage": "a.b.c"} {
		t.Run(name, func(t *testing.T) {
			expect(t, e.do(req{method: "GET", path: "/api/v1/me", bearer: tok}), 401, api.ErrUnauthorized)
		})
	}
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", bearer: valid}), 200, "")
	e.clock.Advance(16 * time.Minute)
	t.Run("expired", func(t *testing.T) {
		expect(t, e.do(req{method: "GET", path: "/api/v1/me", bearer: valid}), 401, api.ErrUnauthorized)
	})
}

func TestJWKSAndHealth(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "GET", path: "/.well-known/jwks.json"})
	expect(t, w, 200, "")
	jwks := decode[auth.JWKS](t, w)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "OKP" || jwks.Keys[0].Crv != "Ed25519" || jwks.Keys[0].Kid == "" {
		t.Fatalf("jwks %s", w.Body)
	}
	if strings.Contains(w.Body.String(), `"d"`) {
		t.Fatal("private key in JWKS")
	}
	expect(t, e.do(req{method: "GET", path: "/healthz"}), 200, "")
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, func(_ *httpapi.Config, l *httpapi.Limits, c *testclock.Clock) {
		l.Login = ratelimit.New(3, 3, c.Now)
		l.LoginUser = ratelimit.New(5, 5, c.Now)
		l.Create = ratelimit.New(2, 2, c.Now)
		l.Lookup = ratelimit.New(2, 2, c.Now)
	})
	badLogin := func(ip string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"guess-guess"}`, remote: ip + ":1"})
	}
	for range 3 {
		expect(t, badLogin("198.51.100.1"), 401, api.ErrInvalidCredentials)
	}
	w := badLogin("198.51.100.1")
	expect(t, w, 429, api.ErrRateLimited)
	if w.Header().Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Another address gets its own budget, until the per-username limit.
	expect(t, badLogin("198.51.100.2"), 401, api.ErrInvalidCredentials)
	expect(t, badLogin("198.51.100.2"), 401, api.ErrInvalidCredentials)
	expect(t, badLogin("198.51.100.3"), 429, api.ErrRateLimited)

	create := func() *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/login-sessions", remote: "198.51.100.9:1"})
	}
	expect(t, create(), 201, "")
	expect(t, create(), 201, "")
	expect(t, create(), 429, api.ErrRateLimited)

	e.clock.Advance(time.Minute)
	expect(t, create(), 201, "")
	tok := e.login("bob", bobPass).AccessToken
	lookup := func() *httptest.ResponseRecorder {
		return e.do(req{method: "GET", path: "/api/v1/login-sessions/by-code/BBBB-BBBB", bearer: tok, remote: "198.51.100.9:1"})
	}
	expect(t, lookup(), 404, api.ErrNotFound)
	expect(t, lookup(), 404, api.ErrNotFound)
	expect(t, lookup(), 429, api.ErrRateLimited)
}

func TestLongPollWakesOnChange(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	alice := e.login("alice", alicePass).AccessToken
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() { got <- e.status(s, "?after=pending&wait=30") }()
	// Scan once the poll is waiting on the hub (bounded: 10s).
	for i := 0; e.srv.Hub().Len() == 0; i++ {
		if i > 1000 {
			t.Fatal("long-poll never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	expect(t, e.phone("scan", s.ID, alice), 200, "")
	select {
	case w := <-got:
		if st := decode[api.SessionStatusResponse](t, w); st.Status != api.StatusScanned || st.ScannedBy.DisplayName != "Alice" {
			t.Fatalf("woke with %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll did not wake on scan")
	}
	// After a different status it answers at once.
	if st := decode[api.SessionStatusResponse](t, e.status(s, "?after=pending&wait=30")); st.Status != api.StatusScanned {
		t.Fatalf("status %s", st.Status)
	}
}

func TestShutdownAnswersHeldPolls(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() { got <- e.status(s, "?after=pending&wait=30") }()
	for i := 0; e.srv.Hub().Len() == 0; i++ {
		if i > 1000 {
			t.Fatal("long-poll never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.srv.Shutdown()
	select {
	case w := <-got:
		expect(t, w, 200, "")
		if st := decode[api.SessionStatusResponse](t, w); st.Status != api.StatusPending {
			t.Fatalf("status %s", st.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held poll not answered on shutdown")
	}
}

func TestRaces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const phones = 50
	tokens := make([]string, phones)
	for i := range phones {
		name := "phone" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		if _, err := e.accts.Add(ctx, name, name, "password-"+name); err != nil {
			t.Fatal(err)
		}
		tokens[i] = e.login(name, "password-"+name).AccessToken
	}
	s := e.create()
	var wg sync.WaitGroup
	codes := make([]int, phones)
	for i := range phones {
		wg.Go(func() { codes[i] = e.phone("scan", s.ID, tokens[i]).Code })
	}
	wg.Wait()
	winner := -1
	for i, c := range codes {
		switch c {
		case 200:
			if winner >= 0 {
				t.Fatalf("phones %d and %d both scanned", winner, i)
			}
			winner = i
		case 409:
		default:
			t.Fatalf("phone %d got %d", i, c)
		}
	}
	if winner < 0 {
		t.Fatal("no phone won the scan")
	}
	expect(t, e.phone("confirm", s.ID, tokens[winner]), 200, "")

	const polls = 20
	results := make([]*httptest.ResponseRecorder, polls)
	for i := range polls {
		wg.Go(func() { results[i] = e.status(s, "?after=scanned&wait=5") })
	}
	wg.Wait()
	delivered := 0
	for _, w := range results {
		switch w.Code {
		case 200:
			if st := decode[api.SessionStatusResponse](t, w); st.Tokens != nil {
				delivered++
			} else {
				t.Fatalf("200 without tokens: %s", w.Body)
			}
		case 410:
			expect(t, w, 410, api.ErrConsumed)
		default:
			t.Fatalf("poll got %d: %s", w.Code, w.Body)
		}
	}
	if delivered != 1 {
		t.Fatalf("%d polls received tokens, want exactly 1", delivered)
	}
}

func TestPhoneCookie(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: `{"username":"alice","password":"` + alicePass + `"}`})
	expect(t, w, 200, "")
	if strings.Contains(w.Body.String(), "token") {
		t.Fatalf("cookie sign-in leaked a token to the page: %s", w.Body)
	}
	var ck *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == e.srv.PhoneCookie() {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ck)
	}
	me := decode[api.Me](t, e.do(req{method: "GET", path: "/api/v1/me", cookie: ck}))
	if me.Username != "alice" {
		t.Fatalf("me %+v", me)
	}

	s := e.create()
	sameOrigin := map[string]string{"Origin": "http://example.test", "Host": "example.test", "Sec-Fetch-Site": "same-origin"}
	w = e.do(req{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/scan", cookie: ck, header: sameOrigin})
	expect(t, w, 200, "")

	crossSite := map[string]string{"Origin": "http://evil.test", "Sec-Fetch-Site": "cross-site"}
	expect(t, e.do(req{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/confirm", cookie: ck, header: crossSite}), 403, api.ErrForbidden)
	if st := decode[api.SessionStatusResponse](t, e.status(s, "")); st.Status != api.StatusScanned {
		t.Fatalf("a cross-origin confirm changed the session to %s", st.Status)
	}

	// The cookie is not a refresh token.
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + ck.Value + `"}`}), 401, api.ErrUnauthorized)

	// Signing out on the phone ends the cookie server-side.
	w = e.do(req{method: "DELETE", path: "/api/v1/auth/cookie", cookie: ck})
	expect(t, w, 204, "")
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", cookie: ck}), 401, api.ErrUnauthorized)
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", cookie: &http.Cookie{Name: e.srv.PhoneCookie(), Value: "forged"}}), 401, api.ErrUnauthorized)
}

func TestRefreshTokenIsNotACookie(t *testing.T) {
	e := newEnv(t)
	r := e.login("alice", alicePass).RefreshToken
	expect(t, e.do(req{method: "GET", path: "/api/v1/me", cookie: &http.Cookie{Name: e.srv.PhoneCookie(), Value: r}}), 401, api.ErrUnauthorized)
}

func TestNoSecretsInLogs(t *testing.T) {
	var buf syncBuffer
	e := newEnvLog(t, &buf)
	s := e.create()
	lr := e.login("alice", alicePass)
	e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"wrong-secret-pw"}`})
	e.status(s, "?after=pending&wait=0")
	log := buf.String()
	if !strings.Contains(log, "request_id") {
		t.Fatalf("no request log: %q", log)
	}
	for _, secret := range []string{s.PollToken, lr.AccessToken, lr.RefreshToken, alicePass, "wrong-secret-pw"} {
		if strings.Contains(log, secret) {
			t.Fatalf("secret %.8s… in the log", secret)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
