package ui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// phone is a phone user of a real server.
type phone struct {
	t     *testing.T
	c     *client.Client
	token string
}

func newPhone(t *testing.T, srv *apptest.Server) *phone {
	t.Helper()
	srv.AddUser(t, "alice", "Alice Example", "correct horse battery")
	return &phone{t: t, c: srv.Client(), token: srv.Login(t, "alice", "correct horse battery")}
}

func (p *phone) do(action, id string) {
	p.t.Helper()
	var err error
	ctx := context.Background()
	switch action {
	case "scan":
		_, err = p.c.Scan(ctx, p.token, id)
	case "confirm":
		_, err = p.c.Confirm(ctx, p.token, id)
	case "cancel":
		_, err = p.c.Cancel(ctx, p.token, id)
	}
	if err != nil {
		p.t.Fatalf("phone %s: %v", action, err)
	}
}

func (p *phone) status(id string) api.Status {
	p.t.Helper()
	info, err := p.c.SessionInfo(context.Background(), p.token, id)
	if err != nil {
		p.t.Fatalf("session info: %v", err)
	}
	return info.Status
}

// TestWindowWithRealFlow drives the window with the real sign-in flow and
// a real server, one Step at a time on the test goroutine.
func TestWindowWithRealFlow(t *testing.T) {
	srv := apptest.Start(t)
	ph := newPhone(t, srv)
	v, _, _, w := newTestWindow(t)
	v.cfg.Now = time.Now
	f := signin.New(signin.Config{
		Server:   srv.URL,
		API:      signin.Client{Client: client.New(srv.URL)},
		Tokens:   &tokenstore.Memory{},
		Device:   api.CreateSessionRequest{DeviceName: "workstation", Platform: "Linux amd64"},
		OnChange: v.Render,
		Jitter:   func(d time.Duration) time.Duration { return d },
	})
	v.SetController(f)
	// Ending ctx lets go of the account stream the signed-in flow holds.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stepTo := func(p signin.Phase) {
		t.Helper()
		for range 10 {
			if f.State().Phase == p {
				return
			}
			f.Step(ctx)
		}
		t.Fatalf("never reached %s: %+v", p, f.State())
	}

	stepTo(signin.Waiting)
	st := f.State()
	shown := visibleTexts(w)
	if !shown[st.Code.UserCode] || !visible(w, v.qr) {
		t.Fatalf("user code %s or QR not shown: %q", st.Code.UserCode, keys(shown))
	}
	want, _ := qrModules(st.Code.VerifyURL)
	checkModules(t, v.qr.Generator(400, 400), want)

	ph.do("scan", st.Code.ID)
	f.Step(ctx)
	if !visibleTexts(w)["Scanned by Alice Example — confirm on your phone"] {
		t.Errorf("scanned text not shown: %q", keys(visibleTexts(w)))
	}

	ph.do("confirm", st.Code.ID)
	f.Step(ctx)
	f.Step(ctx) // /me
	if !visible(w, v.account) || !visibleTexts(w)["Alice Example"] || !visibleTexts(w)["@alice"] {
		t.Fatalf("signed-in view not shown: %q", keys(visibleTexts(w)))
	}

	test.Tap(v.signOut)
	stepTo(signin.Waiting)
	if !visible(w, v.qr) || !visibleTexts(w)["You have signed out."] {
		t.Errorf("after sign out: %q", keys(visibleTexts(w)))
	}
	second := f.State().Code

	ph.do("cancel", second.ID)
	f.Step(ctx)
	if !visibleTexts(w)["Sign-in cancelled"] || !visible(w, v.newCode) {
		t.Errorf("cancel not shown: %q", keys(visibleTexts(w)))
	}
	test.Tap(v.newCode)
	f.Step(ctx)
	if st := f.State(); st.Phase != signin.Waiting || st.Code.ID == second.ID {
		t.Errorf("new code: %+v", st)
	}

	srv.Stop(t)
	for range 3 {
		if f.Step(ctx) > 0 {
			break
		}
	}
	want1 := "Can't reach the server at " + srv.URL + ", retrying in 1s…"
	if !visibleTexts(w)[want1] || !visible(w, v.retry) {
		t.Errorf("%q not shown: %q", want1, keys(visibleTexts(w)))
	}
}

// queue runs the app's fyne.Do calls on the test goroutine.
type queue chan func()

