package ui

import (
	"image"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/shared/api"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

const testServer = "http://127.0.0.1:8080"

// fakeController records button presses.
type fakeController struct{ newCode, signOut, retry int }

func (c *fakeController) NewCode() { c.newCode++ }
func (c *fakeController) SignOut() { c.signOut++ }
func (c *fakeController) Retry()   { c.retry++ }

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

func newTestWindow(t *testing.T) (*Window, *fakeController, *fixedClock, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	w := test.NewTempWindow(t, nil)
	clk := &fixedClock{t0}
	v := NewWindow(w, WindowConfig{Now: clk.Now, Location: time.UTC})
	ctl := &fakeController{}
	v.SetController(ctl)
	w.Resize(fyne.NewSize(460, 700))
	return v, ctl, clk, w
}

func code(id string) *signin.Code {
	return &signin.Code{
		ID:        id,
		VerifyURL: "http://192.168.1.20:8080/m/" + id,
		UserCode:  "BCDF-GHJK",
		ExpiresAt: t0.Add(2 * time.Minute),
	}
}

var account = &signin.Account{
	User:            api.User{ID: "u-7f3a", Username: "alice", DisplayName: "Alice Example"},
	MemberSince:     time.Date(2024, 5, 17, 8, 0, 0, 0, time.UTC),
	SignedInAt:      t0,
	Device:          "workstation (Linux amd64)",
	AccessExpiresAt: t0.Add(15 * time.Minute),
}

// visible reports whether o is drawn: it and every container around it
// are shown.
func visible(w fyne.Window, o fyne.CanvasObject) bool {
	shown := false
	walkVisible(w.Canvas().Content(), func(obj fyne.CanvasObject) {
		shown = shown || obj == o
	})
	return shown
}

// walkVisible calls f for o and everything drawn inside it, skipping
// hidden objects and their contents.
func walkVisible(o fyne.CanvasObject, f func(fyne.CanvasObject)) {
	if !o.Visible() {
		return
	}
	f(o)
	switch x := o.(type) {
	case *fyne.Container:
		for _, c := range x.Objects {
			walkVisible(c, f)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(x).Objects() {
			walkVisible(c, f)
		}
	}
}

func TestStatesShowTheirText(t *testing.T) {
	tests := []struct {
		name  string
		state signin.State
		// texts that must be visible on the window (label or canvas text)
		want []string
		// buttons that must be visible
		newCode, retry, account bool
		qr                      bool
	}{
		{
			name:  "starting",
			state: signin.State{Phase: signin.Starting, Server: testServer},
			want:  []string{"Getting a code…", "Connecting to " + testServer + "…"},
		},
		{
			name:  "waiting",
			state: signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s1")},
			want: []string{"Scan this code with your phone's camera", "Can't scan? Open http://192.168.1.20:8080/m and type",
				"BCDF-GHJK", "Code expires in 2:00", "Waiting for your phone…"},
			qr: true,
		},
		{
			name:  "scanned",
			state: signin.State{Phase: signin.Scanned, Server: testServer, Code: code("s1"), ScannedBy: "Alice Example"},
			want:  []string{"Almost there", "Scanned by Alice Example — confirm on your phone", "Code expires in 2:00"},
			qr:    true,
		},
		{
			name:    "cancelled",
			state:   signin.State{Phase: signin.Cancelled, Server: testServer},
			want:    []string{"Sign-in cancelled", "It was cancelled on the phone."},
			newCode: true,
		},
		{
			name:    "expired",
			state:   signin.State{Phase: signin.Expired, Server: testServer},
			want:    []string{"Code expired", "No one scanned it in time."},
			newCode: true,
		},
		{
			name: "unreachable",
			state: signin.State{Phase: signin.Starting, Server: testServer,
				Problem: &signin.Problem{Text: "Can't reach the server at " + testServer, RetryAt: t0.Add(4 * time.Second)}},
			want:  []string{"No connection", "Can't reach the server at " + testServer + ", retrying in 4s…"},
			retry: true,
		},
		{
			name: "unreachable while waiting",
			state: signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s1"),
				Problem: &signin.Problem{Text: "Can't reach the server at " + testServer, RetryAt: t0.Add(500 * time.Millisecond)}},
			want:  []string{"BCDF-GHJK", "Can't reach the server at " + testServer + ", retrying in 1s…"},
			retry: true,
			qr:    true,
		},
		{
			name: "retry due",
			state: signin.State{Phase: signin.Starting, Server: testServer,
				Problem: &signin.Problem{Text: "The server at " + testServer + " is busy", RetryAt: t0}},
			want:  []string{"The server at " + testServer + " is busy, retrying…"},
			retry: true,
		},
		{
			name:  "notice",
			state: signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s1"), Notice: "You have signed out."},
			want:  []string{"You have signed out.", "BCDF-GHJK"},
			qr:    true,
		},
		{
			name:  "signed in",
			state: signin.State{Phase: signin.SignedIn, Server: testServer, Account: account},
			want: []string{"AE", "Alice Example", "@alice", "u-7f3a", "17 May 2024", "Sat 1 Mar 2025, 10:00",
				"workstation (Linux amd64)", "Valid until 10:15:00 · renews automatically", "Sign out"},
			account: true,
		},
		{
			name: "signed in, refresh failing",
			state: signin.State{Phase: signin.SignedIn, Server: testServer, Account: account,
				Problem: &signin.Problem{Text: "Can't reach the server at " + testServer, RetryAt: t0.Add(8 * time.Second)}},
			want:    []string{"Alice Example", "Can't reach the server at " + testServer + ", retrying in 8s…"},
			account: true,
			retry:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, _, w := newTestWindow(t)
			v.Render(tt.state)
			shown := visibleTexts(w)
			for _, s := range tt.want {
				if !shown[s] {
					t.Errorf("%q not shown; visible: %q", s, keys(shown))
				}
			}
			if got := visible(w, v.newCode); got != tt.newCode {
				t.Errorf("new code button visible = %v, want %v", got, tt.newCode)
			}
			if got := visible(w, v.retry) || visible(w, v.accountRetry); got != tt.retry {
				t.Errorf("retry button visible = %v, want %v", got, tt.retry)
			}
			if got := visible(w, v.account); got != tt.account {
				t.Errorf("account view visible = %v, want %v", got, tt.account)
			}
			if got := visible(w, v.login); got == tt.account {
				t.Errorf("login view visible = %v with account view %v", got, tt.account)
			}
			if got := visible(w, v.qr); got != tt.qr {
				t.Errorf("QR visible = %v, want %v", got, tt.qr)
			}
			if tt.account && !strings.Contains(w.Title(), "Alice Example") {
				t.Errorf("title %q does not name the user", w.Title())
			}
		})
	}
}

