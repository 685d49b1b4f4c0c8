package httpapi_test

// Fuzz targets for everything a client sends the API: JSON bodies, ids
// and codes in paths, bearer and cookie values, X-Forwarded-For. They
// drive the real router and check what any answer must be: never a 5xx,
// a JSON {"error", "message"} for every failure, and no access without
// the right secret. `make fuzz` runs each for a while; plain `go test`
// runs the seeds.

import (
	"bufio"
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	mobileweb "github.com/qrlogin/qrlogin/mobile-web"
	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
	"github.com/qrlogin/qrlogin/shared/api"
)

// fuzzServer is a server with one user (alice) signed in every way a
// client can be: the secrets the fuzz targets try to guess or corrupt.
type fuzzServer struct {
	h       http.Handler
	access  string       // alice's access token
	refresh string       // alice's refresh token
	phone   *http.Cookie // alice's phone cookie
	session api.CreateSessionResponse
}

// fuzzRemote is the client address of requests that do not choose one.
const fuzzRemote = "198.51.100.7:40000"

func newFuzzServer(tb testing.TB, trustedProxies []string) *fuzzServer {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "fuzz.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	// A fixed clock: nothing expires however long the fuzzer runs.
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return start }
	issuer, err := auth.NewIssuer(ctx, db, auth.IssuerConfig{Issuer: "qrlogin", Audience: "qrlogin", TTL: 15 * time.Minute, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	accts := &account.Service{
		Store:  db,
		Hasher: auth.NewHasher(auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2),
		NewID:  auth.NewID,
		Now:    now,
	}
	if _, err := accts.Add(ctx, "alice", "Alice", alicePass); err != nil {
		tb.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{
		PublicURL:      "http://192.0.2.10:8080",
		SessionTTL:     2 * time.Minute,
		RefreshTTL:     30 * 24 * time.Hour,
		TrustedProxies: trustedProxies,
		Now:            now,
	}, httpapi.Deps{Store: db, Accounts: accts, Tokens: issuer})
	if err != nil {
		tb.Fatal(err)
	}
	fz := &fuzzServer{h: srv.Handler()}

	w := fz.serve(jsonRequest("POST", "/api/v1/auth/login", `{"username":"alice","password":"`+alicePass+`"}`))
	var login api.LoginResponse
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &login) != nil {
		tb.Fatalf("login: %d %s", w.Code, w.Body)
	}
	fz.access, fz.refresh = login.Tokens.AccessToken, login.Tokens.RefreshToken

	w = fz.serve(jsonRequest("POST", "/api/v1/auth/cookie", `{"username":"alice","password":"`+alicePass+`"}`))
	for _, c := range w.Result().Cookies() {
		if c.Value != "" {
			fz.phone = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	if w.Code != http.StatusOK || fz.phone == nil {
		tb.Fatalf("cookie login: %d %s", w.Code, w.Body)
	}

	w = fz.serve(jsonRequest("POST", "/api/v1/login-sessions", `{"device_name":"Work laptop"}`))
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &fz.session) != nil {
		tb.Fatalf("create session: %d %s", w.Code, w.Body)
	}
	return fz
}

func jsonRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = fuzzRemote
	return r
}

// parseTarget is the request net/http would hand the server for a request
// line naming target, or nil when net/http would refuse it itself.
func parseTarget(method, target string) *http.Request {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: 192.0.2.10:8080\r\n\r\n")))
	if err != nil {
		return nil
	}
	r.RemoteAddr = fuzzRemote
	return r
}

func (fz *fuzzServer) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	fz.h.ServeHTTP(w, r)
	return w
}

// checkAnswer checks what every API answer must be: never a server
// error, and every failure a JSON error with a code and a message.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 || w.Code < 200 {
		t.Fatalf("status %d; body %s", w.Code, w.Body)
	}
	if w.Code < 300 {
		if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("status %d with a body that is not JSON: %q", w.Code, w.Body)
		}
		return
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d with Content-Type %q; body %q", w.Code, ct, w.Body)
	}
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
		t.Fatalf("status %d with body %q, want a JSON error with a code and a message", w.Code, w.Body)
	}
}

// validHeader reports whether net/http would pass v on as a header value
// (fuzzed header values it would refuse never reach the router).
func validHeader(v string) bool { return httpguts.ValidHeaderFieldValue(v) }

