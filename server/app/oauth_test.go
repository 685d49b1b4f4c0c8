package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// These tests drive the OAuth endpoints with golang.org/x/oauth2 and
// github.com/coreos/go-oidc/v3 exactly as an app would, while a phone
// signs in and confirms through the qrlogin API.

const testSecret = "k3J9sQ0vX2mB7nC4pL8wR1tY6uZ5aD0fG"

// oauthServer is a server with a public client "notes-cli" and a
// confidential client "backend", polling every second.
func oauthServer(t *testing.T, opts ...func(*app.Config)) *apptest.Server {
	t.Helper()
	srv := apptest.Start(t, append([]func(*app.Config){func(c *app.Config) { c.DeviceInterval = time.Second }}, opts...)...)
	srv.AddUser(t, "alice", "Alice Chen", "alice-password")
	srv.AddClient(t, "notes-cli", "Notes for the terminal", "")
	srv.AddClient(t, "backend", "Reports backend", testSecret)
	return srv
}

// recorder is an HTTP transport that records the token endpoint's
// answers, so a test can see what x/oauth2 was told and when it asked.
type recorder struct {
	mu      sync.Mutex
	answers []answer
	// onError, when set, is called with each error code as it arrives.
	onError func(code string)
}

type answer struct {
	at     time.Time
	status int
	code   string // the OAuth error code; "" on success
	basic  bool   // the request authenticated with HTTP Basic
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	at := time.Now()
	_, _, basic := req.BasicAuth()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/oauth2/token") {
		return resp, err
	}
	var code string
	if resp.StatusCode != http.StatusOK {
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if i := strings.Index(string(body[:n]), `"error":"`); i >= 0 {
			rest := string(body[i+9 : n])
			code = rest[:strings.IndexByte(rest, '"')]
		}
		resp.Body = readCloser{strings.NewReader(string(body[:n]))}
	}
	r.mu.Lock()
	r.answers = append(r.answers, answer{at: at, status: resp.StatusCode, code: code, basic: basic})
	f := r.onError
	r.mu.Unlock()
	if code != "" && f != nil {
		f(code)
	}
	return resp, nil
}

func (r *recorder) codes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, a := range r.answers {
		out = append(out, a.code)
	}
	return out
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// newOIDC discovers srv and returns the provider and an x/oauth2 config
// for clientID, with requests going through rec.
func newOIDC(t *testing.T, srv *apptest.Server, clientID, secret string, rec *recorder) (context.Context, *oidc.Provider, *oauth2.Config) {
	t.Helper()
	ctx := oidc.ClientContext(t.Context(), &http.Client{Transport: rec})
	provider, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return ctx, provider, &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     provider.Endpoint(),
		Scopes:       []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
}

// phone signs alice in on a phone and returns its access token.
func phone(t *testing.T, srv *apptest.Server) (*client.Client, string) {
	t.Helper()
	return srv.Client(), srv.Login(t, "alice", "alice-password")
}

