package signin_test

import (
	"context"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// realHarness drives a Flow against a real qrlogin server on 127.0.0.1
// that shares the test's clock.
type realHarness struct {
	*harness
	srv   *apptest.Server
	phone *client.Client
	token string // the phone user's access token
	user  api.User
}

func newRealHarness(t *testing.T, opts ...func(*signin.Config)) *realHarness {
	t.Helper()
	h := newHarness(t, opts...)
	srv := apptest.Start(t, func(c *app.Config) { c.Now = h.clock.Now })
	// Let go of the account stream before the server stops.
	t.Cleanup(h.stopFlow)
	r := &realHarness{harness: h, srv: srv, phone: srv.Client()}
	r.user = srv.AddUser(t, "alice", "Alice Example", "correct horse battery")
	r.token = srv.Login(t, "alice", "correct horse battery")
	h.cfg.Server = srv.URL
	h.cfg.API = signin.Client{Client: client.New(srv.URL)}
	h.restart()
	return r
}

// waitHeld waits until the server holds n waits (the flow's stream).
func (r *realHarness) waitHeld(n int) {
	r.t.Helper()
	for i := 0; r.srv.App.Waiters() != n; i++ {
		if i > 2000 {
			r.t.Fatalf("the server holds %d waits after 10s, want %d", r.srv.App.Waiters(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *realHarness) scan(id string) {
	r.t.Helper()
	if _, err := r.phone.Scan(context.Background(), r.token, id); err != nil {
		r.t.Fatalf("phone scan: %v", err)
	}
}

func (r *realHarness) confirm(id string) {
	r.t.Helper()
	if _, err := r.phone.Confirm(context.Background(), r.token, id); err != nil {
		r.t.Fatalf("phone confirm: %v", err)
	}
}

func TestRealServerSignInRefreshSignOut(t *testing.T) {
	r := newRealHarness(t)
	st := r.stepTo(signin.Waiting)
	if want := "/m/" + st.Code.ID; len(st.Code.VerifyURL) < len(want) || st.Code.VerifyURL[len(st.Code.VerifyURL)-len(want):] != want {
		t.Errorf("verify URL %q does not end in %q", st.Code.VerifyURL, want)
	}
	if len(st.Code.UserCode) != 9 || st.Code.UserCode[4] != '-' {
		t.Errorf("user code %q, want XXXX-XXXX", st.Code.UserCode)
	}

	// The event stream is woken by the scan.
	done := make(chan time.Duration, 1)
	go func() { done <- r.step() }()
	r.waitHeld(1)
	r.scan(st.Code.ID)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the event stream did not wake on scan")
	}
	if st := r.want(signin.Scanned); st.ScannedBy != "Alice Example" {
		t.Errorf("scanned by %q", st.ScannedBy)
	}

	go func() { done <- r.step() }()
	r.confirm(st.Code.ID)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the event stream did not wake on confirm")
	}
	st = r.want(signin.SignedIn)
	if st.Account.User != r.user {
		t.Errorf("signed in as %+v, want %+v", st.Account.User, r.user)
	}
	wait := r.settle()
	if st := r.want(signin.SignedIn); st.Account.MemberSince.IsZero() {
		t.Errorf("/me not shown: %+v", st.Account)
	}
	saved, err := r.tokens.Load(r.cfg.Server)
	if err != nil {
		t.Fatal(err)
	}

	// Refresh before the access token expires.
	r.clock.Advance(wait)
	r.settle()
	st = r.want(signin.SignedIn)
	if now, _ := r.tokens.Load(r.cfg.Server); now == saved {
		t.Errorf("refresh token not rotated and saved")
	}
	if st.Problem != nil {
		t.Errorf("problem after refresh: %+v", st.Problem)
	}

	// A restarted app signs in from storage, without a code.
	r.restart()
	r.settle()
	r.want(signin.SignedIn)

	// Sign out revokes the refresh token on the server.
	raw, _ := r.tokens.Load(r.cfg.Server)
	refresh := decodeRefresh(t, raw)
	r.flow.SignOut()
	r.step()
	if st := r.want(signin.Starting); st.Notice != "You have signed out." {
		t.Errorf("notice %q", st.Notice)
	}
	if _, err := r.phone.Refresh(context.Background(), refresh); !client.IsCode(err, api.ErrUnauthorized) {
		t.Errorf("refresh with the signed-out token: %v, want unauthorized", err)
	}
	if r.tokens.Len() != 0 {
		t.Errorf("sign-in still saved")
	}
	r.stepTo(signin.Waiting)
}

func TestRealServerCancel(t *testing.T) {
	r := newRealHarness(t)
	st := r.stepTo(signin.Waiting)
	r.scan(st.Code.ID)
	r.step()
	if _, err := r.phone.Cancel(context.Background(), r.token, st.Code.ID); err != nil {
		t.Fatal(err)
	}
	if d := r.step(); d != signin.Idle {
		t.Errorf("step after cancel returned %v, want Idle", d)
	}
	r.want(signin.Cancelled)
	r.flow.NewCode()
	r.step()
	if st2 := r.want(signin.Waiting); st2.Code.ID == st.Code.ID {
		t.Errorf("NewCode kept the cancelled code")
	}
}

func TestRealServerExpiry(t *testing.T) {
	r := newRealHarness(t, func(c *signin.Config) { c.MaxRenewals = 1 })
	first := r.stepTo(signin.Waiting).Code
	r.clock.Advance(2*time.Minute + time.Second)
	r.step() // the server reports expired
	r.step() // a new code
	second := r.want(signin.Waiting).Code
	if second.ID == first.ID {
		t.Fatalf("expired code not replaced")
	}
	r.clock.Advance(2*time.Minute + time.Second)
	if d := r.step(); d != signin.Idle {
		t.Errorf("step returned %v after the renewal limit, want Idle", d)
	}
	r.want(signin.Expired)
	// The expired code cannot be used by a phone.
	if _, err := r.phone.Scan(context.Background(), r.token, second.ID); !client.IsCode(err, api.ErrExpired) {
		t.Errorf("scan of an expired code: %v", err)
	}
}

func TestRealServerWithdrawOnClose(t *testing.T) {
	waiting := make(chan signin.State, 1)
	r := newRealHarness(t)
	r.cfg.OnChange = func(s signin.State) {
		if s.Phase == signin.Waiting {
			select {
			case waiting <- s:
			default:
			}
		}
	}
	r.restart()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.flow.Run(ctx)
		close(done)
	}()
	var st signin.State
	select {
	case st = <-waiting:
	case <-time.After(20 * time.Second):
		t.Fatal("no code within 20s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	info, err := r.phone.SessionInfo(context.Background(), r.token, st.Code.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != api.StatusCancelled {
		t.Errorf("status after close = %s, want cancelled", info.Status)
	}
}

func TestRealServerUnreachable(t *testing.T) {
	r := newRealHarness(t)
	r.stepTo(signin.Waiting)
	r.srv.Stop(t)
	var d time.Duration
	for range 3 {
		if d = r.step(); d > 0 {
			break
		}
	}
	st := r.want(signin.Waiting)
	if d != time.Second || st.Problem == nil || st.Problem.Text != "Can't reach the server at "+r.cfg.Server {
		t.Errorf("after the server stopped: wait %v, problem %+v", d, st.Problem)
	}
}

func decodeRefresh(t *testing.T, raw string) string {
	t.Helper()
	var s struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := jsonUnmarshal(raw, &s); err != nil || s.RefreshToken == "" {
		t.Fatalf("saved sign-in %v: %v", s, err)
	}
	return s.RefreshToken
}

func TestRealServerRevokedElsewhere(t *testing.T) {
	r := newRealHarness(t)
	st := r.stepTo(signin.Waiting)
	r.scan(st.Code.ID)
	r.step()
	r.confirm(st.Code.ID)
	r.step()
	wait := r.settle()
	r.want(signin.SignedIn)

	// Someone else uses the saved refresh token first: the server sees the
	// flow's copy as reused and revokes the whole sign-in.
	raw, _ := r.tokens.Load(r.cfg.Server)
	if _, err := r.phone.Refresh(context.Background(), decodeRefresh(t, raw)); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(wait)
	st = r.stepTo(signin.Waiting)
	if st.Notice != "Your sign-in has ended (it expired or was revoked). Scan the code to sign in again." {
		t.Errorf("notice %q", st.Notice)
	}
	if r.tokens.Len() != 0 {
		t.Errorf("the revoked sign-in is still saved")
	}
}

// Asking for a new code while the flow waits on the stream acts at once.
func TestRealServerNewCodeWhileWaiting(t *testing.T) {
	codes := make(chan signin.State, 4)
	r := newRealHarness(t)
	r.cfg.OnChange = func(s signin.State) {
		if s.Phase == signin.Waiting {
			codes <- s
		}
	}
	r.restart()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.flow.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	next := func() signin.State {
		select {
		case st := <-codes:
			return st
		case <-time.After(10 * time.Second):
			t.Fatal("no new code within 10s")
			return signin.State{}
		}
	}
	first := next()
	r.waitHeld(1)
	r.flow.NewCode()
	second := next()
	if second.Code.ID == first.Code.ID {
		t.Fatalf("the same code again")
	}
	info, err := r.phone.SessionInfo(context.Background(), r.token, first.Code.ID)
	if err != nil || info.Status != api.StatusCancelled {
		t.Fatalf("the replaced code: %+v, %v; want cancelled", info, err)
	}
}
