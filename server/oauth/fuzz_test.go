package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qrlogin/qrlogin/server/oauth"
)

// FuzzEndpoints sends arbitrary form bodies and Authorization headers to
// every OAuth endpoint: the answer is never a 5xx, and every error is an
// RFC 6749 body with a known code.
func FuzzEndpoints(f *testing.F) {
	f.Add(uint8(0), "client_id=cli&scope=openid+profile", "")
	f.Add(uint8(1), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=x&client_id=cli", "")
	f.Add(uint8(1), "grant_type=refresh_token&refresh_token=x", "Basic YmFja2VuZDp4")
	f.Add(uint8(2), "token=x&token_type_hint=refresh_token&client_id=cli", "Basic %%%")
	f.Add(uint8(3), "", "Bearer a.b.c")
	f.Add(uint8(0), "client_id=%zz&client_id=cli", "Basic Og==")
	f.Add(uint8(1), "client_secret=&client_id=backend&scope=openid%20openid%20email", "Bearer ")
	e := newEnv(f, nil)
	paths := []string{oauth.PathDevice, oauth.PathToken, oauth.PathRevoke, oauth.PathUserinfo}
	known := map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
		"unsupported_grant_type": true, "invalid_scope": true, "authorization_pending": true, "slow_down": true,
		"access_denied": true, "expired_token": true, "unsupported_token_type": true, "invalid_token": true,
		"insufficient_scope": true}
	f.Fuzz(func(t *testing.T, endpoint uint8, body, authz string) {
		path := paths[int(endpoint)%len(paths)]
		r := httptest.NewRequest(http.MethodPost, "http://login.example.com"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if w.Code < 300 {
			return
		}
		var eb oauth.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || !known[eb.Error] || eb.Description == "" {
			t.Fatalf("%s: %d %q is not an RFC 6749 error (%v)", path, w.Code, w.Body, err)
		}
	})
}