// bodySeeds are JSON bodies of every shape for the body targets.
var bodySeeds = []string{
	``, ` `, `null`, `true`, `0`, `"x"`, `[]`, `{}`, `{`, `}`, `{"a":1}{"b":2}`, `{} {}`, `{}x`,
	`{"username":null,"password":null}`, `{"username":1,"password":[]}`,
	`{"username":"alice","password":"` + alicePass + `"}`,
	`{"USERNAME":"ALICE","Password":"` + alicePass + `"}`,
	`{"username":"alice","password":"wrong"}`,
	`{"username":"alice","username":"bob","password":"x"}`,
	`{"username":"\u0000","password":"\ud800"}`,
	`{"username":"` + strings.Repeat("a", 5000) + `","password":"p"}`,
	`{"refresh_token":""}`, `{"refresh_token":"x"}`, `{"refresh_token":"` + strings.Repeat("A", 300) + `"}`,
	`{"refresh_token":{"$ne":null}}`,
	`{"device_name":"Work laptop","platform":"linux/amd64","app_name":"qrlogin 1.0"}`,
	`{"device_name":"a\u202eb\u2028c\r\nd\u0000","platform":"` + strings.Repeat("é", 300) + `"}`,
	"{\"device_name\":\"\xff\xfe\"}",
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	`{"a":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 201),
	`{"x":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`,
}

var contentTypeSeeds = []string{
	"application/json", "", "application/json; charset=utf-8", "text/plain",
	"application/merge-patch+json", "application/json; charset", "multipart/form-data; boundary=x",
}

func addBodySeeds(f *testing.F) {
	for i, b := range bodySeeds {
		f.Add(b, "application/json")
		f.Add(b, contentTypeSeeds[i%len(contentTypeSeeds)])
	}
	for _, ct := range contentTypeSeeds {
		f.Add(`{"username":"alice","password":"`+alicePass+`"}`, ct)
	}
	// A password sign-in's description of its device.
	for _, dev := range []string{
		`"device_name":"Alice's iPhone","platform":"iOS","app_name":"Safari"`,
		`"device_name":" \u202eenohP\u0007\n ","platform":"` + strings.Repeat("é", 150) + `","app_name":"\u2028x"`,
		`"device_name":7`, `"platform":null`, `"app_name":"\ud800"`,
	} {
		f.Add(`{"username":"alice","password":"`+alicePass+`",`+dev+`}`, "application/json")
	}
}

// bodyRequest is a POST of body with Content-Type ct (none when empty),
// or nil when net/http would not pass ct on.
func bodyRequest(target, body, ct string) *http.Request {
	if !validHeader(ct) {
		return nil
	}
	r := jsonRequest("POST", target, body)
	if ct == "" {
		r.Header.Del("Content-Type")
	} else {
		r.Header.Set("Content-Type", ct)
	}
	return r
}

// FuzzLoginBody: POST /api/v1/auth/login with any body. Only alice's
// password signs in.
func FuzzLoginBody(f *testing.F) {
	fz := newFuzzServer(f, nil)
	addBodySeeds(f)
	f.Fuzz(func(t *testing.T, body, ct string) {
		r := bodyRequest("/api/v1/auth/login", body, ct)
		if r == nil {
			return
		}
		w := fz.serve(r)
		checkAnswer(t, w)
		if w.Code == http.StatusOK {
			var sent api.LoginRequest
			var got api.LoginResponse
			if json.Unmarshal([]byte(body), &sent) != nil || sent.Password != alicePass {
				t.Fatalf("signed in with body %q", body)
			}
			if json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Tokens.AccessToken == "" || got.Tokens.RefreshToken == "" {
				t.Fatalf("sign-in answer without tokens: %s", w.Body)
			}
			// The device as the phone's list shows it: clean text.
			r := parseTarget("GET", "/api/v1/devices")
			r.Header.Set("Authorization", "Bearer "+got.Tokens.AccessToken)
			lw := fz.serve(r)
			var ds api.DevicesResponse
			if lw.Code != http.StatusOK || json.Unmarshal(lw.Body.Bytes(), &ds) != nil {
				t.Fatalf("devices after a sign-in: %d %s", lw.Code, lw.Body)
			}
			for _, d := range ds.Devices {
				if d.Current {
					checkCleanText(t, "device_name", d.Name, 100)
					checkCleanText(t, "platform", d.Platform, 100)
					checkCleanText(t, "app_name", d.AppName, 100)
				}
			}
		}
	})
}

// FuzzCookieLoginBody: POST /api/v1/auth/cookie with any body. Only
// alice's password sets a cookie, and the cookie is HttpOnly.
func FuzzCookieLoginBody(f *testing.F) {
	fz := newFuzzServer(f, nil)
	addBodySeeds(f)
	f.Fuzz(func(t *testing.T, body, ct string) {
		r := bodyRequest("/api/v1/auth/cookie", body, ct)
		if r == nil {
			return
		}
		w := fz.serve(r)
		checkAnswer(t, w)
		for _, c := range w.Result().Cookies() {
			if c.Value == "" {
				continue // a cleared cookie
			}
			var sent api.LoginRequest
			if w.Code != http.StatusOK || json.Unmarshal([]byte(body), &sent) != nil || sent.Password != alicePass {
				t.Fatalf("status %d set cookie %s for body %q", w.Code, c.Name, body)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Fatalf("cookie %s is not HttpOnly and SameSite=Strict", c)
			}
		}
	})
}

// FuzzRefreshBody: POST /api/v1/auth/refresh with any body. Any token but
// alice's live refresh token is refused.
func FuzzRefreshBody(f *testing.F) {
	fz := newFuzzServer(f, nil)
	addBodySeeds(f)
	f.Add(`{"refresh_token":"`+fz.refresh+`"}`, "application/json")
	f.Add(`{"refresh_token":"`+fz.refresh+` "}`, "application/json")
	f.Add(`{"refresh_token":"`+fz.phone.Value+`"}`, "application/json")
	f.Fuzz(func(t *testing.T, body, ct string) {
		r := bodyRequest("/api/v1/auth/refresh", body, ct)
		if r == nil {
			return
		}
		w := fz.serve(r)
		checkAnswer(t, w)
		if w.Code == http.StatusOK {
			var sent api.RefreshRequest
			if json.Unmarshal([]byte(body), &sent) != nil || sent.RefreshToken != fz.refresh {
				t.Fatalf("refreshed with body %q", body)
			}
		}
	})
}

// FuzzLogoutBody: POST /api/v1/auth/logout (signed in as alice) with any
// body.
func FuzzLogoutBody(f *testing.F) {
	fz := newFuzzServer(f, nil)
	addBodySeeds(f)
	f.Add(`{"refresh_token":"`+fz.phone.Value+`"}`, "application/json")
	f.Fuzz(func(t *testing.T, body, ct string) {
		r := bodyRequest("/api/v1/auth/logout", body, ct)
		if r == nil {
			return
		}
		r.Header.Set("Authorization", "Bearer "+fz.access)
		checkAnswer(t, fz.serve(r))
	})
}

// FuzzCreateSessionBody: POST /api/v1/login-sessions with any body and
// User-Agent. What the phone is then shown of the device is clean text.
func FuzzCreateSessionBody(f *testing.F) {
	fz := newFuzzServer(f, nil)
	for i, b := range bodySeeds {
		f.Add(b, "application/json", "qrlogin-desktop/1.0")
		f.Add(b, contentTypeSeeds[i%len(contentTypeSeeds)], "")
	}
	f.Add(`{"device_name":"  a  "}`, "application/json", " Mozilla/5.0\t(X11) ")
	f.Add(`{"device_name":"\u061c\u200b\u00ad\ufeff"}`, "application/json", "\x7f\xc2\x85")
	f.Fuzz(func(t *testing.T, body, ct, ua string) {
		r := bodyRequest("/api/v1/login-sessions", body, ct)
		if r == nil || !validHeader(ua) {
			return
		}
		r.Header.Set("User-Agent", ua)
		w := fz.serve(r)
		checkAnswer(t, w)
		if w.Code != http.StatusCreated {
			return
		}
		var created api.CreateSessionResponse
		if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || created.ID == "" || created.PollToken == "" {
			t.Fatalf("create answer %s", w.Body)
		}
		r = parseTarget("GET", "/api/v1/login-sessions/"+created.ID)
		r.AddCookie(fz.phone)
		w = fz.serve(r)
		checkAnswer(t, w)
		var view struct {
			Device map[string]any `json:"device"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &view) != nil {
			t.Fatalf("phone view: %d %s", w.Code, w.Body)
		}
		for _, field := range []string{"name", "platform", "app_name", "user_agent"} {
			s, _ := view.Device[field].(string)
			checkCleanText(t, field, s, 300)
		}
	})
}

