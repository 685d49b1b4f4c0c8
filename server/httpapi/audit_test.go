package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// auditEnv is env with an audit log in its store.
type auditEnv struct {
	*env
	store store.Store
	seen  int64 // the last entry id taken by newEntries
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	ae := &auditEnv{}
	ae.env = newEnvDeps(t, t.Output(), func(d *httpapi.Deps) {
		ae.store = d.Store
		d.Audit = audit.NewRecorder(d.Store, d.Log, nil)
	})
	return ae
}

// newEntries returns the entries recorded since the last call.
func (ae *auditEnv) newEntries() []audit.Entry {
	ae.t.Helper()
	es, err := ae.store.AuditEntries(context.Background(), store.AuditQuery{AfterID: ae.seen})
	if err != nil {
		ae.t.Fatal(err)
	}
	if len(es) > 0 {
		ae.seen = es[len(es)-1].ID
	}
	return es
}

// awaitEntries returns the n entries recorded since the last call, waiting
// (a bounded while) for entries recorded after an answer was written: a
// delivery is recorded once its tokens are on their way.
func (ae *auditEnv) awaitEntries(n int) []audit.Entry {
	ae.t.Helper()
	var es []audit.Entry
	for deadline := time.Now().Add(bound); len(es) < n && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		es = append(es, ae.newEntries()...)
	}
	if len(es) != n {
		ae.t.Fatalf("%d audit entries recorded, want %d: %+v", len(es), n, es)
	}
	return es
}

// expectOne checks that exactly want was recorded since the last call
// (its ID aside; its Time is the server's clock).
func (ae *auditEnv) expectOne(what string, want audit.Entry) {
	ae.t.Helper()
	es := ae.newEntries()
	if len(es) != 1 {
		ae.t.Fatalf("%s: %d audit entries recorded, want 1: %+v", what, len(es), es)
	}
	ae.checkEntry(what, es[0], want)
}

// checkEntry checks that got is want (its ID aside; a zero Time in want is
// the server's clock).
func (ae *auditEnv) checkEntry(what string, got, want audit.Entry) {
	ae.t.Helper()
	want.ID = got.ID
	if want.Time.IsZero() {
		want.Time = ae.clock.Now().UTC()
	}
	if !got.Time.Equal(want.Time) {
		ae.t.Errorf("%s: time %v, want the server's clock %v", what, got.Time, want.Time)
	}
	got.Time = want.Time
	if !reflect.DeepEqual(got, want) {
		ae.t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// family is the refresh family (the sign-in) of the token tok.
func (ae *auditEnv) family(tok string) string {
	ae.t.Helper()
	rt, err := ae.store.RefreshToken(context.Background(), auth.HashToken(tok))
	if err != nil {
		ae.t.Fatal(err)
	}
	return rt.FamilyID
}

const (
	phoneAddr   = "198.51.100.20:4000"
	phoneIP     = "198.51.100.20"
	desktopAddr = "203.0.113.30:5000"
	desktopIP   = "203.0.113.30"
)

func TestAuditPasswordSignIns(t *testing.T) {
	e := newAuditEnv(t)
	e.newEntries()
	body := func(user, pass string) string { return `{"username":"` + user + `","password":"` + pass + `"}` }

	w := e.do(req{method: "POST", path: "/api/v1/auth/login", body: body("alice", alicePass), remote: phoneAddr})
	expect(t, w, 200, "")
	login := decode[api.LoginResponse](t, w)
	e.expectOne("API sign-in", audit.Entry{Event: audit.PasswordSignIn, UserID: e.alice, Username: "alice",
		DeviceID: e.family(login.RefreshToken), IP: phoneIP, Detail: map[string]string{"via": "api"}})

	w = e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: body("bob", bobPass), remote: phoneAddr})
	expect(t, w, 200, "")
	var cookie string
	for _, c := range w.Result().Cookies() {
		if c.Name == e.srv.PhoneCookie() {
			cookie = c.Value
		}
	}
	e.expectOne("phone page sign-in", audit.Entry{Event: audit.PasswordSignIn, UserID: e.bob, Username: "bob",
		DeviceID: e.family(cookie), IP: phoneIP, Detail: map[string]string{"via": "phone_page"}})

	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/login", body: body("alice", "wrong-password-1"), remote: phoneAddr}), 401, "")
	e.expectOne("wrong password", audit.Entry{Event: audit.PasswordSignInFailed, UserID: e.alice, Username: "alice",
		IP: phoneIP, Detail: map[string]string{"via": "api", "reason": "wrong_password"}})

	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/cookie", body: body("nobody", "wrong-password-2"), remote: phoneAddr}), 401, "")
	e.expectOne("unknown user", audit.Entry{Event: audit.PasswordSignInFailed, Username: "nobody",
		IP: phoneIP, Detail: map[string]string{"via": "phone_page", "reason": "unknown_user"}})

	// A name that is no username is recorded cleaned and cut short.
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/login",
		body: body(`evil\n`+strings.Repeat("x", 300), "wrong-password-3"), remote: phoneAddr}), 401, "")
	e.expectOne("garbage name", audit.Entry{Event: audit.PasswordSignInFailed, Username: "evil" + strings.Repeat("x", 60),
		IP: phoneIP, Detail: map[string]string{"via": "api", "reason": "unknown_user"}})

	// Requests refused before a password is checked record nothing.
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice"}`}), 400, "")
	if es := e.newEntries(); len(es) != 0 {
		t.Errorf("a malformed sign-in recorded %+v", es)
	}
}

