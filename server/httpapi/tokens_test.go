package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// cookieLogin signs user in on the phone page and returns its cookie.
func (e *env) cookieLogin(user, pass string) *http.Cookie {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: `{"username":"` + user + `","password":"` + pass + `"}`})
	expect(e.t, w, 200, "")
	for _, c := range w.Result().Cookies() {
		if c.Name == e.srv.PhoneCookie() {
			return c
		}
	}
	e.t.Fatal("no phone cookie")
	return nil
}

// qrSignIn runs a QR sign-in confirmed by phoneToken and returns the
// tokens delivered to the desktop.
func (e *env) qrSignIn(phoneToken string) api.Tokens {
	e.t.Helper()
	s := e.create()
	expect(e.t, e.phone("scan", s.ID, phoneToken), 200, "")
	expect(e.t, e.phone("confirm", s.ID, phoneToken), 200, "")
	st := decode[api.SessionStatusResponse](e.t, e.status(s, ""))
	if st.Tokens == nil {
		e.t.Fatalf("no tokens delivered: %+v", st)
	}
	return *st.Tokens
}

func (e *env) refresh(tok string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + tok + `"}`})
}

func (e *env) me(bearer string, ck *http.Cookie) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(req{method: "GET", path: "/api/v1/me", bearer: bearer, cookie: ck})
}

// expectPhoneSignInNeeded checks the 403 a QR token gets at a phone
// endpoint.
func expectPhoneSignInNeeded(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	expect(t, w, 403, api.ErrForbidden)
	if !strings.Contains(w.Body.String(), "phone sign-in is needed") {
		t.Fatalf("403 body %s does not say a phone sign-in is needed", w.Body)
	}
}