func (q queue) Do(f func()) { q <- f }

// pump runs queued UI work until cond holds, for at most 15 seconds.
func (q queue) pump(t *testing.T, what string, cond func() bool) {
	t.Helper()
	q.pumpWithin(t, what, 15*time.Second, cond)
}

// pumpWithin runs queued UI work until cond holds, for at most d.
func (q queue) pumpWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for !cond() {
		select {
		case f := <-q:
			f()
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestAppSettingsSwitchServer(t *testing.T) {
	srvA, srvB := apptest.Start(t), apptest.Start(t)
	phA := newPhone(t, srvA)
	fa := test.NewTempApp(t)
	q := make(queue, 1000)
	a := New(fa, Config{Tokens: &tokenstore.Memory{}, Do: q.Do, Tick: time.Hour})
	if a.Server() != DefaultServer {
		t.Fatalf("server = %s, want the default %s", a.Server(), DefaultServer)
	}
	// The remembered server is used when no flag says otherwise.
	fa.Preferences().SetString(PrefServer, srvA.URL+"/")
	a = New(fa, Config{Tokens: &tokenstore.Memory{}, Do: q.Do, Tick: time.Hour})
	t.Cleanup(a.Stop)
	if a.Server() != srvA.URL {
		t.Fatalf("server = %s, want the remembered %s", a.Server(), srvA.URL)
	}
	a.Start()
	waitingOn := func(server string) bool {
		return a.view.state.Phase == signin.Waiting && a.view.state.Server == server
	}
	q.pump(t, "a code from server A", func() bool { return waitingOn(srvA.URL) })
	codeA := a.view.state.Code

	// Settings: an invalid URL is refused, a valid one switches.
	a.ShowSettings()
	test.Type(a.settingsEntry, "x")
	a.settingsEntry.SetText("ftp://nope")
	if a.settingsEntry.Validate() == nil {
		t.Errorf("ftp URL accepted")
	}
	a.settingsEntry.SetText(srvB.URL + "/")
	a.settingsDialog.Submit()
	if got := fa.Preferences().String(PrefServer); got != srvB.URL {
		t.Errorf("remembered server = %q, want %q", got, srvB.URL)
	}
	q.pump(t, "a code from server B", func() bool { return waitingOn(srvB.URL) })
	// The old server's code was withdrawn.
	deadline := time.Now().Add(10 * time.Second)
	for phA.status(codeA.ID) != api.StatusCancelled {
		if time.Now().After(deadline) {
			t.Fatalf("server A's code is %s, want cancelled", phA.status(codeA.ID))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(a.view.hint.Text, "/m") {
		t.Errorf("hint %q", a.view.hint.Text)
	}
}

func TestAppStopWithdrawsCode(t *testing.T) {
	srv := apptest.Start(t)
	ph := newPhone(t, srv)
	q := make(queue, 1000)
	var mu sync.Mutex
	var states []signin.State
	a := New(test.NewTempApp(t), Config{
		Server: srv.URL, Tokens: &tokenstore.Memory{}, Do: q.Do, Tick: 10 * time.Millisecond,
		OnState: func(s signin.State) {
			mu.Lock()
			states = append(states, s)
			mu.Unlock()
		},
	})
	a.Start()
	q.pump(t, "a code", func() bool { return a.view.state.Phase == signin.Waiting })
	id := a.view.state.Code.ID
	// The ticker runs through the queue too.
	a.view.countdown.SetText("")
	q.pump(t, "a tick", func() bool { return a.view.countdown.Text != "" })
	a.Stop()
	a.Stop() // twice is fine
	if got := ph.status(id); got != api.StatusCancelled {
		t.Errorf("code after Stop is %s, want cancelled", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) == 0 || states[len(states)-1].Phase != signin.Waiting {
		t.Errorf("OnState saw %d states", len(states))
	}
}

func TestNormalizeServer(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{" https://login.example.com/ ", "https://login.example.com", false},
		{"192.168.1.20:8080", "http://192.168.1.20:8080", false},
		{"http://host/qr/", "http://host/qr", false},
		{"", "", true},
		{"ftp://host", "", true},
		{"http://", "", true},
		{"http://h/?x=1", "", true},
		{"http://user@h", "", true},
		{"http://[::1", "", true},
	}
	for _, tt := range tests {
		got, err := NormalizeServer(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("NormalizeServer(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