func TestAuditLoginSession(t *testing.T) {
	e := newAuditEnv(t)
	phone := e.login("alice", alicePass).AccessToken
	e.newEntries()
	phoneDo := func(action, id string) {
		t.Helper()
		expect(t, e.do(req{method: "POST", path: "/api/v1/login-sessions/" + id + "/" + action, bearer: phone, remote: phoneAddr}), 200, "")
	}

	s := e.create() // from 192.0.2.1, httptest's client address
	phoneDo("scan", s.ID)
	if es := e.newEntries(); len(es) != 0 {
		t.Errorf("a scan recorded %+v", es)
	}
	phoneDo("confirm", s.ID)
	e.expectOne("confirm", audit.Entry{Event: audit.SessionConfirmed, UserID: e.alice, Username: "alice",
		DeviceID: s.ID, Device: "Work laptop", IP: phoneIP, Detail: map[string]string{"desktop_ip": "192.0.2.1"}})

	w := e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status", bearer: s.PollToken, remote: desktopAddr})
	expect(t, w, 200, "")
	st := decode[api.SessionStatusResponse](t, w)
	if st.Tokens == nil {
		t.Fatalf("no tokens: %+v", st)
	}
	e.expectOne("delivery by poll", audit.Entry{Event: audit.TokensDelivered, UserID: e.alice, Username: "alice",
		DeviceID: e.family(st.Tokens.RefreshToken), Device: "Work laptop", IP: desktopIP,
		Detail: map[string]string{"session_id": s.ID}})
	// The delivery is over; polling again records nothing.
	e.do(req{method: "GET", path: "/api/v1/login-sessions/" + s.ID + "/status", bearer: s.PollToken})
	if es := e.newEntries(); len(es) != 0 {
		t.Errorf("a second poll recorded %+v", es)
	}

	c := e.create()
	phoneDo("cancel", c.ID)
	e.expectOne("cancel", audit.Entry{Event: audit.SessionCancelled, UserID: e.alice, Username: "alice",
		DeviceID: c.ID, Device: "Work laptop", IP: phoneIP, Detail: map[string]string{"desktop_ip": "192.0.2.1"}})
	// The desktop withdrawing its own QR code is no phone's cancel.
	d := e.create()
	expect(t, e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + d.ID, bearer: d.PollToken}), 200, "")
	if es := e.newEntries(); len(es) != 0 {
		t.Errorf("a withdrawal recorded %+v", es)
	}
}

func TestAuditDeliveryByStreamAndLongPoll(t *testing.T) {
	e := newAuditEnv(t)
	hs := httptest.NewServer(e.srv.Handler())
	t.Cleanup(func() { e.srv.Shutdown(); hs.Close() })
	cl := client.New(hs.URL)
	phone := e.login("alice", alicePass).AccessToken
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	streamed := e.create()
	es, err := cl.Events(ctx, streamed.ID, streamed.PollToken)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if first, err := es.Next(); err != nil || first.Status != api.StatusPending {
		t.Fatalf("first event %+v, %v", first, err)
	}
	expect(t, e.phone("scan", streamed.ID, phone), 200, "")
	e.newEntries()
	expect(t, e.phone("confirm", streamed.ID, phone), 200, "")
	var tokens *api.Tokens
	for tokens == nil {
		st, err := es.Next()
		if err != nil {
			t.Fatalf("stream ended without tokens: %v", err)
		}
		tokens = st.Tokens
	}
	// The stream may deliver before the confirm's answer: both are
	// recorded, the confirm first.
	both := e.awaitEntries(2)
	if both[0].Event != audit.SessionConfirmed {
		t.Fatalf("confirm and delivery recorded %+v", both)
	}
	e.checkEntry("delivery by event stream", both[1], audit.Entry{Event: audit.TokensDelivered, UserID: e.alice, Username: "alice",
		DeviceID: e.family(tokens.RefreshToken), Device: "Work laptop", IP: "127.0.0.1",
		Detail: map[string]string{"session_id": streamed.ID}})

	polled := e.create()
	expect(t, e.phone("scan", polled.ID, phone), 200, "")
	expect(t, e.phone("confirm", polled.ID, phone), 200, "")
	e.newEntries()
	st, err := cl.SessionStatus(ctx, polled.ID, polled.PollToken, api.StatusPending, 5)
	if err != nil || st.Tokens == nil {
		t.Fatalf("long-poll: %+v, %v", st, err)
	}
	e.checkEntry("delivery by long-poll", e.awaitEntries(1)[0], audit.Entry{Event: audit.TokensDelivered, UserID: e.alice, Username: "alice",
		DeviceID: e.family(st.Tokens.RefreshToken), Device: "Work laptop", IP: "127.0.0.1",
		Detail: map[string]string{"session_id": polled.ID}})
}