// sessionID is the login session behind a device authorization: the last
// segment of verification_uri_complete, what the QR code holds.
func sessionID(t *testing.T, da *oauth2.DeviceAuthResponse) string {
	t.Helper()
	u, err := url.Parse(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	return path.Base(u.Path)
}

func retrieveCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestOAuthDeviceFlowWithStandardClients(t *testing.T) {
	srv := oauthServer(t, func(c *app.Config) { c.MetricsAddr = "127.0.0.1:0" })
	rec := &recorder{}
	ctx, provider, cfg := newOIDC(t, srv, "notes-cli", "", rec)
	if cfg.Endpoint.DeviceAuthURL != srv.URL+"/oauth2/device_authorization" {
		t.Fatalf("discovered device endpoint %q", cfg.Endpoint.DeviceAuthURL)
	}

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.VerificationURI != srv.URL+"/m" || !strings.HasPrefix(da.VerificationURIComplete, srv.URL+"/m/") ||
		da.Interval != 1 || len(da.UserCode) != 9 || da.DeviceCode == "" {
		t.Fatalf("device authorization %+v", da)
	}
	id := sessionID(t, da)
	// The server draws the QR code of verification_uri_complete too.
	qr, err := http.Get(srv.URL + "/api/v1/login-sessions/" + id + "/qr.png")
	if err != nil {
		t.Fatal(err)
	}
	qr.Body.Close()
	if qr.StatusCode != http.StatusOK || qr.Header.Get("Content-Type") != "image/png" {
		t.Errorf("qr.png of a device authorization: %d %s", qr.StatusCode, qr.Header.Get("Content-Type"))
	}

	// The phone sees the app by the name the server registered for it.
	ph, tok := phone(t, srv)
	if _, err := ph.Scan(ctx, tok, id); err != nil {
		t.Fatalf("scan: %v", err)
	}
	// What qrlogin adds: the device code is the session's poll token, so
	// the app can long-poll for the phone's answer instead of guessing.
	st, err := srv.Client().SessionStatus(ctx, id, da.DeviceCode, api.StatusScanned, 0)
	if err != nil || st.Status != api.StatusScanned {
		t.Fatalf("status with the device code: %+v %v", st, err)
	}
	if _, err := ph.Confirm(ctx, tok, id); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	st, err = srv.Client().SessionStatus(ctx, id, da.DeviceCode, api.StatusScanned, 5*time.Second)
	if err != nil || st.Status != api.StatusConfirmed || st.Tokens != nil {
		t.Fatalf("status after confirm: %+v %v; want confirmed without the API's tokens", st, err)
	}

	token, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v (answers %v)", err, rec.codes())
	}
	for _, code := range rec.codes() {
		if code == "slow_down" {
			t.Errorf("x/oauth2 at the advertised interval was told to slow down: %v", rec.codes())
		}
	}
	if token.RefreshToken == "" || token.TokenType != "Bearer" || token.Extra("scope") != "openid profile offline_access" {
		t.Fatalf("token %+v scope %v", token, token.Extra("scope"))
	}
	alice, err := srv.Client().Me(ctx, srv.Login(t, "alice", "alice-password"))
	if err != nil {
		t.Fatal(err)
	}

	// The ID token verifies with go-oidc, against the keys of jwks_uri.
	rawID, _ := token.Extra("id_token").(string)
	verifier := provider.Verifier(&oidc.Config{ClientID: "notes-cli"})
	idt, err := verifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		Name              string `json:"name"`
		PreferredUsername string `json:"preferred_username"`
		AuthTime          int64  `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != alice.ID || idt.Issuer != srv.URL || claims.Name != "Alice Chen" || claims.PreferredUsername != "alice" ||
		claims.AuthTime == 0 {
		t.Errorf("ID token sub %q iss %q claims %+v", idt.Subject, idt.Issuer, claims)
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: "backend"}).Verify(ctx, rawID); err == nil {
		t.Error("the ID token verified for another client")
	}

	// userinfo, through go-oidc.
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var infoClaims struct {
		Name string `json:"name"`
	}
	if err := info.Claims(&infoClaims); err != nil || info.Subject != alice.ID || infoClaims.Name != "Alice Chen" {
		t.Errorf("userinfo sub %q name %q %v", info.Subject, infoClaims.Name, err)
	}

	// The client's access token is for the client: qrlogin's own API
	// refuses it.
	if _, err := srv.Client().Me(ctx, token.AccessToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Errorf("the client's access token at /api/v1/me: %v, want 401", err)
	}
	// The device code works once.
	if _, err := cfg.Exchange(ctx, "", oauth2.SetAuthURLParam("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
		oauth2.SetAuthURLParam("device_code", da.DeviceCode)); retrieveCode(err) != "invalid_grant" {
		t.Errorf("the device code again: %v, want invalid_grant", err)
	}

	// The token source refreshes an expired token, rotating the refresh
	// token; the old one is then reuse, which ends the whole sign-in.
	old := *token
	expired := *token
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == old.AccessToken || fresh.RefreshToken == old.RefreshToken || fresh.Extra("id_token") == nil {
		t.Fatalf("refresh did not rotate: %+v", fresh)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(fresh)); err != nil {
		t.Errorf("userinfo with the refreshed token: %v", err)
	}
	// Another client cannot use the refresh token, and trying changes
	// nothing.
	_, _, other := newOIDC(t, srv, "backend", testSecret, rec)
	other.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if _, err := other.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); retrieveCode(err) != "invalid_grant" {
		t.Errorf("another client's refresh: %v, want invalid_grant", err)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token(); retrieveCode(err) != "invalid_grant" {
		t.Errorf("reused refresh token: %v, want invalid_grant", err)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token(); retrieveCode(err) != "invalid_grant" {
		t.Errorf("the chain after reuse: %v, want invalid_grant", err)
	}
	// The device authorization and the reuse are counted as the API's.
	m := scrapeMetrics(t, srv)
	m.want(t, 1, "qrlogin_login_sessions_created_total")
	m.want(t, 1, "qrlogin_login_sessions_confirmed_total")
	m.want(t, 1, "qrlogin_refresh_reuse_detected_total")
}

// A client polling faster than told is answered slow_down; x/oauth2 then
// waits 5 s longer, and the sign-in still completes.
func TestOAuthSlowDownHonoured(t *testing.T) {
	srv := oauthServer(t, func(c *app.Config) { c.DeviceInterval = 2 * time.Second })
	ph, tok := phone(t, srv)
	var confirmOnce sync.Once
	var id string
	confirmed := make(chan error, 1)
	rec := &recorder{onError: func(code string) {
		if code == "slow_down" {
			// Confirm only now, so the next poll is the one that must
			// wait the longer interval.
			confirmOnce.Do(func() {
				go func() {
					_, err := ph.Scan(context.Background(), tok, id)
					if err == nil {
						_, err = ph.Confirm(context.Background(), tok, id)
					}
					confirmed <- err
				}()
			})
		}
	}}
	ctx, _, cfg := newOIDC(t, srv, "notes-cli", "", rec)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id = sessionID(t, da)
	da.Interval = 1 // poll twice as often as the server said
	token, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v (answers %v)", err, rec.codes())
	}
	if err := <-confirmed; err != nil {
		t.Fatalf("phone: %v", err)
	}
	if token.AccessToken == "" {
		t.Fatal("no access token")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var slowAt, nextAt time.Time
	for _, a := range rec.answers {
		switch {
		case a.code == "slow_down" && slowAt.IsZero():
			slowAt = a.at
		case !slowAt.IsZero() && !a.basic && a.at.After(slowAt) && nextAt.IsZero():
			nextAt = a.at
		}
	}
	if slowAt.IsZero() {
		t.Fatalf("no slow_down answered: %v", rec.codes())
	}
	// x/oauth2 adds 5 s to its 1 s interval; the poll after slow_down
	// comes no sooner than that.
	if gap := nextAt.Sub(slowAt); gap < 5*time.Second {
		t.Errorf("next poll %v after slow_down, want at least 5s", gap)
	}
}

func TestOAuthCancelAndExpiry(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		srv := oauthServer(t)
		rec := &recorder{}
		ctx, _, cfg := newOIDC(t, srv, "notes-cli", "", rec)
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ph, tok := phone(t, srv)
		if _, err := ph.Cancel(ctx, tok, sessionID(t, da)); err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.DeviceAccessToken(ctx, da); retrieveCode(err) != "access_denied" {
			t.Fatalf("after cancel: %v, want access_denied", err)
		}
		// However fast it is asked again, the answer stays final.
		for range 3 {
			if code := pollOnce(t, srv, "notes-cli", da.DeviceCode); code != "access_denied" {
				t.Fatalf("fast repeat: %q, want access_denied", code)
			}
		}
	})
	t.Run("expiry", func(t *testing.T) {
		srv := oauthServer(t, func(c *app.Config) { c.SessionTTL = 2 * time.Second })
		rec := &recorder{}
		ctx, _, cfg := newOIDC(t, srv, "notes-cli", "", rec)
		da, err := cfg.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// x/oauth2 stops by itself at expires_in; without that deadline
		// it polls on and hears the server say so.
		da.Expiry = time.Time{}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := cfg.DeviceAccessToken(ctx, da); retrieveCode(err) != "expired_token" {
			t.Fatalf("after expiry: %v, want expired_token (answers %v)", err, rec.codes())
		}
		for range 3 {
			if code := pollOnce(t, srv, "notes-cli", da.DeviceCode); code != "expired_token" {
				t.Fatalf("fast repeat: %q, want expired_token", code)
			}
		}
	})
}

// pollOnce asks the token endpoint once, as a public client, and returns
// the error code ("" on success).
func pollOnce(t *testing.T, srv *apptest.Server, clientID, deviceCode string) string {
	t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {clientID}, "device_code": {deviceCode}}
	resp, err := http.PostForm(srv.URL+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = jsonDecode(resp, &body)
	return body.Error
}

func TestOAuthClientAuthentication(t *testing.T) {
	srv := oauthServer(t)
	rec := &recorder{}

	// An unknown client is refused at once.
	ctx, _, unknown := newOIDC(t, srv, "nope", "", rec)
	if _, err := unknown.DeviceAuth(ctx); retrieveCode(err) != "invalid_client" {
		t.Fatalf("unknown client: %v, want invalid_client", err)
	}

	// A confidential client authenticates at the device endpoint too
	// (RFC 8628 §3.1); x/oauth2's DeviceAuth sends the secret only when
	// asked to.
	_, _, conf := newOIDC(t, srv, "backend", testSecret, rec)
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if _, err := conf.DeviceAuth(ctx); retrieveCode(err) != "invalid_client" {
		t.Fatalf("confidential client without its secret: %v, want invalid_client", err)
	}
	if _, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam("client_secret", testSecret+"x")); retrieveCode(err) != "invalid_client" {
		t.Fatalf("confidential client with a wrong secret: %v, want invalid_client", err)
	}
	da, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam("client_secret", testSecret))
	if err != nil {
		t.Fatalf("confidential client with its secret: %v", err)
	}
	ph, tok := phone(t, srv)
	id := sessionID(t, da)
	if _, err := ph.Scan(ctx, tok, id); err != nil {
		t.Fatal(err)
	}
	if _, err := ph.Confirm(ctx, tok, id); err != nil {
		t.Fatal(err)
	}

	// The same client with a wrong secret cannot collect the tokens, nor
	// can another client with the device code.
	wrong := *conf
	wrong.ClientSecret = testSecret + "x"
	if _, err := wrong.DeviceAccessToken(ctx, da); retrieveCode(err) != "invalid_client" {
		t.Fatalf("token with a wrong secret: %v, want invalid_client", err)
	}
	if code := pollOnce(t, srv, "notes-cli", da.DeviceCode); code != "invalid_grant" {
		t.Fatalf("another client's device code: %q, want invalid_grant", code)
	}
	token, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("token with the right secret (Basic): %v", err)
	}
	if token.Extra("id_token") == nil {
		t.Error("no ID token")
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