// checkCleanText checks a device field as the phone is shown it: valid
// UTF-8 without control, format or line-breaking characters, trimmed,
// and at most max characters.
func checkCleanText(t *testing.T, what, s string, max int) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s %q is not valid UTF-8", what, s)
	}
	if n := utf8.RuneCountInString(s); n > max {
		t.Fatalf("%s has %d characters, more than %d", what, n, max)
	}
	if strings.TrimSpace(s) != s {
		t.Fatalf("%s %q is not trimmed", what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			t.Fatalf("%s %q holds %U", what, s, r)
		}
	}
}

// Paths with a client's value in them.
var pathKinds = []struct{ method, prefix, suffix string }{
	{"GET", "/api/v1/login-sessions/", "/status"},
	{"DELETE", "/api/v1/login-sessions/", ""},
	{"GET", "/api/v1/login-sessions/by-code/", ""},
	{"GET", "/api/v1/login-sessions/", ""},
	{"POST", "/api/v1/login-sessions/", "/scan"},
	{"POST", "/api/v1/login-sessions/", "/confirm"},
	{"POST", "/api/v1/login-sessions/", "/cancel"},
	{"GET", "/m/", ""},
	{"GET", "/m/static/", ""},
	{"GET", "/api/v1/login-sessions/", "/status?after=pending&wait=1"},
	{"GET", "/api/v1/login-sessions/{id}/status?", ""},
	{"DELETE", "/api/v1/devices/", ""},
}

