package oauth_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/oauth"
	"github.com/qrlogin/qrlogin/server/store"
)

// entries returns the audit entries recorded after id after.
func (e *env) entries(t *testing.T, after int64) []audit.Entry {
	t.Helper()
	es, err := e.st.AuditEntries(t.Context(), store.AuditQuery{AfterID: after})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// The token endpoint records a delivery (with the client) and a refresh
// token's reuse, once each, and neither holds a token or device code.
func TestAuditTokenEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	da := e.authorize(t, "cli", "openid offline_access")
	e.phone(t, da, true)
	r := e.do(t, req{path: oauth.PathToken, form: poll("cli", da.DeviceCode), header: map[string]string{"X-Forwarded-For": "203.0.113.1"}})
	if r.status != 200 {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	rt0, at0 := r.body["refresh_token"].(string), r.body["access_token"].(string)
	stored, err := e.st.RefreshToken(t.Context(), auth.HashToken(rt0))
	if err != nil {
		t.Fatal(err)
	}
	es := e.entries(t, 0)
	if len(es) != 1 {
		t.Fatalf("a delivery recorded %d entries, want 1: %+v", len(es), es)
	}
	delivered := audit.Entry{ID: es[0].ID, Time: e.clock.Now().UTC(), Event: audit.TokensDelivered, UserID: e.user.ID, Username: "alice",
		DeviceID: stored.FamilyID, Device: "Notes CLI", IP: "192.0.2.1", // no proxy is trusted
		Detail: map[string]string{"client_id": "cli", "scope": "openid offline_access", "session_id": e.sessionOf(t, da)}}
	if !reflect.DeepEqual(es[0], delivered) {
		t.Errorf("delivery:\n got %+v\nwant %+v", es[0], delivered)
	}

	refreshForm := url.Values{"grant_type": {"refresh_token"}, "client_id": {"cli"}, "refresh_token": {rt0}}
	r = e.do(t, req{path: oauth.PathToken, form: refreshForm})
	if r.status != 200 {
		t.Fatalf("refresh: %d %v", r.status, r.body)
	}
	rt1 := r.body["refresh_token"].(string)
	if got := e.entries(t, es[0].ID); len(got) != 0 {
		t.Errorf("a refresh recorded %+v", got)
	}
	want(t, "reuse", e.do(t, req{path: oauth.PathToken, form: refreshForm}), 400, "invalid_grant")
	reuse := e.entries(t, es[0].ID)
	if len(reuse) != 1 {
		t.Fatalf("a reuse recorded %d entries, want 1: %+v", len(reuse), reuse)
	}
	wantReuse := audit.Entry{ID: reuse[0].ID, Time: e.clock.Now().UTC(), Event: audit.RefreshReuse, UserID: e.user.ID, Username: "alice",
		DeviceID: stored.FamilyID, IP: "192.0.2.1", Detail: map[string]string{"client_id": "cli", "kind": "refresh"}}
	if !reflect.DeepEqual(reuse[0], wantReuse) {
		t.Errorf("reuse:\n got %+v\nwant %+v", reuse[0], wantReuse)
	}

	all, err := json.Marshal(e.entries(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{da.DeviceCode, rt0, rt1, at0, r.body["access_token"].(string), "alice-password"} {
		if strings.Contains(string(all), secret) {
			t.Errorf("an audit entry holds a secret: %s", all)
		}
	}
}

// Without offline_access there is no refresh family: the delivery names
// the device stored for the sign-in, not the login session.
func TestAuditDeliveryWithoutRefreshToken(t *testing.T) {
	e := newEnv(t, nil)
	da := e.authorize(t, "cli", "openid")
	e.phone(t, da, true)
	if r := e.do(t, req{path: oauth.PathToken, form: poll("cli", da.DeviceCode)}); r.status != 200 {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	ds, err := e.st.Devices(t.Context(), e.user.ID, e.clock.Now())
	if err != nil || len(ds) != 1 {
		t.Fatalf("devices %+v, %v; want the app's", ds, err)
	}
	es := e.entries(t, 0)
	if len(es) != 1 || es[0].Event != audit.TokensDelivered || es[0].DeviceID != ds[0].ID || es[0].Detail["scope"] != "openid" {
		t.Errorf("delivery without a refresh token recorded %+v", es)
	}
}

// An app revoking its refresh token (RFC 7009) ends its sign-in: one
// device_signed_out entry, by the app, naming the device; revoking it
// again records nothing more.
func TestAuditRevoke(t *testing.T) {
	e := newEnv(t, nil)
	tokens := e.signIn(t, "cli", "openid offline_access")
	ds, err := e.st.Devices(t.Context(), e.user.ID, e.clock.Now())
	if err != nil || len(ds) != 1 {
		t.Fatalf("devices %+v, %v; want the app's", ds, err)
	}
	before := e.entries(t, 0)
	last := before[len(before)-1].ID
	revoke := req{path: oauth.PathRevoke, form: url.Values{"client_id": {"cli"}, "token": {tokens["refresh_token"].(string)}}}
	for range 2 {
		if r := e.do(t, revoke); r.status != 200 {
			t.Fatalf("revoke: %d %v", r.status, r.body)
		}
	}
	es := e.entries(t, last)
	if len(es) != 1 {
		t.Fatalf("revoking twice recorded %+v, want one entry", es)
	}
	if got := es[0]; got.Event != audit.DeviceSignedOut || got.DeviceID != ds[0].ID || got.UserID != e.user.ID ||
		got.Username != e.user.Username || got.Detail["by"] != "app" || got.Detail["client_id"] != "cli" {
		t.Errorf("revoke recorded %+v", got)
	}
	if ds, _ := e.st.Devices(t.Context(), e.user.ID, e.clock.Now()); len(ds) != 0 {
		t.Errorf("the app's device is still live: %+v", ds)
	}
}
