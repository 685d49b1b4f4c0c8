package oauth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/oauth"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/sqlite"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

const (
	publicURL = "https://login.example.com"
	secret    = "Qm8xT2vN5bR9cW1zL4kJ7hG0fD3sA6pY"
)

// env is the real router with the OAuth endpoints over a SQLite store.
type env struct {
	h     http.Handler
	st    store.Store
	clock *testclock.Clock
	user  store.User
	iss   *auth.Issuer
}

// limiter refuses everything once its budget is spent.
type limiter struct{ left int }

func (l *limiter) Allow(string) (bool, time.Duration) {
	l.left--
	return l.left >= 0, 42 * time.Second
}

func newEnv(t testing.TB, create oauth.Limiter) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := testclock.New(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	iss, err := auth.NewIssuer(t.Context(), st, auth.IssuerConfig{Issuer: "qrlogin", Audience: "qrlogin", TTL: 15 * time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	accounts := &account.Service{Store: st, Hasher: auth.NewHasher(auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1), NewID: auth.NewID, Now: clk.Now}
	u, err := accounts.Add(t.Context(), "alice", "Alice Chen", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	policy := refresh.Policy{TTL: 24 * time.Hour, MaxAge: 72 * time.Hour}
	o := oauth.New(oauth.Config{PublicURL: publicURL, SessionTTL: 2 * time.Minute, Refresh: policy, Now: clk.Now},
		oauth.Deps{Store: st, Tokens: iss, Create: create, Audit: audit.NewRecorder(st, nil, clk.Now)})
	srv, err := httpapi.New(httpapi.Config{PublicURL: publicURL, SessionTTL: 2 * time.Minute, RefreshTTL: policy.TTL, RefreshMaxAge: policy.MaxAge, Now: clk.Now},
		httpapi.Deps{Store: st, Accounts: accounts, Tokens: iss, Extra: []httpapi.Mounter{o}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, name, secret string }{{"cli", "Notes CLI", ""}, {"other", "Other app", ""}, {"backend", "Backend", secret}} {
		cl, err := oauth.NewClient(c.id, c.name, c.secret, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateClient(t.Context(), cl); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second) // tokens are issued after the clients were registered
	return &env{h: srv.Handler(), st: st, clock: clk, user: u, iss: iss}
}

// req describes one request to the router.
type req struct {
	method, path string
	form         url.Values
	raw          string // body instead of form
	ctype        string // Content-Type; form-encoded when empty
	basic        [2]string
	header       map[string]string
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) do(t *testing.T, r req) reply {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	body := r.raw
	if r.form != nil {
		body = r.form.Encode()
	}
	hr := httptest.NewRequest(r.method, "http://login.example.com"+r.path, strings.NewReader(body))
	if r.method == http.MethodPost {
		ct := r.ctype
		if ct == "" {
			ct = "application/x-www-form-urlencoded"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.basic[0] != "" {
		hr.SetBasicAuth(url.QueryEscape(r.basic[0]), url.QueryEscape(r.basic[1]))
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	out := reply{status: w.Code, header: w.Header()}
	data, _ := io.ReadAll(w.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", r.method, r.path, data, err)
		}
	}
	return out
}

// authorize starts a device authorization for the public client cli.
func (e *env) authorize(t *testing.T, clientID, scope string) oauth.DeviceAuthorization {
	t.Helper()
	r := e.do(t, req{path: oauth.PathDevice, form: url.Values{"client_id": {clientID}, "scope": {scope}}})
	if r.status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", r.status, r.body)
	}
	return oauth.DeviceAuthorization{DeviceCode: r.body["device_code"].(string), VerificationURIComplete: r.body["verification_uri_complete"].(string)}
}

func (e *env) sessionOf(t *testing.T, da oauth.DeviceAuthorization) string {
	return strings.TrimPrefix(da.VerificationURIComplete, publicURL+"/m/")
}

// phone moves the session as the phone would.
func (e *env) phone(t *testing.T, da oauth.DeviceAuthorization, confirm bool) {
	t.Helper()
	_, err := e.st.UpdateSession(t.Context(), e.sessionOf(t, da), func(s *login.Session) error {
		if !confirm {
			return login.Cancel(s, e.user.ID, e.clock.Now())
		}
		if err := login.Scan(s, e.user.ID, e.user.DisplayName, e.clock.Now()); err != nil {
			return err
		}
		return login.Confirm(s, e.user.ID, e.clock.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func poll(clientID, code string) url.Values {
	return url.Values{"grant_type": {oauth.DeviceGrantType}, "client_id": {clientID}, "device_code": {code}}
}

// want checks an OAuth error answer.
func want(t *testing.T, what string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.body["error"] != code {
		t.Errorf("%s: %d %v, want %d %s", what, r.status, r.body, status, code)
	}
	if code != "" {
		if _, ok := r.body["error_description"].(string); !ok {
			t.Errorf("%s: no error_description in %v", what, r.body)
		}
	}
}

func TestClientAuthenticationErrors(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name      string
		r         req
		status    int
		code      string
		challenge bool
	}{
		{name: "public client", r: req{form: url.Values{"client_id": {"cli"}}}, status: 200},
		{name: "confidential, post", r: req{form: url.Values{"client_id": {"backend"}, "client_secret": {secret}}}, status: 200},
		{name: "confidential, basic", r: req{form: url.Values{}, basic: [2]string{"backend", secret}}, status: 200},
		{name: "JSON body", r: req{raw: `{"client_id":"cli"}`, ctype: "application/json"}, status: 400, code: "invalid_request"},
		{name: "repeated parameter", r: req{raw: "client_id=cli&client_id=cli"}, status: 400, code: "invalid_request"},
		{name: "body too large", r: req{raw: "client_id=cli&scope=" + strings.Repeat("a", 20<<10)}, status: 400, code: "invalid_request"},
		{name: "no client_id", r: req{form: url.Values{}}, status: 401, code: "invalid_client"},
		{name: "unknown client", r: req{form: url.Values{"client_id": {"nope"}}}, status: 401, code: "invalid_client"},
		{name: "malformed client id", r: req{form: url.Values{"client_id": {"a b\n"}}}, status: 401, code: "invalid_client"},
		{name: "unknown client, basic", r: req{form: url.Values{}, basic: [2]string{"nope", secret}}, status: 401, code: "invalid_client", challenge: true},
		{name: "public client, basic", r: req{form: url.Values{}, basic: [2]string{"cli", "x"}}, status: 401, code: "invalid_client", challenge: true},
		{name: "public client with a secret", r: req{form: url.Values{"client_id": {"cli"}, "client_secret": {"x"}}}, status: 401, code: "invalid_client"},
		{name: "confidential without secret", r: req{form: url.Values{"client_id": {"backend"}}}, status: 401, code: "invalid_client"},
		{name: "confidential, wrong secret, post", r: req{form: url.Values{"client_id": {"backend"}, "client_secret": {secret + "x"}}}, status: 401, code: "invalid_client"},
		{name: "confidential, wrong secret, basic", r: req{form: url.Values{}, basic: [2]string{"backend", secret[:31]}}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic and post together", r: req{form: url.Values{"client_secret": {secret}}, basic: [2]string{"backend", secret}}, status: 400, code: "invalid_request"},
		{name: "client_id differs from basic", r: req{form: url.Values{"client_id": {"cli"}}, basic: [2]string{"backend", secret}}, status: 400, code: "invalid_request"},
		{name: "unknown scope", r: req{form: url.Values{"client_id": {"cli"}, "scope": {"openid email"}}}, status: 400, code: "invalid_scope"},
		{name: "cross-origin browser", r: req{form: url.Values{"client_id": {"cli"}}, header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}}, status: 403, code: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{oauth.PathDevice, oauth.PathToken, oauth.PathRevoke} {
				if tt.status == 200 && path != oauth.PathDevice {
					continue
				}
				if tt.code == "invalid_scope" && path != oauth.PathDevice {
					continue
				}
				r := tt.r
				r.path = path
				got := e.do(t, r)
				if got.status != tt.status || (tt.code != "" && got.body["error"] != tt.code) {
					t.Errorf("%s: %d %v, want %d %s", path, got.status, got.body, tt.status, tt.code)
				}
				if ch := got.header.Get("WWW-Authenticate"); tt.challenge != strings.HasPrefix(ch, "Basic ") {
					t.Errorf("%s: WWW-Authenticate %q, want a Basic challenge: %v", path, ch, tt.challenge)
				}
			}
		})
	}
}

func TestDeviceAuthorization(t *testing.T) {
	e := newEnv(t, &limiter{left: 1})
	r := e.do(t, req{path: oauth.PathDevice, form: url.Values{"client_id": {"cli"}, "scope": {"offline_access openid openid"}}})
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v %v", r.status, r.body, r.header)
	}
	id := strings.TrimPrefix(r.body["verification_uri_complete"].(string), publicURL+"/m/")
	if r.body["verification_uri"] != publicURL+"/m" || r.body["interval"] != float64(5) || r.body["expires_in"] != float64(120) ||
		len(r.body["user_code"].(string)) != 9 || len(r.body["device_code"].(string)) < 43 || id == "" {
		t.Errorf("answer %v", r.body)
	}
	sess, err := e.st.Session(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if sess.ClientID != "cli" || sess.Scope != "openid offline_access" || sess.Status != login.Pending ||
		sess.PollInterval != 5*time.Second || string(sess.PollTokenHash) != string(auth.HashToken(r.body["device_code"].(string))) {
		t.Errorf("session %+v", sess)
	}
	// The per-IP creation limit of the API applies.
	r = e.do(t, req{path: oauth.PathDevice, form: url.Values{"client_id": {"cli"}}})
	want(t, "over the limit", r, http.StatusTooManyRequests, "temporarily_unavailable")
	if r.header.Get("Retry-After") != "42" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
}

func TestDeviceTokenErrors(t *testing.T) {
	e := newEnv(t, nil)
	tok := func(f url.Values) reply { return e.do(t, req{path: oauth.PathToken, form: f}) }

	want(t, "no grant_type", tok(url.Values{"client_id": {"cli"}}), 400, "invalid_request")
	want(t, "unknown grant_type", tok(url.Values{"client_id": {"cli"}, "grant_type": {"password"}}), 400, "unsupported_grant_type")
	want(t, "no device_code", tok(url.Values{"client_id": {"cli"}, "grant_type": {oauth.DeviceGrantType}}), 400, "invalid_request")
	want(t, "unknown device_code", tok(poll("cli", "nope")), 400, "invalid_grant")
	want(t, "huge device_code", tok(poll("cli", strings.Repeat("x", 600))), 400, "invalid_grant")

	// A desktop's own session: its poll token is no device code.
	r := e.do(t, req{path: "/api/v1/login-sessions", raw: "{}", ctype: "application/json"})
	if r.status != 201 {
		t.Fatalf("create API session: %d %v", r.status, r.body)
	}
	want(t, "an API poll token", tok(poll("cli", r.body["poll_token"].(string))), 400, "invalid_grant")

	da := e.authorize(t, "cli", "openid")
	want(t, "another client's code", tok(poll("other", da.DeviceCode)), 400, "invalid_grant")
	// Polled at once, before the interval has passed since the start.
	want(t, "first poll too soon", tok(poll("cli", da.DeviceCode)), 400, "slow_down")
	e.clock.Advance(10 * time.Second) // the interval is now 10 s
	want(t, "on time", tok(poll("cli", da.DeviceCode)), 400, "authorization_pending")
	e.clock.Advance(9 * time.Second)
	want(t, "too soon for the grown interval", tok(poll("cli", da.DeviceCode)), 400, "slow_down")
	e.clock.Advance(15 * time.Second)
	want(t, "after the grown interval", tok(poll("cli", da.DeviceCode)), 400, "authorization_pending")

	// Confirmed: the tokens come at once, however soon after the last poll.
	e.phone(t, da, true)
	r = tok(poll("cli", da.DeviceCode))
	if r.status != 200 || r.body["id_token"] == nil || r.body["refresh_token"] != nil || r.body["scope"] != "openid" {
		t.Fatalf("delivery: %d %v", r.status, r.body)
	}
	for range 3 {
		want(t, "used", tok(poll("cli", da.DeviceCode)), 400, "invalid_grant")
	}

	cancelled := e.authorize(t, "cli", "")
	e.phone(t, cancelled, false)
	for range 3 {
		want(t, "cancelled", tok(poll("cli", cancelled.DeviceCode)), 400, "access_denied")
	}
	expired := e.authorize(t, "cli", "")
	e.clock.Advance(3 * time.Minute)
	for range 3 {
		want(t, "expired", tok(poll("cli", expired.DeviceCode)), 400, "expired_token")
	}
	// Without openid there is no ID token; without offline_access no
	// refresh token.
	plain := e.authorize(t, "cli", "")
	e.phone(t, plain, true)
	r = tok(poll("cli", plain.DeviceCode))
	if r.status != 200 || r.body["id_token"] != nil || r.body["refresh_token"] != nil || r.body["access_token"] == nil {
		t.Fatalf("plain delivery: %d %v", r.status, r.body)
	}
	if r := e.do(t, req{method: http.MethodGet, path: oauth.PathToken}); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint: %d", r.status)
	}
}

// signIn runs a device flow for clientID with scope and returns the token
// answer.
func (e *env) signIn(t *testing.T, clientID, scope string) map[string]any {
	t.Helper()
	da := e.authorize(t, clientID, scope)
	e.phone(t, da, true)
	r := e.do(t, req{path: oauth.PathToken, form: poll(clientID, da.DeviceCode)})
	if r.status != 200 {
		t.Fatalf("sign in: %d %v", r.status, r.body)
	}
	return r.body
}

func TestRefreshAndRevokeErrors(t *testing.T) {
	e := newEnv(t, nil)
	tokens := e.signIn(t, "cli", "openid offline_access")
	rt := tokens["refresh_token"].(string)
	refreshWith := func(clientID, tok string, extra url.Values) reply {
		f := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tok}}
		for k, v := range extra {
			f[k] = v
		}
		return e.do(t, req{path: oauth.PathToken, form: f})
	}
	revoke := func(clientID, tok string) reply {
		return e.do(t, req{path: oauth.PathRevoke, form: url.Values{"client_id": {clientID}, "token": {tok}}})
	}

	want(t, "no refresh_token", e.do(t, req{path: oauth.PathToken, form: url.Values{"grant_type": {"refresh_token"}, "client_id": {"cli"}}}), 400, "invalid_request")
	want(t, "unknown refresh token", refreshWith("cli", "nope", nil), 400, "invalid_grant")
	want(t, "another client's refresh token", refreshWith("other", rt, nil), 400, "invalid_grant")
	want(t, "a wider scope", refreshWith("cli", rt, url.Values{"scope": {"openid profile"}}), 400, "invalid_scope")
	want(t, "an unknown scope", refreshWith("cli", rt, url.Values{"scope": {"email"}}), 400, "invalid_scope")

	// None of these used the token up.
	r := refreshWith("cli", rt, url.Values{"scope": {"openid"}})
	if r.status != 200 || r.body["scope"] != "openid" || r.body["id_token"] == nil {
		t.Fatalf("narrower refresh: %d %v", r.status, r.body)
	}
	next := r.body["refresh_token"].(string)

	// A phone's or the API's refresh token is not a client's.
	login := e.do(t, req{path: "/api/v1/auth/login", raw: `{"username":"alice","password":"alice-password"}`, ctype: "application/json"})
	apiRT := login.body["refresh_token"].(string)
	want(t, "the API's refresh token", refreshWith("cli", apiRT, nil), 400, "invalid_grant")
	// ...and the client's is not the API's.
	if r := e.do(t, req{path: "/api/v1/auth/refresh", raw: `{"refresh_token":"` + next + `"}`, ctype: "application/json"}); r.status != 401 {
		t.Errorf("a client's refresh token at /api/v1/auth/refresh: %d %v", r.status, r.body)
	}

	// Revocation: missing token, unknown token, others' tokens.
	want(t, "revoke without token", e.do(t, req{path: oauth.PathRevoke, form: url.Values{"client_id": {"cli"}}}), 400, "invalid_request")
	if r := revoke("cli", "nope"); r.status != 200 {
		t.Errorf("revoke an unknown token: %d %v", r.status, r.body)
	}
	if r := revoke("other", next); r.status != 200 {
		t.Errorf("revoke another client's token: %d %v", r.status, r.body)
	}
	if r := revoke("cli", apiRT); r.status != 200 {
		t.Errorf("revoke the API's token: %d %v", r.status, r.body)
	}
	if r := e.do(t, req{path: "/api/v1/auth/refresh", raw: `{"refresh_token":"` + apiRT + `"}`, ctype: "application/json"}); r.status != 200 {
		t.Errorf("the API's token after a client tried to revoke it: %d %v", r.status, r.body)
	}
	want(t, "revoke own access token", revoke("cli", tokens["access_token"].(string)), 400, "unsupported_token_type")

	// Another client's attempt left the token working; its own revocation
	// ends it.
	r = refreshWith("cli", next, nil)
	if r.status != 200 {
		t.Fatalf("refresh after another client tried to revoke: %d %v", r.status, r.body)
	}
	latest := r.body["refresh_token"].(string)
	if r := revoke("cli", latest); r.status != 200 {
		t.Fatalf("revoke: %d %v", r.status, r.body)
	}
	want(t, "refresh after revocation", refreshWith("cli", latest, nil), 400, "invalid_grant")
}

func TestUserinfoErrors(t *testing.T) {
	e := newEnv(t, nil)
	full := e.signIn(t, "cli", "openid profile")["access_token"].(string)
	bare := e.signIn(t, "other", "")["access_token"].(string)
	apiTok, _, err := e.iss.Sign(e.user.ID, auth.AMRPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	get := func(authz string) reply {
		r := req{method: http.MethodGet, path: oauth.PathUserinfo}
		if authz != "" {
			r.header = map[string]string{"Authorization": authz}
		}
		return e.do(t, r)
	}
	r := get("Bearer " + full)
	if r.status != 200 || r.body["sub"] != e.user.ID || r.body["name"] != "Alice Chen" || r.body["preferred_username"] != "alice" {
		t.Fatalf("userinfo: %d %v", r.status, r.body)
	}
	if r := e.do(t, req{path: oauth.PathUserinfo, raw: "", header: map[string]string{"Authorization": "Bearer " + full}}); r.status != 200 {
		t.Errorf("POST userinfo: %d %v", r.status, r.body)
	}
	for _, tt := range []struct {
		name, authz, challenge string
		status                 int
		code                   string
	}{
		{"no token", "", `Bearer realm="qrlogin"`, 401, "invalid_token"},
		{"not bearer", "Basic eDp5", `error="invalid_token"`, 401, "invalid_token"},
		{"garbage", "Bearer abc.def.ghi", `error="invalid_token"`, 401, "invalid_token"},
		{"the API's token", "Bearer " + apiTok, `error="invalid_token"`, 401, "invalid_token"},
		{"no openid scope", "Bearer " + bare, `error="insufficient_scope"`, 403, "insufficient_scope"},
	} {
		r := get(tt.authz)
		want(t, tt.name, r, tt.status, tt.code)
		if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, tt.challenge) {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tt.name, ch, tt.challenge)
		}
	}
	// Signing out everywhere and removing the client end the token at once.
	e.clock.Advance(time.Second)
	if err := e.st.RevokeUserTokens(t.Context(), e.user.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	want(t, "after logout-all", get("Bearer "+full), 401, "invalid_token")
	e.clock.Advance(time.Second)
	again := e.signIn(t, "cli", "openid")["access_token"].(string)
	if r := get("Bearer " + again); r.status != 200 || r.body["name"] != nil {
		t.Fatalf("userinfo without profile: %d %v", r.status, r.body)
	}
	if err := e.st.DeleteClient(t.Context(), "cli"); err != nil {
		t.Fatal(err)
	}
	want(t, "deleted client", get("Bearer "+again), 401, "invalid_token")
	// Registered again under the same id, the old tokens stay dead.
	e.clock.Advance(time.Second)
	cl, _ := oauth.NewClient("cli", "Notes CLI", "", e.clock.Now())
	if err := e.st.CreateClient(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	want(t, "client registered again", get("Bearer "+again), 401, "invalid_token")
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, nil)
	a := e.do(t, req{method: http.MethodGet, path: oauth.PathDiscovery})
	b := e.do(t, req{method: http.MethodGet, path: oauth.PathASMetadata})
	if a.status != 200 || b.status != 200 {
		t.Fatalf("%d %d", a.status, b.status)
	}
	ja, _ := json.Marshal(a.body)
	jb, _ := json.Marshal(b.body)
	if string(ja) != string(jb) {
		t.Errorf("the two documents differ:\n%s\n%s", ja, jb)
	}
	for k, v := range map[string]string{
		"issuer": publicURL, "device_authorization_endpoint": publicURL + "/oauth2/device_authorization",
		"token_endpoint": publicURL + "/oauth2/token", "userinfo_endpoint": publicURL + "/oauth2/userinfo",
		"jwks_uri": publicURL + "/.well-known/jwks.json", "revocation_endpoint": publicURL + "/oauth2/revoke",
	} {
		if a.body[k] != v {
			t.Errorf("%s = %v, want %s", k, a.body[k], v)
		}
	}
	for k, v := range map[string]string{
		"grant_types_supported":                 oauth.DeviceGrantType + " refresh_token",
		"scopes_supported":                      "openid profile offline_access",
		"id_token_signing_alg_values_supported": "EdDSA",
		"subject_types_supported":               "public",
		"token_endpoint_auth_methods_supported": "none client_secret_basic client_secret_post",
		"response_types_supported":              "",
	} {
		list, ok := a.body[k].([]any)
		var got []string
		for _, x := range list {
			got = append(got, x.(string))
		}
		if !ok || strings.Join(got, " ") != v {
			t.Errorf("%s = %v, want [%s]", k, a.body[k], v)
		}
	}
}

// An app's sign-in is a device of the user's, with or without a refresh
// token: ending it from the phone refuses its access token at userinfo
// at once, and its refresh token.
func TestEndedAppSignIn(t *testing.T) {
	for _, scope := range []string{"openid", "openid offline_access"} {
		t.Run(scope, func(t *testing.T) {
			e := newEnv(t, nil)
			tokens := e.signIn(t, "cli", scope)
			access := tokens["access_token"].(string)
			ds, err := e.st.Devices(t.Context(), e.user.ID, e.clock.Now())
			if err != nil || len(ds) != 1 {
				t.Fatalf("devices %+v, %v; want the app's", ds, err)
			}
			if d := ds[0]; d.Kind != api.DeviceApp || d.AppName != "Notes CLI" || d.ClientID != "cli" {
				t.Errorf("app device %+v", d)
			}
			claims, err := e.iss.VerifyClient(access, publicURL)
			if err != nil || claims.SID != ds[0].ID {
				t.Fatalf("access token's sid %q, want the device %q (%v)", claims.SID, ds[0].ID, err)
			}
			get := req{method: http.MethodGet, path: oauth.PathUserinfo, header: map[string]string{"Authorization": "Bearer " + access}}
			if r := e.do(t, get); r.status != 200 {
				t.Fatalf("userinfo: %d %v", r.status, r.body)
			}
			if _, err := e.st.EndDevice(t.Context(), e.user.ID, ds[0].ID, api.ReasonSignedOut, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			want(t, "userinfo of an ended sign-in", e.do(t, get), 401, "invalid_token")
			if rt, ok := tokens["refresh_token"].(string); ok {
				r := e.do(t, req{path: oauth.PathToken, form: url.Values{"grant_type": {"refresh_token"}, "client_id": {"cli"}, "refresh_token": {rt}}})
				want(t, "refresh of an ended sign-in", r, 400, "invalid_grant")
			}
		})
	}
}