// FuzzPathValue: session ids, user codes and asset names in paths, and the
// status poll's query, as the request line a client may send: with alice's
// phone cookie where a phone signs in, with a wrong poll token where a
// desktop does. Any X-Request-ID: the one answered is always safe to log.
func FuzzPathValue(f *testing.F) {
	fz := newFuzzServer(f, nil)
	code := fz.session.UserCode
	for i := range pathKinds {
		for _, v := range []string{
			fz.session.ID, code, strings.ToLower(strings.ReplaceAll(code, "-", " ")), "", "x", "..", "%2e%2e", "%2F", "a%00b",
			"AAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 65), "BCDF-GHJK-", "bcdfghjk", "app.js", "../index.html",
			"%ff%fe", "é", "a?b=c", "a#b", "//x", "x/../../y", "style.css?v=1", "\u202e",
			"after=pending&wait=30", "wait=-1", "wait=99999999999999999999", "after=bogus&wait=1",
			"after=pending&after=scanned&wait=1", "wait=1e3", "wait=%00", "after=&wait=", "after=confirmed&wait=+5",
		} {
			f.Add(uint8(i), v, "")
		}
	}
	for _, id := range []string{"req-1", "a b", strings.Repeat("x", 64), strings.Repeat("x", 65), "é", "a\tb", "../x"} {
		f.Add(uint8(0), fz.session.ID, id)
	}
	static := staticNames(f)
	f.Fuzz(func(t *testing.T, kind uint8, value, requestID string) {
		k := pathKinds[int(kind)%len(pathKinds)]
		r := parseTarget(k.method, strings.ReplaceAll(k.prefix, "{id}", fz.session.ID)+value+k.suffix)
		if r == nil || !validHeader(requestID) {
			return
		}
		if requestID != "" {
			r.Header.Set("X-Request-ID", requestID)
		}
		if k.method == "DELETE" && k.prefix == "/api/v1/login-sessions/" || strings.HasPrefix(k.suffix, "/status") {
			r.Header.Set("Authorization", "Bearer not-the-poll-token")
		} else {
			r.AddCookie(fz.phone)
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w := fz.serve(r.WithContext(ctx))
		if ctx.Err() != nil {
			t.Fatalf("%s %s held the request", r.Method, r.RequestURI)
		}
		if id := w.Header().Get("X-Request-ID"); !safeRequestID.MatchString(id) ||
			safeRequestID.MatchString(requestID) && id != requestID {
			t.Fatalf("X-Request-ID %q answered with %q", requestID, id)
		}
		if strings.HasPrefix(k.prefix, "/m/") && w.Code < 400 {
			if w.Code != http.StatusOK {
				t.Fatalf("%s: status %d", r.RequestURI, w.Code)
			}
			if k.prefix == "/m/static/" {
				name := strings.TrimPrefix(path.Clean(r.URL.Path), "/m/static/")
				if !static[name] {
					t.Fatalf("%s served %q, not a static asset", r.RequestURI, name)
				}
			}
			return
		}
		checkAnswer(t, w)
	})
}

// safeRequestID is what a request id in the log may look like.
var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// staticNames is the set of the phone page's assets.
func staticNames(tb testing.TB) map[string]bool {
	names := map[string]bool{}
	err := fs.WalkDir(mobileweb.Static(), ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names[name] = true
		}
		return err
	})
	if err != nil || len(names) == 0 {
		tb.Fatalf("phone page assets: %v", err)
	}
	return names
}