// visibleTexts collects the text of every visible label, button and
// canvas text.
func visibleTexts(w fyne.Window) map[string]bool {
	out := map[string]bool{}
	walkVisible(w.Canvas().Content(), func(o fyne.CanvasObject) {
		switch x := o.(type) {
		case *widget.Label:
			out[x.Text] = true
		case *widget.Button:
			out[x.Text] = true
		case *canvas.Text:
			out[x.Text] = true
		}
	})
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

func TestQRDrawsVerifyURL(t *testing.T) {
	v, _, _, _ := newTestWindow(t)
	c := code("s1")
	v.Render(signin.State{Phase: signin.Waiting, Server: testServer, Code: c})
	want, err := qrModules(c.VerifyURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{len(want), 256, 301, 1000} {
		img := v.qr.Generator(size, size)
		checkModules(t, img, want)
	}
	// A new code redraws; scanning dims the same code.
	c2 := code("s2")
	v.Render(signin.State{Phase: signin.Waiting, Server: testServer, Code: c2})
	want2, _ := qrModules(c2.VerifyURL)
	checkModules(t, v.qr.Generator(300, 300), want2)
	v.Render(signin.State{Phase: signin.Scanned, Server: testServer, Code: c2, ScannedBy: "Alice"})
	img := v.qr.Generator(300, 300)
	px := len(want2)
	step := 300 / px
	for y := range want2 {
		for x := range want2[y] {
			if want2[y][x] {
				if c := img.At(x*step+step/2, y*step+step/2); c != qrDimmed {
					t.Fatalf("scanned QR module (%d,%d) = %v, want dimmed", x, y, c)
				}
				return
			}
		}
	}
}

// checkModules samples the centre of every module of img and compares it
// with modules: the code is crisp (same-size square modules) and correct.
func checkModules(t *testing.T, img image.Image, modules [][]bool) {
	t.Helper()
	b := img.Bounds()
	n := len(modules)
	px := min(b.Dx(), b.Dy()) / n
	ox, oy := (b.Dx()-px*n)/2, (b.Dy()-px*n)/2
	for my, row := range modules {
		for mx, on := range row {
			// Every pixel of the module has its colour.
			for _, d := range [][2]int{{0, 0}, {px - 1, 0}, {0, px - 1}, {px - 1, px - 1}, {px / 2, px / 2}} {
				r, g, bl, _ := img.At(ox+mx*px+d[0], oy+my*px+d[1]).RGBA()
				dark := r < 0x8000 && g < 0x8000 && bl < 0x8000
				if dark != on {
					t.Fatalf("%v: module (%d,%d) pixel +%v dark=%v, want %v", b, mx, my, d, dark, on)
				}
			}
		}
	}
}

func TestTinyQRDoesNotPanic(t *testing.T) {
	m, _ := qrModules("http://example.test/m/x")
	for _, s := range [][2]int{{0, 0}, {1, 1}, {10, 7}} {
		drawQR(m, s[0], s[1], qrDark)
	}
}

func TestCountdowns(t *testing.T) {
	v, _, clk, w := newTestWindow(t)
	v.Render(signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s1")})
	tests := []struct {
		at   time.Duration
		want string
	}{
		{0, "Code expires in 2:00"},
		{500 * time.Millisecond, "Code expires in 2:00"},
		{61 * time.Second, "Code expires in 0:59"},
		{119*time.Second + 1, "Code expires in 0:01"},
		{2 * time.Minute, "Code expired — getting a new one…"},
	}
	for _, tt := range tests {
		clk.t = t0.Add(tt.at)
		v.Tick()
		if !visibleTexts(w)[tt.want] {
			t.Errorf("at +%v: %q not shown (countdown says %q)", tt.at, tt.want, v.countdown.Text)
		}
	}
}

func TestButtons(t *testing.T) {
	v, ctl, _, _ := newTestWindow(t)
	v.Render(signin.State{Phase: signin.Cancelled, Server: testServer})
	test.Tap(v.newCode)
	v.Render(signin.State{Phase: signin.Starting, Server: testServer, Problem: &signin.Problem{Text: "x", RetryAt: t0}})
	test.Tap(v.retry)
	v.Render(signin.State{Phase: signin.SignedIn, Server: testServer, Account: account})
	test.Tap(v.signOut)
	test.Tap(v.signOut) // disabled until the flow answers
	if *ctl != (fakeController{newCode: 1, signOut: 1, retry: 1}) {
		t.Errorf("controller saw %+v", *ctl)
	}
	// Back at a code, the button works again next time.
	v.Render(signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s3")})
	if v.signOut.Disabled() {
		t.Errorf("sign out still disabled after signing out")
	}
}

func TestStorageNotice(t *testing.T) {
	v, _, _, w := newTestWindow(t)
	if visible(w, v.storageBanner) {
		t.Fatal("storage notice shown before any fallback")
	}
	v.ShowStorageNotice("/home/u/.config/fyne/app/signin-tokens.json")
	if !visible(w, v.storageBanner) || !strings.Contains(v.storageNotice.Text, "signin-tokens.json") {
		t.Errorf("storage notice = %q, visible %v", v.storageNotice.Text, visible(w, v.storageBanner))
	}
	test.Tap(v.dismissNotice)
	if visible(w, v.storageBanner) {
		t.Errorf("storage notice still shown after dismissing it")
	}
	v.ShowStorageNotice("/home/u/.config/fyne/app/signin-tokens.json")
	v.HideStorageNotice() // the keychain answered after all
	if visible(w, v.storageBanner) {
		t.Errorf("storage notice still shown after the sign-in moved to the keychain")
	}
}

func TestLayouts(t *testing.T) {
	tests := []struct {
		golden string
		state  signin.State
	}{
		{"waiting.xml", signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s1")}},
		{"scanned.xml", signin.State{Phase: signin.Scanned, Server: testServer, Code: code("s1"), ScannedBy: "Alice Example"}},
		{"cancelled.xml", signin.State{Phase: signin.Cancelled, Server: testServer}},
		{"signed-out.xml", signin.State{Phase: signin.Waiting, Server: testServer, Code: code("s1"),
			Notice: "You were signed out from your phone."}},
		{"unreachable.xml", signin.State{Phase: signin.Starting, Server: testServer,
			Problem: &signin.Problem{Text: "Can't reach the server at " + testServer, RetryAt: t0.Add(2 * time.Second)}}},
		{"signed-in.xml", signin.State{Phase: signin.SignedIn, Server: testServer, Account: account}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			v, _, _, w := newTestWindow(t)
			v.Render(tt.state)
			test.AssertRendersToMarkup(t, tt.golden, w.Canvas())
		})
	}
}

func TestFormatClock(t *testing.T) {
	v, _, clk, _ := newTestWindow(t)
	clk.t = time.Date(2025, 3, 1, 23, 50, 0, 0, time.UTC)
	if got := v.formatClock(clk.t.Add(5 * time.Minute)); got != "23:55:00" {
		t.Errorf("same day: %q", got)
	}
	if got := v.formatClock(clk.t.Add(15 * time.Minute)); got != "Sun 00:05" {
		t.Errorf("after midnight: %q", got)
	}
	if got := v.formatTime(time.Time{}); got != "—" {
		t.Errorf("zero time: %q", got)
	}
}

func TestHelpers(t *testing.T) {
	tests := []struct{ verify, server, want string }{
		{"http://192.168.1.20:8080/m/abc", testServer, "http://192.168.1.20:8080/m"},
		{"https://login.example.com/base/m/abc?x=1", testServer, "https://login.example.com/base/m"},
		{"not a url", "http://s:1", "http://s:1/m"},
	}
	for _, tt := range tests {
		if got := phoneURL(tt.verify, tt.server); got != tt.want {
			t.Errorf("phoneURL(%q) = %q, want %q", tt.verify, got, tt.want)
		}
	}
	names := []struct{ display, username, want string }{
		{"Alice Example", "alice", "AE"},
		{"bob", "bob", "B"},
		{"", "carol", "C"},
		{"  Dana   Scully  ", "dana", "DS"},
		{"émile zola durand", "emile", "ÉZ"},
		{"李 小龙", "li", "李小"},
	}
	for _, tt := range names {
		if got := initials(tt.display, tt.username); got != tt.want {
			t.Errorf("initials(%q, %q) = %q, want %q", tt.display, tt.username, got, tt.want)
		}
	}
}

// TestUnencryptedMarker: the header says "Not encrypted" when the server
// is reached over http:// off this machine, signed in or not.
func TestUnencryptedMarker(t *testing.T) {
	v, _, _, w := newTestWindow(t)
	for _, tt := range []struct {
		server string
		shown  bool
	}{
		{"http://192.168.1.20:8080", true},
		{"http://login.example.com", true},
		{"http://127.0.0.1:8080", false},
		{"http://[::1]:8080", false},
		{"http://localhost:8080", false},
		{"https://login.example.com", false},
		{"https://192.168.1.20:8443", false},
	} {
		for _, st := range []signin.State{
			{Phase: signin.Waiting, Server: tt.server, Code: code("s1")},
			{Phase: signin.SignedIn, Server: tt.server, Account: account},
		} {
			v.Render(st)
			if got := visible(w, v.unencrypted); got != tt.shown {
				t.Errorf("%s, %v: marker shown %v, want %v", tt.server, st.Phase, got, tt.shown)
			}
		}
	}
	v.Render(signin.State{Phase: signin.Waiting, Server: "http://192.168.1.20:8080", Code: code("s1")})
	found := false
	walkVisible(w.Canvas().Content(), func(o fyne.CanvasObject) {
		if l, ok := o.(*widget.Label); ok && l.Text == "Not encrypted" {
			found = true
		}
	})
	if !found {
		t.Error(`no visible "Not encrypted" label`)
	}
}