// Whoever holds a desktop's access token must not be able to confirm a
// login session with it (and so mint a fresh sign-in without the phone).
func TestQRTokenCannotActAsPhone(t *testing.T) {
	e := newEnv(t)
	pwd := e.login("alice", alicePass)
	ck := e.cookieLogin("alice", alicePass)
	desk := e.qrSignIn(pwd.AccessToken)

	// The desktop's token, and the one its refresh gives, are QR tokens.
	w := e.refresh(desk.RefreshToken)
	expect(t, w, 200, "")
	refreshed := decode[api.LoginResponse](t, w).AccessToken

	s := e.create()
	expect(t, e.phone("scan", s.ID, pwd.AccessToken), 200, "")
	for _, tok := range []string{desk.AccessToken, refreshed} {
		for _, r := range []req{
			{method: "GET", path: "/api/v1/login-sessions/" + s.ID},
			{method: "GET", path: "/api/v1/login-sessions/by-code/" + s.UserCode},
			{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/scan"},
			{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/confirm"},
			{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/cancel"},
			{method: "POST", path: "/api/v1/auth/logout-all"},
		} {
			r.bearer = tok
			t.Run(r.method+" "+r.path, func(t *testing.T) { expectPhoneSignInNeeded(t, e.do(r)) })
		}
	}
	if st := decode[api.SessionStatusResponse](t, e.status(s, "")); st.Status != api.StatusScanned {
		t.Fatalf("the QR token changed the session to %s", st.Status)
	}
	// /me takes any access token.
	expect(t, e.me(desk.AccessToken, nil), 200, "")
	expect(t, e.me(refreshed, nil), 200, "")

	// The phone cookie confirms; so does a password token (and the one its
	// refresh gives).
	expect(t, e.do(req{method: "POST", path: "/api/v1/login-sessions/" + s.ID + "/confirm", cookie: ck}), 200, "")
	w = e.refresh(pwd.RefreshToken)
	expect(t, w, 200, "")
	pwd2 := decode[api.LoginResponse](t, w).AccessToken
	s2 := e.create()
	expect(t, e.phone("scan", s2.ID, pwd2), 200, "")
	expect(t, e.phone("confirm", s2.ID, pwd2), 200, "")
}

func TestLogoutAll(t *testing.T) {
	e := newEnv(t)
	a1 := e.login("alice", alicePass)
	a2 := e.login("alice", alicePass)
	ck := e.cookieLogin("alice", alicePass)
	desk := e.qrSignIn(a1.AccessToken)
	bob := e.login("bob", bobPass)
	e.clock.Advance(time.Second)

	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/logout-all"}), 401, api.ErrUnauthorized)
	w := e.do(req{method: "POST", path: "/api/v1/auth/logout-all", bearer: a1.AccessToken})
	expect(t, w, 204, "")

	for name, tok := range map[string]string{"a1": a1.AccessToken, "a2": a2.AccessToken, "desktop": desk.AccessToken} {
		t.Run("access "+name, func(t *testing.T) { expect(t, e.me(tok, nil), 401, api.ErrUnauthorized) })
	}
	// A revoked QR token at a phone endpoint still hears that it needs a
	// phone sign-in.
	expectPhoneSignInNeeded(t, e.do(req{method: "POST", path: "/api/v1/auth/logout-all", bearer: desk.AccessToken}))
	for name, tok := range map[string]string{"a1": a1.RefreshToken, "a2": a2.RefreshToken, "desktop": desk.RefreshToken} {
		t.Run("refresh "+name, func(t *testing.T) { expect(t, e.refresh(tok), 401, api.ErrUnauthorized) })
	}
	expect(t, e.me("", ck), 401, api.ErrUnauthorized)
	expect(t, e.phone("scan", e.create().ID, a2.AccessToken), 401, api.ErrUnauthorized)

	// Bob is untouched; alice can sign in again.
	expect(t, e.me(bob.AccessToken, nil), 200, "")
	expect(t, e.refresh(bob.RefreshToken), 200, "")
	e.clock.Advance(time.Millisecond)
	again := e.login("alice", alicePass)
	expect(t, e.me(again.AccessToken, nil), 200, "")

	// By cookie, too; the answer clears it.
	ck = e.cookieLogin("alice", alicePass)
	e.clock.Advance(time.Second)
	w = e.do(req{method: "POST", path: "/api/v1/auth/logout-all", cookie: ck})
	expect(t, w, 204, "")
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != e.srv.PhoneCookie() || c[0].MaxAge >= 0 {
		t.Errorf("logout-all by cookie set cookies %v, want the phone cookie cleared", c)
	}
	expect(t, e.me(again.AccessToken, nil), 401, api.ErrUnauthorized)
	expect(t, e.me("", ck), 401, api.ErrUnauthorized)
}

// JWT "iat" is whole seconds, but a token signed in the same second just
// after a logout-all must work, and one signed just before must not.
func TestLogoutAllWithinOneSecond(t *testing.T) {
	e := newEnv(t)
	e.clock.Advance(100 * time.Millisecond) // 12:00:00.100
	before := e.login("alice", alicePass).AccessToken
	e.clock.Advance(300 * time.Millisecond) // 12:00:00.400
	phone := e.login("alice", alicePass).AccessToken
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/logout-all", bearer: phone}), 204, "")
	e.clock.Advance(time.Millisecond) // 12:00:00.401
	after := e.login("alice", alicePass).AccessToken
	e.clock.Advance(500 * time.Millisecond) // 12:00:00.901

	expect(t, e.me(before, nil), 401, api.ErrUnauthorized)
	expect(t, e.me(phone, nil), 401, api.ErrUnauthorized) // issued in the same microsecond
	expect(t, e.me(after, nil), 200, "")
}

// A refresh chain ends --refresh-max-age after its sign-in, however often
// it is refreshed and however fresh its last token is.
func TestRefreshMaxAge(t *testing.T) {
	e := newEnv(t, func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) {
		c.RefreshTTL, c.RefreshMaxAge = 24*time.Hour, 72*time.Hour
	})
	tok := e.login("alice", alicePass).RefreshToken
	for _, step := range []time.Duration{20 * time.Hour, 20 * time.Hour, 20 * time.Hour, 11 * time.Hour} {
		e.clock.Advance(step) // 20h, 40h, 60h, 71h
		w := e.refresh(tok)
		expect(t, w, 200, "")
		tok = decode[api.LoginResponse](t, w).RefreshToken
	}
	e.clock.Advance(time.Hour) // 72h: the last token is an hour old
	expect(t, e.refresh(tok), 401, api.ErrUnauthorized)

	// The phone cookie ends at the same age and says so in Max-Age.
	ck := e.cookieLogin("alice", alicePass)
	if ck.MaxAge != int((24 * time.Hour).Seconds()) {
		t.Errorf("cookie Max-Age %d, want a day", ck.MaxAge)
	}
}

// The warning about a reused refresh token names the user whose sign-in
// was revoked.
func TestRefreshReuseLogsUser(t *testing.T) {
	var buf syncBuffer
	e := newEnvLog(t, &buf)
	r0 := e.login("alice", alicePass).RefreshToken
	expect(t, e.refresh(r0), 200, "")
	expect(t, e.refresh(r0), 401, api.ErrUnauthorized)
	var line string
	for l := range strings.Lines(buf.String()) {
		if strings.Contains(l, "refresh token reused") {
			line = l
		}
	}
	if !strings.Contains(line, "user_id="+e.alice) {
		t.Fatalf("reuse log line %q lacks user_id=%s", line, e.alice)
	}
	if strings.Contains(buf.String(), r0) {
		t.Fatal("the refresh token is in the log")
	}
}