// Endpoints that take an Authorization header.
const (
	authMe = iota
	authPoll
	authPhoneView
	authLogout
	authKinds
)

// FuzzAuthorization: any Authorization header at the endpoints that read
// one. Only the exact secret gets in: alice's access token, or the
// session's poll token at its status.
func FuzzAuthorization(f *testing.F) {
	fz := newFuzzServer(f, nil)
	for kind := range authKinds {
		for _, v := range []string{
			"Bearer " + fz.access, "bearer " + fz.access, "BEARER  " + fz.access + " ", "Bearer " + fz.session.PollToken,
			"Bearer " + fz.access + "x", "Bearer " + fz.access[:len(fz.access)-1], "Bearer " + fz.refresh,
			"Bearer " + fz.phone.Value, "Basic YWxpY2U6cGFzcw==", "Bearer", "Bearer ", "Bearer\t" + fz.access,
			"", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Bearer a.b.c", "Bearer ..", "Bearer " + strings.Repeat("A", 5000),
		} {
			f.Add(uint8(kind), v)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, value string) {
		if !validHeader(value) {
			return
		}
		var r *http.Request
		secret := fz.access
		switch kind % authKinds {
		case authMe:
			r = parseTarget("GET", "/api/v1/me")
		case authPoll:
			r, secret = parseTarget("GET", "/api/v1/login-sessions/"+fz.session.ID+"/status"), fz.session.PollToken
		case authPhoneView:
			r = parseTarget("GET", "/api/v1/login-sessions/"+fz.session.ID)
		case authLogout:
			// A token that is no refresh token of alice's: 404 once signed in.
			r = jsonRequest("POST", "/api/v1/auth/logout", `{"refresh_token":"no-such-token"}`)
		}
		r.Header.Set("Authorization", value)
		w := fz.serve(r)
		checkAnswer(t, w)
		if w.Code < 300 || w.Code == http.StatusNotFound && kind%authKinds == authLogout {
			scheme, tok, _ := strings.Cut(value, " ")
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) != secret {
				t.Fatalf("kind %d: status %d for Authorization %q", kind%authKinds, w.Code, value)
			}
		}
	})
}