func TestAuditRefreshReuse(t *testing.T) {
	e := newAuditEnv(t)
	r0 := e.login("alice", alicePass).RefreshToken
	family := e.family(r0)
	expect(t, e.refresh(r0), 200, "")
	if es := e.newEntries(); len(es) != 1 || es[0].Event != audit.PasswordSignIn {
		t.Fatalf("a sign-in and a refresh recorded %+v, want the sign-in only", es)
	}
	expect(t, e.do(req{method: "POST", path: "/api/v1/auth/refresh", body: `{"refresh_token":"` + r0 + `"}`, remote: desktopAddr}), 401, "")
	e.expectOne("reuse", audit.Entry{Event: audit.RefreshReuse, UserID: e.alice, Username: "alice",
		DeviceID: family, IP: desktopIP, Detail: map[string]string{"kind": "refresh"}})
	// A refresh that is merely refused is no reuse.
	expect(t, e.refresh("never-issued-token"), 401, "")
	if es := e.newEntries(); len(es) != 0 {
		t.Errorf("an unknown refresh token recorded %+v", es)
	}
}

// TestAuditHoldsNoSecret runs every recorded HTTP event (password
// sign-ins good and bad, QR confirm and cancel, delivery, refresh, reuse)
// and checks that no entry holds a password, token, token hash or poll
// token.
func TestAuditHoldsNoSecret(t *testing.T) {
	e := newAuditEnv(t)
	const wrong = "wrong-secret-Pa55word"
	secrets := []string{alicePass, bobPass, wrong}

	w := e.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"username":"alice","password":"` + wrong + `"}`})
	expect(t, w, 401, "")
	// A password typed into the name field of an unknown user is the one
	// thing recorded as typed; that is why it is cut to a username's size.
	pw := e.login("alice", alicePass)
	ck := e.cookieLogin("bob", bobPass)
	secrets = append(secrets, pw.AccessToken, pw.RefreshToken, ck.Value)

	s := e.create()
	expect(t, e.phone("scan", s.ID, pw.AccessToken), 200, "")
	expect(t, e.phone("confirm", s.ID, pw.AccessToken), 200, "")
	st := decode[api.SessionStatusResponse](t, e.status(s, ""))
	secrets = append(secrets, s.PollToken, st.Tokens.AccessToken, st.Tokens.RefreshToken)
	c := e.create()
	secrets = append(secrets, c.PollToken)
	expect(t, e.do(req{method: "POST", path: "/api/v1/login-sessions/" + c.ID + "/cancel", cookie: ck}), 200, "")

	w = e.refresh(st.Tokens.RefreshToken)
	expect(t, w, 200, "")
	next := decode[api.LoginResponse](t, w)
	secrets = append(secrets, next.AccessToken, next.RefreshToken)
	expect(t, e.refresh(st.Tokens.RefreshToken), 401, "") // reuse

	for _, u := range []string{e.alice, e.bob} {
		usr, err := e.store.User(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, usr.PasswordHash)
	}
	tokens, err := e.store.RefreshTokens(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range tokens {
		secrets = append(secrets, string(rt.Hash), jsonBytes(t, rt.Hash))
	}
	secrets = append(secrets, jsonBytes(t, auth.HashToken(s.PollToken)))

	es := e.newEntries()
	events := map[audit.Event]int{}
	for _, en := range es {
		events[en.Event]++
	}
	for _, ev := range []audit.Event{audit.PasswordSignIn, audit.PasswordSignInFailed, audit.SessionConfirmed,
		audit.SessionCancelled, audit.TokensDelivered, audit.RefreshReuse} {
		if events[ev] == 0 {
			t.Errorf("the flow recorded no %s entry: %v", ev, events)
		}
	}
	row := jsonBytes(t, es)
	for _, sec := range secrets {
		if sec != "" && strings.Contains(row, strings.Trim(sec, `"`)) {
			t.Errorf("an audit entry holds a secret %.12q…:\n%s", sec, row)
		}
	}
}

// jsonBytes is v as JSON.
func jsonBytes(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
