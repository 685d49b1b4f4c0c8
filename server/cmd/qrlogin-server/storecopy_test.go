package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/server/store/postgres/pgtest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// phoneSignIn signs username in on the phone page of the server at base
// and returns the phone cookie.
func phoneSignIn(t *testing.T, base, username, password string) *http.Cookie {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/auth/cookie", "application/json",
		strings.NewReader(`{"username":"`+username+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "qrlogin_phone" {
			return c
		}
	}
	t.Fatalf("phone sign-in: %s, no cookie", resp.Status)
	return nil
}

// phoneMe is the status of GET /api/v1/me with the phone cookie ck.
func phoneMe(t *testing.T, base string, ck *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// phoneDevices is GET /api/v1/devices with the phone cookie ck.
func phoneDevices(t *testing.T, base string, ck *http.Cookie) []api.SignedInDevice {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/devices", nil)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body api.DevicesResponse
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/devices: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Devices
}

// endDevice is the status of DELETE /api/v1/devices/{id} with the phone
// cookie ck.
func endDevice(t *testing.T, base string, ck *http.Cookie, id string) int {
	t.Helper()
	req, _ := http.NewRequest("DELETE", base+"/api/v1/devices/"+id, nil)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// currentDevice is the id of the sign-in of the phone access token tok.
func currentDevice(t *testing.T, base, tok string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body api.DevicesResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, d := range body.Devices {
		if d.Current {
			return d.ID
		}
	}
	t.Fatalf("GET /api/v1/devices: %s, no current device", resp.Status)
	return ""
}

// oauthRefresh is the status and body of a refresh at the token endpoint.
func oauthRefresh(t *testing.T, base, clientID, tok string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// Moving from SQLite to PostgreSQL signs nobody out, lets nobody back in
// who was signed out, keeps the devices list (ended sign-ins stay ended,
// ending one on the new store works), keeps detecting the reuse of tokens
// rotated before the move, and keeps the audit log with its ids.
// addAppSignIn stores a sign-in of username by the OAuth client "notes"
// directly in st, so its refresh token is known, and returns that token.
func addAppSignIn(t *testing.T, st store.Store, username string) string {
	t.Helper()
	u, err := st.UserByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	tok := "app-refresh-token-of-" + username + "-0123456789abcdef"
	rt := refresh.Policy{TTL: 24 * time.Hour, MaxAge: 72 * time.Hour}.Start(refresh.KindRefresh, u.ID, auth.AMRQR,
		auth.NewID(), auth.NewID(), auth.HashToken(tok), time.Now())
	rt.ClientID, rt.Scope = "notes", "openid offline_access"
	if err := st.CreateDevice(t.Context(), devices.Start(rt, devices.Info{AppName: "Notes"}, "192.0.2.8"), rt); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestStoreCopyCarriesSignInsAndAudit(t *testing.T) {
	ctx := context.Background()
	lite := filepath.Join(t.TempDir(), "single-node.db")
	mustCLI(t, "carol-password-1\n", "user", "add", "--db", lite, "--username", "carol", "--password-stdin")
	mustCLI(t, "dave-password-1\n", "user", "add", "--db", lite, "--username", "dave", "--password-stdin")
	mustCLI(t, "", "client", "add", "--db", lite, "--id", "notes", "--name", "Notes")

	// An OAuth app's sign-in of carol, made directly in the store so its
	// refresh token is known.
	st := openStore(t, lite)
	appToken := addAppSignIn(t, st, "carol")
	st.Close()

	single := startServer(t, lite, "--limit-login", "0") // five password sign-ins in a row
	c := client.New(single.url)
	first, err := c.Login(ctx, "carol", "carol-password-1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Refresh(ctx, first.RefreshToken) // first's token is now used
	if err != nil {
		t.Fatal(err)
	}
	ck := phoneSignIn(t, single.url, "carol", "carol-password-1")
	dave, err := c.Login(ctx, "dave", "dave-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LogoutAll(ctx, dave.AccessToken); err != nil {
		t.Fatal(err)
	}
	// A sign-in of carol's ended from her phone before the move.
	gone, err := c.Login(ctx, "carol", "carol-password-1")
	if err != nil {
		t.Fatal(err)
	}
	goneID := currentDevice(t, single.url, gone.AccessToken)
	if st := endDevice(t, single.url, ck, goneID); st != http.StatusNoContent {
		t.Fatalf("ending a device before the move: %d", st)
	}
	listed := phoneDevices(t, single.url, ck)
	if len(listed) != 3 {
		t.Fatalf("carol's devices before the move: %+v, want the app, the phone and the API sign-in", listed)
	}
	single.stop()
	before := auditLines(t, "--db", lite, "--since", "0")

	pg := pgtest.NewURL(t)
	out := mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	for _, want := range []string{"copied 2 users and 1 signing keys", "copied 1 OAuth clients, 5 signed-in devices", "audit entries", "stay signed in"} {
		if !strings.Contains(out, want) {
			t.Errorf("copy printed %q, want %q in it", out, want)
		}
	}
	after := auditLines(t, "--db", pg, "--since", "0")
	if len(after) != len(before) {
		t.Fatalf("the target has %d audit entries, the source %d", len(after), len(before))
	}
	for i := range before {
		if b, a := before[i], after[i]; b.ID != a.ID || b.Event != a.Event || !b.Time.Equal(a.Time) || b.UserID != a.UserID ||
			b.DeviceID != a.DeviceID || b.IP != a.IP || len(b.Detail) != len(a.Detail) {
			t.Errorf("entry %d: copied as %+v, was %+v", i, a, b)
		}
	}

	srv := startServer(t, pg)
	c = client.New(srv.url)
	if st := phoneMe(t, srv.url, ck); st != http.StatusOK {
		t.Errorf("the phone cookie after the move: %d, want 200", st)
	}
	// The same list, the phone's own sign-in still marked current.
	moved := phoneDevices(t, srv.url, ck)
	if len(moved) != len(listed) {
		t.Fatalf("carol's devices after the move: %+v, before: %+v", moved, listed)
	}
	for i, b := range listed {
		a := moved[i]
		if a.ID != b.ID || a.Kind != b.Kind || a.Name != b.Name || a.Platform != b.Platform || a.AppName != b.AppName ||
			a.IP != b.IP || !a.CreatedAt.Equal(b.CreatedAt) || a.Current != b.Current || a.New != b.New {
			t.Errorf("device %d after the move: %+v, before: %+v", i, a, b)
		}
	}
	if _, err := c.Me(ctx, second.AccessToken); err != nil {
		t.Errorf("an access token of a live sign-in, issued before the move: %v", err)
	}
	firstID := currentDevice(t, srv.url, second.AccessToken)
	var phoneID string
	for _, d := range moved {
		if d.Current {
			phoneID = d.ID
		}
	}
	if phoneID == "" || phoneID == firstID {
		t.Errorf("the phone's own sign-in %q after the move, the API's %q", phoneID, firstID)
	}
	if _, err := c.Me(ctx, gone.AccessToken); err == nil {
		t.Error("an access token of a sign-in ended before the move works after it")
	}
	status, body := oauthRefresh(t, srv.url, "notes", appToken)
	if status != http.StatusOK {
		t.Fatalf("the app's refresh after the move: %d %v", status, body)
	}
	// Ending a device on the new store ends it: its newest token fails.
	var appID string
	for _, d := range moved {
		if d.Kind == api.DeviceApp {
			appID = d.ID
		}
	}
	if st := endDevice(t, srv.url, ck, appID); st != http.StatusNoContent {
		t.Fatalf("ending the app's device after the move: %d", st)
	}
	newest, _ := body["refresh_token"].(string)
	if status, body := oauthRefresh(t, srv.url, "notes", newest); status != http.StatusBadRequest {
		t.Errorf("the refresh of an app ended after the move: %d %v", status, body)
	}
	if _, err := c.Me(ctx, dave.AccessToken); err == nil {
		t.Error("an access token revoked before the move works after it")
	}
	third, err := c.Refresh(ctx, second.RefreshToken)
	if err != nil {
		t.Fatalf("a refresh token issued before the move: %v", err)
	}
	// The token rotated before the move is still known as used: presenting
	// it ends the whole sign-in.
	if _, err := c.Refresh(ctx, first.RefreshToken); err == nil {
		t.Fatal("a refresh token rotated before the move was accepted")
	}
	if _, err := c.Refresh(ctx, third.RefreshToken); err == nil {
		t.Error("the sign-in survived the reuse of its token")
	}
	srv.stop()
	es := auditLines(t, "--db", pg, "--since", "0")
	last := es[len(es)-1]
	if last.Event != audit.RefreshReuse || last.Username != "carol" || last.ID <= before[len(before)-1].ID {
		t.Errorf("the reuse after the move recorded %+v, after ids up to %d", last, before[len(before)-1].ID)
	}

	// Again: everything is there; nothing is doubled, nothing ended on
	// the new store comes back.
	out = mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	if !strings.Contains(out, "copied 0 OAuth clients, 0 signed-in devices, 0 refresh tokens and phone cookies, and 0 audit entries") ||
		strings.Contains(out, "up to date") {
		t.Errorf("second copy printed %q, want nothing new", out)
	}
	if n := len(auditLines(t, "--db", pg, "--since", "0")); n != len(es) {
		t.Errorf("the second copy left %d audit entries, want %d", n, len(es))
	}
	pst := openStore(t, pg)
	for id, reason := range map[string]string{goneID: api.ReasonSignedOut, appID: api.ReasonSignedOut, firstID: api.ReasonReuseDetected, phoneID: ""} {
		d, err := pst.Device(ctx, id)
		if err != nil || d.EndReason != reason {
			t.Errorf("device %s on the new store: %+v, %v; want ended for %q", id, d, err, reason)
		}
	}
}

// copyStore brings devices, tokens and sign-outs that changed in the
// source since an earlier copy up to date, and appends source entries
// whose ids the target gave to entries of its own.
func TestCopyStoreAgain(t *testing.T) {
	ctx := context.Background()
	src := openStore(t, filepath.Join(t.TempDir(), "src.db"))
	dst := openStore(t, filepath.Join(t.TempDir(), "dst.db"))
	now := time.Now().UTC()
	u := store.User{ID: "u1", Username: "erin", DisplayName: "Erin", PasswordHash: "$argon2id$x", CreatedAt: now}
	if err := src.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	policy := refresh.Policy{TTL: time.Hour}
	live := policy.Start(refresh.KindRefresh, u.ID, "pwd", "t1", "f1", auth.HashToken("one"), now)
	other := policy.Start(refresh.KindRefresh, u.ID, "pwd", "t2", "f2", auth.HashToken("two"), now)
	for _, rt := range []store.RefreshToken{live, other} {
		if err := src.CreateDevice(ctx, devices.Start(rt, devices.Info{Name: "Phone " + rt.FamilyID}, "192.0.2.1"), rt); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.AppendAudit(ctx, audit.Entry{Time: now, Event: audit.UserAdded, UserID: u.ID, Username: "erin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := copyStore(ctx, src, dst, false); err != nil {
		t.Fatal(err)
	}

	// Meanwhile: t1 is rotated in the source, the sign-in f2 is ended
	// from the phone, erin signs out everywhere there and then signs in
	// again (f4), and the target records an event of its own.
	if _, err := src.UpdateRefreshToken(ctx, live.Hash, func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		next, err := policy.Rotate(rt, "", "t3", auth.HashToken("three"), now.Add(time.Second))
		return &next, err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.EndDevice(ctx, u.ID, "f2", api.ReasonSignedOut, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := src.AppendAudit(ctx, audit.Entry{Time: now.Add(time.Second), Event: audit.SignedOutEverywhere, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if err := dst.AppendAudit(ctx, audit.Entry{Time: now.Add(2 * time.Second), Event: audit.KeyRotated}); err != nil {
		t.Fatal(err)
	}
	if err := src.RevokeUserTokens(ctx, u.ID, now.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	again := policy.Start(refresh.KindRefresh, u.ID, "pwd", "t4", "f4", auth.HashToken("four"), now.Add(4*time.Second))
	if err := src.CreateDevice(ctx, devices.Start(again, devices.Info{Name: "Phone again"}, "192.0.2.1"), again); err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		res, err := copyStore(ctx, src, dst, false)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 && (res.tokens != 2 || res.usersRevoked != 1 || res.audit != 1 || res.devices != 1 || res.devicesUpdated != 2) {
			t.Errorf("second copy: %+v, want 2 new tokens, 1 user signed out, 1 audit entry, 1 new device, 2 brought forward", res)
		}
		if run == 1 && (res.tokens != 0 || res.tokensUpdated != 0 || res.usersRevoked != 0 || res.audit != 0 || res.auditThere != 2 ||
			res.devices != 0 || res.devicesUpdated != 0 || res.devicesThere != 3) {
			t.Errorf("third copy: %+v, want nothing new", res)
		}
	}
	// Each device as the source has it: f1 rotated, then ended by the
	// sign-out everywhere; f2 ended before it, for its own reason; f4,
	// signed in after it, live.
	for _, id := range []string{"f1", "f2", "f4"} {
		want, err := src.Device(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.Device(ctx, id)
		if err != nil || got.EndReason != want.EndReason || !got.EndedAt.Equal(micro(want.EndedAt)) ||
			!got.ExpiresAt.Equal(micro(want.ExpiresAt)) || !got.LastUsedAt.Equal(micro(want.LastUsedAt)) {
			t.Errorf("device %s in the target: %+v, %v; want %+v", id, got, err, want)
		}
	}
	if got, err := dst.RefreshToken(ctx, again.Hash); err != nil || !got.RevokedAt.IsZero() {
		t.Errorf("the sign-in made after the sign-out everywhere, in the target: %+v, %v", got, err)
	}
	got, err := dst.RefreshToken(ctx, live.Hash)
	if err != nil || got.UsedAt.IsZero() || got.RevokedAt.IsZero() {
		t.Errorf("the rotated and revoked token in the target: %+v, %v", got, err)
	}
	du, err := dst.User(ctx, u.ID)
	if err != nil || !du.TokensValidAfter.Equal(now.Add(3*time.Second).Truncate(time.Microsecond)) {
		t.Errorf("the target's user: %+v, %v; want signed out at %v", du, err, now.Add(3*time.Second))
	}
	es, err := dst.AuditEntries(ctx, store.AuditQuery{})
	if err != nil || len(es) != 3 || es[2].Event != audit.SignedOutEverywhere {
		t.Errorf("the target's audit log: %+v, %v; want the source's two entries and its own", es, err)
	}
}

// A target holding another sign-in under a device's id (another user,
// kind or app) is refused before anything is written.
func TestCopyStoreRefusesAnotherDevice(t *testing.T) {
	ctx := context.Background()
	src := openStore(t, filepath.Join(t.TempDir(), "src.db"))
	dst := openStore(t, filepath.Join(t.TempDir(), "dst.db"))
	now := time.Now().UTC()
	u := store.User{ID: "u1", Username: "erin", PasswordHash: "$argon2id$x", CreatedAt: now}
	for _, s := range []store.Store{src, dst} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	rt := refresh.Policy{TTL: time.Hour}.Start(refresh.KindPhone, u.ID, "pwd", "t1", "d1", auth.HashToken("one"), now)
	if err := src.CreateDevice(ctx, devices.Start(rt, devices.Info{}, ""), rt); err != nil {
		t.Fatal(err)
	}
	theirs := devices.Start(rt, devices.Info{}, "")
	theirs.Kind = api.DeviceDesktop
	if err := dst.ImportDevice(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateUser(ctx, store.User{ID: "u2", Username: "frank", PasswordHash: "$argon2id$y", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, err := copyStore(ctx, src, dst, false)
	if err == nil || !strings.Contains(err.Error(), "device d1") || !strings.Contains(err.Error(), "nothing copied") {
		t.Fatalf("copy onto another sign-in d1: %v, want a refusal naming it", err)
	}
	if _, err := dst.User(ctx, "u2"); err == nil {
		t.Error("frank was copied although the copy was refused")
	}
	if _, err := dst.RefreshToken(ctx, rt.Hash); err == nil {
		t.Error("d1's token was copied although the copy was refused")
	}
}

// A password changed in the source between two copies (copy while the old
// server runs, stop it, copy again) is carried: the second copy takes the
// new password and the sign-out it made, so the access and refresh tokens
// issued before the change are refused on the new store.
func TestStoreCopyCarriesPasswordChange(t *testing.T) {
	ctx := context.Background()
	lite := filepath.Join(t.TempDir(), "single-node.db")
	mustCLI(t, "carol-password-1\n", "user", "add", "--db", lite, "--username", "carol", "--password-stdin")
	single := startServer(t, lite)
	c := client.New(single.url)
	before, err := c.Login(ctx, "carol", "carol-password-1")
	if err != nil {
		t.Fatal(err)
	}
	single.stop()

	pg := pgtest.NewURL(t)
	mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	mustCLI(t, "carol-password-2\n", "user", "passwd", "--db", lite, "--username", "carol", "--password-stdin")
	out := mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	if !strings.Contains(out, "1 users' sign-outs and 1 users' passwords or names up to date") {
		t.Errorf("the second copy printed %q, want the password carried", out)
	}

	srv := startServer(t, pg)
	c = client.New(srv.url)
	if _, err := c.Me(ctx, before.AccessToken); err == nil {
		t.Error("an access token issued before the password change works on the new store")
	}
	if _, err := c.Refresh(ctx, before.RefreshToken); err == nil {
		t.Error("a refresh token issued before the password change works on the new store")
	}
	if _, err := c.Login(ctx, "carol", "carol-password-1"); err == nil {
		t.Error("the old password works on the new store")
	}
	if _, err := c.Login(ctx, "carol", "carol-password-2"); err != nil {
		t.Errorf("the new password on the new store: %v", err)
	}
	srv.stop()

	// A password changed on the target itself is not overwritten by the
	// source's older one: the copy is refused.
	mustCLI(t, "carol-password-3\n", "user", "passwd", "--db", pg, "--username", "carol", "--password-stdin")
	if _, err := cli(t, "", "store", "copy", "--from", lite, "--to", pg); err == nil ||
		!strings.Contains(err.Error(), `user "carol"`) || !strings.Contains(err.Error(), "nothing copied") {
		t.Errorf("a copy over a password changed on the target: %v, want a refusal naming carol", err)
	}
}

// A user, an OAuth client and a signing key deleted in the source between
// two copies make the second copy refuse, naming them, with nothing
// written; with --delete-missing they are deleted on the target: the
// retired key's tokens are refused, the deleted user's refresh token and
// the deleted client's sign-in fail.
func TestStoreCopyDeletedInSource(t *testing.T) {
	ctx := context.Background()
	lite := filepath.Join(t.TempDir(), "single-node.db")
	mustCLI(t, "carol-password-1\n", "user", "add", "--db", lite, "--username", "carol", "--password-stdin")
	mustCLI(t, "dave-password-1\n", "user", "add", "--db", lite, "--username", "dave", "--password-stdin")
	mustCLI(t, "", "client", "add", "--db", lite, "--id", "notes", "--name", "Notes")
	mustCLI(t, "", "keys", "rotate", "--db", lite, "--activate-in", "0")
	st := openStore(t, lite)
	keys, err := st.SigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("signing keys: %v, %v", keys, err)
	}
	retired := keys[0].ID
	appToken := addAppSignIn(t, st, "carol")
	st.Close()

	single := startServer(t, lite)
	c := client.New(single.url)
	old, err := c.Login(ctx, "carol", "carol-password-1") // signed with the key retired below
	if err != nil {
		t.Fatal(err)
	}
	dave, err := c.Login(ctx, "dave", "dave-password-1")
	if err != nil {
		t.Fatal(err)
	}
	single.stop()

	pg := pgtest.NewURL(t)
	mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	mustCLI(t, "", "keys", "rotate", "--db", lite, "--activate-in", "0")
	mustCLI(t, "", "keys", "retire", "--db", lite, "--kid", retired)
	mustCLI(t, "", "user", "delete", "--db", lite, "--username", "dave")
	mustCLI(t, "", "client", "delete", "--db", lite, "--id", "notes")

	_, err = cli(t, "", "store", "copy", "--from", lite, "--to", pg)
	if err == nil {
		t.Fatal("a copy over what the source deleted since was not refused")
	}
	for _, want := range []string{"nothing copied", `user "dave"`, "OAuth client notes", "signing key " + retired, "--delete-missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q lacks %q", err, want)
		}
	}
	pst := openStore(t, pg)
	if _, err := pst.UserByUsername(ctx, "dave"); err != nil {
		t.Errorf("dave on the target after a refused copy: %v", err)
	}
	if keys, err := pst.SigningKeys(ctx); err != nil || len(keys) != 1 {
		t.Errorf("the target's keys after a refused copy: %d, %v; want the one copied before, no new one", len(keys), err)
	}

	out := mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg, "--delete-missing")
	for _, want := range []string{"deleted from the target", `user "dave"`, "OAuth client notes", "signing key " + retired, "copied 0 users and 1 signing keys"} {
		if !strings.Contains(out, want) {
			t.Errorf("the copy with --delete-missing printed %q, want %q in it", out, want)
		}
	}
	if _, err := pst.UserByUsername(ctx, "dave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("dave on the target: %v, want gone", err)
	}
	if _, err := pst.Client(ctx, "notes"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the client notes on the target: %v, want gone", err)
	}

	srv := startServer(t, pg)
	c = client.New(srv.url)
	if _, err := c.Me(ctx, old.AccessToken); err == nil {
		t.Error("an access token signed with a retired key works on the new store")
	}
	if _, err := c.Refresh(ctx, dave.RefreshToken); err == nil {
		t.Error("the refresh token of a deleted user works on the new store")
	}
	if status, body := oauthRefresh(t, srv.url, "notes", appToken); status != http.StatusBadRequest && status != http.StatusUnauthorized {
		t.Errorf("the refresh of a deleted client's sign-in: %d %v", status, body)
	}
	// carol's sign-in itself lives on, with a token of the new key.
	next, err := c.Refresh(ctx, old.RefreshToken)
	if err != nil {
		t.Fatalf("carol's refresh after the retirement: %v", err)
	}
	if _, err := c.Me(ctx, next.AccessToken); err != nil {
		t.Errorf("an access token of the new key: %v", err)
	}
	srv.stop()

	out = mustCLI(t, "", "store", "copy", "--from", lite, "--to", pg)
	if strings.Contains(out, "deleted") {
		t.Errorf("a copy with nothing missing printed %q", out)
	}
}

// A user deleted in the source and added again under the same username
// is one missing from the source, not a conflict: with --delete-missing
// the old one goes and the new one is copied.
func TestCopyStoreUserAddedAgain(t *testing.T) {
	ctx := context.Background()
	src := openStore(t, filepath.Join(t.TempDir(), "src.db"))
	dst := openStore(t, filepath.Join(t.TempDir(), "dst.db"))
	now := time.Now().UTC()
	if err := src.CreateUser(ctx, store.User{ID: "u1", Username: "erin", PasswordHash: "$argon2id$x", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := copyStore(ctx, src, dst, false); err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateUser(ctx, store.User{ID: "u2", Username: "erin", PasswordHash: "$argon2id$y", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	_, err := copyStore(ctx, src, dst, false)
	if err == nil || !strings.Contains(err.Error(), `user "erin" (id u1`) || strings.Contains(err.Error(), "different") {
		t.Fatalf("copy over a user added again: %v, want a refusal naming the old one as missing", err)
	}
	res, err := copyStore(ctx, src, dst, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.users != 1 || len(res.deleted) != 1 {
		t.Errorf("copy with deleteMissing: %+v, want 1 user deleted and 1 copied", res)
	}
	if u, err := dst.UserByUsername(ctx, "erin"); err != nil || u.ID != "u2" || u.PasswordHash != "$argon2id$y" {
		t.Errorf("erin on the target: %+v, %v; want the one added again", u, err)
	}
}