// FuzzPhoneCookie: any Cookie header where the phone's cookie is read.
// Only alice's exact cookie value gets in.
func FuzzPhoneCookie(f *testing.F) {
	fz := newFuzzServer(f, nil)
	name, val := fz.phone.Name, fz.phone.Value
	for kind := range 3 {
		for _, v := range []string{
			name + "=" + val, name + `="` + val + `"`, name + "=" + val + "; other=1", "other=1; " + name + "=" + val,
			name + "=x; " + name + "=" + val, name + "=" + val + "x", name + "=" + val[1:], strings.ToUpper(name) + "=" + val,
			name + "=", name, "", ";;;", name + "=" + fz.refresh, name + "=" + fz.access, name + "=" + fz.session.PollToken,
			name + "=" + strings.Repeat("A", 5000), name + "=%41", name + "=a b", name + "=\x80",
		} {
			f.Add(uint8(kind), v)
		}
	}
	// Whether the request carries alice's cookie, by the rules net/http
	// reads cookies with.
	hasCookie := func(r *http.Request) bool {
		for _, c := range r.CookiesNamed(name) {
			if c.Value == val {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, kind uint8, value string) {
		if !validHeader(value) {
			return
		}
		var r *http.Request
		switch kind % 3 {
		case 0:
			r = parseTarget("GET", "/api/v1/me")
		case 1:
			r = parseTarget("GET", "/api/v1/login-sessions/by-code/"+strings.ReplaceAll(fz.session.UserCode, "-", ""))
		case 2:
			r = parseTarget("DELETE", "/api/v1/auth/cookie")
		}
		r.Header.Set("Cookie", value)
		if kind%3 == 2 && hasCookie(r) {
			return // signing out is allowed, and would end alice's cookie
		}
		w := fz.serve(r)
		checkAnswer(t, w)
		if w.Code < 300 && kind%3 != 2 && !hasCookie(r) {
			t.Fatalf("status %d for Cookie %q", w.Code, value)
		}
	})
}

// Client addresses: trusted proxies of the trusting server and others.
var remotes = []string{
	"192.0.2.1:1234", "[2001:db8::1]:443", "198.51.100.7:5555", "127.0.0.1:1", "[::1]:2",
	"[::ffff:192.0.2.1]:3", "203.0.113.9:80",
}

var fuzzProxies = []string{"192.0.2.1", "2001:db8::/32"}

// FuzzClientIP: any X-Forwarded-For and X-Real-IP, from trusted proxies
// and others, on servers trusting proxies or none. The address the
// server records for a login session (shown to the phone, and the key of
// the rate limits) is always an IP address: the peer's, or one that a
// trusted proxy forwarded.
func FuzzClientIP(f *testing.F) {
	plain := newFuzzServer(f, nil)
	proxied := newFuzzServer(f, fuzzProxies)
	for i := range remotes {
		for _, xff := range []string{
			"", "203.0.113.5", "203.0.113.5, 192.0.2.1", " 203.0.113.5 ,192.0.2.1 ", "2001:db8::5", "garbage",
			"1.2.3.4, garbage, 192.0.2.1", ",,,", "203.0.113.5:80", "[2001:db8::5]", "fe80::1%eth0", "::ffff:1.2.3.4",
			"1.2.3.4, 2001:db8::7", "01.02.03.04", "1.2.3.4\t", strings.Repeat("1.1.1.1,", 500),
		} {
			f.Add(uint8(i), xff, "", true)
			f.Add(uint8(i), xff, "203.0.113.77", false)
		}
	}
	f.Fuzz(func(t *testing.T, remoteIdx uint8, xff, realIP string, trusting bool) {
		if !validHeader(xff) || !validHeader(realIP) {
			return
		}
		fz := plain
		if trusting {
			fz = proxied
		}
		remote := remotes[int(remoteIdx)%len(remotes)]
		r := jsonRequest("POST", "/api/v1/login-sessions", "")
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if realIP != "" {
			r.Header.Set("X-Real-IP", realIP)
		}
		w := fz.serve(r)
		checkAnswer(t, w)
		var created api.CreateSessionResponse
		if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &created) != nil {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		r = parseTarget("GET", "/api/v1/login-sessions/"+created.ID)
		r.AddCookie(fz.phone)
		w = fz.serve(r)
		var view api.SessionInfo
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &view) != nil {
			t.Fatalf("phone view: %d %s", w.Code, w.Body)
		}
		got := view.Device.IP
		ip := net.ParseIP(got)
		if ip == nil {
			t.Fatalf("client IP %q from %s with X-Forwarded-For %q, X-Real-IP %q", got, remote, xff, realIP)
		}
		peer, _, _ := net.SplitHostPort(remote)
		if ip.Equal(net.ParseIP(peer)) {
			return
		}
		if !trusting || !trustedPeer(peer) {
			t.Fatalf("client IP %q, not the untrusted peer %s (X-Forwarded-For %q, X-Real-IP %q)", got, peer, xff, realIP)
		}
		// Only X-Forwarded-For is believed, never X-Real-IP.
		forwarded := strings.Split(xff, ",")
		if !slices.ContainsFunc(forwarded, func(s string) bool { return ip.Equal(net.ParseIP(strings.TrimSpace(s))) }) {
			t.Fatalf("client IP %q is neither the peer %s nor forwarded (X-Forwarded-For %q, X-Real-IP %q)", got, peer, xff, realIP)
		}
	})
}

func trustedPeer(host string) bool {
	ip := net.ParseIP(host)
	for _, p := range fuzzProxies {
		if _, n, err := net.ParseCIDR(p); err == nil && n.Contains(ip) || net.ParseIP(p).Equal(ip) {
			return true
		}
	}
	return false
}
