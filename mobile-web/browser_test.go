package mobileweb_test

// Browser end-to-end tests: a real server on 127.0.0.1 (apptest), a Go
// client as the desktop, and headless Chromium emulating a phone. They skip
// when Chromium is not installed (Debian package "chromium").

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

const (
	// mobileUA is a current Android Chrome user agent.
	mobileUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
	// browserTimeout bounds each browser test.
	browserTimeout = 2 * time.Minute
	alicePassword  = "correct horse battery"
)

// chromium returns the path of the browser, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	if p := os.Getenv("QRLOGIN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("Chromium is not installed (Debian: apt-get install chromium fonts-noto-cjk); skipping the browser test")
	return ""
}

// phone is a headless Chromium emulating a phone, with a record of every
// request its pages made.
type phone struct {
	t   *testing.T
	ctx context.Context

	mu        sync.Mutex
	requests  []string                       // URLs, in order
	responses map[string][]int64             // URL → statuses
	cookies   map[network.RequestID]string   // request → Cookie header sent
	ids       map[string][]network.RequestID // URL → requests
}

// newPhone starts a browser whose Accept-Language is lang, with extra
// command-line options.
func newPhone(t *testing.T, lang string, extra ...chromedp.ExecAllocatorOption) *phone {
	t.Helper()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel() })

	p := &phone{t: t, ctx: bctx, responses: map[string][]int64{}, cookies: map[network.RequestID]string{}, ids: map[string][]network.RequestID{}}
	if err := chromedp.Listen(bctx, p.record); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	p.do(
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
				UserAgent: mobileUA, AcceptLanguage: lang, Platform: "Linux armv8l",
				// What Chrome on that phone tells pages through navigator.userAgentData.
				UserAgentMetadata: &emulation.UserAgentMetadata{
					Brands: []*emulation.UserAgentBrandVersion{
						{Brand: "Google Chrome", Version: "131"}, {Brand: "Chromium", Version: "131"}, {Brand: "Not_A Brand", Version: "24"},
					},
					Platform: "Android", PlatformVersion: "14.0.0", Architecture: "", Model: "Pixel 8", Mobile: true,
				},
			})
			return err
		}),
	)
	return p
}

// record runs in the browser's event loop: it must only store.
func (p *phone) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, ev.Request.URL)
		p.ids[ev.Request.URL] = append(p.ids[ev.Request.URL], ev.RequestID)
	case *network.EventRequestWillBeSentExtraInfo:
		for k, v := range ev.Headers {
			if strings.EqualFold(k, "cookie") {
				p.cookies[ev.RequestID] = fmt.Sprint(v)
			}
		}
	case *network.EventResponseReceived:
		p.responses[ev.Response.URL] = append(p.responses[ev.Response.URL], ev.Response.Status)
	}
}

func (p *phone) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func (p *phone) text(id string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		p.t.Fatalf("read #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

func (p *phone) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// screen waits until the screen with that id (signin, code, confirm,
// result) is the one shown.
func (p *phone) screen(name string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.ID("s-" + name)))
}

// result waits for the result screen and checks its title.
func (p *phone) result(title string) {
	p.t.Helper()
	p.screen("result")
	if got := p.text("r-title"); got != title {
		p.t.Fatalf("result screen %q (%s), want %q", got, p.text("r-body"), title)
	}
}

func (p *phone) signIn(username, password string) {
	p.t.Helper()
	p.screen("signin")
	p.do(
		chromedp.SendKeys(chromedp.ID("u"), username),
		chromedp.SendKeys(chromedp.ID("p"), password),
		chromedp.Tap(chromedp.ID("b-signin")),
	)
}

// shot saves a screenshot as <name>.png in $QRLOGIN_SCREENSHOTS, or in a
// temporary folder of the test.
func (p *phone) shot(name string) {
	p.t.Helper()
	dir := os.Getenv("QRLOGIN_SCREENSHOTS")
	if dir == "" {
		dir = p.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	// Let the countdown's progress bar finish its transition.
	p.do(chromedp.Sleep(300 * time.Millisecond))
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// forwardedFor makes the browser send X-Forwarded-For: ip with every
// request, as a proxy in front of the server would for a phone at ip.
func (p *phone) forwardedFor(ip string) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"X-Forwarded-For": ip},
		})
		return err
	}))
}

// visible reports whether the element with that id is shown.
func (p *phone) visible(id string) bool {
	p.t.Helper()
	return p.eval(fmt.Sprintf(`String(document.getElementById(%q).checkVisibility())`, id)) == "true"
}

// checkSections checks that what the computer reported and what the server
// saw are shown apart, each under its heading.
func (p *phone) checkSections(reported, seen string) {
	p.t.Helper()
	for sec, want := range map[string]string{"h-reported": reported, "h-seen": seen} {
		if got := p.text(sec); got != want {
			p.t.Errorf("heading #%s = %q, want %q", sec, got, want)
		}
	}
	for _, q := range []string{"#sec-reported #d-name", "#sec-reported #d-platform", "#sec-reported #d-app",
		"#sec-seen #d-ip", "#sec-seen #d-net", "#sec-seen #d-asked"} {
		if p.eval(fmt.Sprintf(`String(document.querySelector(%q) !== null)`, q)) != "true" {
			p.t.Errorf("%s: not in its section", q)
		}
	}
}

// darkMode switches prefers-color-scheme.
func (p *phone) darkMode(on bool) {
	p.t.Helper()
	v := "light"
	if on {
		v = "dark"
	}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}},
		})
		return err
	}))
}

// onlyServer checks that every request the pages made went to server.
func (p *phone) onlyServer(server string) {
	p.t.Helper()
	su, err := url.Parse(server)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) < 5 {
		p.t.Fatalf("only %d requests recorded (%q); is the network listener working?", len(p.requests), p.requests)
	}
	for _, r := range p.requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != su.Scheme || u.Host != su.Host {
			p.t.Errorf("the page requested %s, which is not the server %s", r, server)
		}
	}
}

// desktop is the computer asking to sign in.
type desktop struct {
	t   *testing.T
	c   *client.Client
	cs  *api.CreateSessionResponse
	ctx context.Context
}

func newDesktop(t *testing.T, c *client.Client, req api.CreateSessionRequest) *desktop {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	t.Cleanup(cancel)
	cs, err := c.CreateSession(ctx, req)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return &desktop{t: t, c: c, cs: cs, ctx: ctx}
}

type pollResult struct {
	resp *api.SessionStatusResponse
	err  error
}

// longPoll starts a long-poll that returns when the status leaves after.
func (d *desktop) longPoll(after api.Status) <-chan pollResult {
	ch := make(chan pollResult, 1)
	go func() {
		r, err := d.c.SessionStatus(d.ctx, d.cs.ID, d.cs.PollToken, after, api.MaxWait*time.Second)
		ch <- pollResult{r, err}
	}()
	return ch
}

// wait reads a long-poll's answer and checks its status.
func (d *desktop) wait(ch <-chan pollResult, want api.Status) *api.SessionStatusResponse {
	d.t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			d.t.Fatalf("desktop long-poll: %v", r.err)
		}
		if r.resp.Status != want {
			d.t.Fatalf("desktop sees %q, want %q", r.resp.Status, want)
		}
		return r.resp
	case <-d.ctx.Done():
		d.t.Fatalf("desktop long-poll: %v", d.ctx.Err())
	}
	return nil
}

// status is the session's status now.
func (d *desktop) status() api.Status {
	d.t.Helper()
	r, err := d.c.SessionStatus(d.ctx, d.cs.ID, d.cs.PollToken, "", 0)
	if err != nil {
		d.t.Fatalf("desktop status: %v", err)
	}
	return r.Status
}

func startServer(t *testing.T, opts ...func(*app.Config)) *apptest.Server {
	t.Helper()
	srv := apptest.Start(t, opts...)
	srv.AddUser(t, "alice", "Alice Chen", alicePassword)
	return srv
}

var laptop = api.CreateSessionRequest{DeviceName: "Alice's ThinkPad", Platform: "Linux (amd64)", AppName: "qrlogin desktop"}

// TestPhoneConfirm is the main path: open the QR's URL, sign in, the
// desktop sees "scanned by Alice Chen", tap Confirm, the desktop gets
// tokens. Every request the page makes goes to the server.
func TestPhoneConfirm(t *testing.T) {
	p := newPhone(t, "en-US,en;q=0.9")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)
	scanned := d.longPoll(api.StatusPending)

	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.screen("signin")
	p.shot("phone-signin")
	p.axe("sign-in, real server")
	if lang := p.eval(`document.documentElement.lang`); lang != "en" {
		t.Errorf("page language %q, want en", lang)
	}
	p.signIn("alice", alicePassword)
	p.screen("confirm")

	got := d.wait(scanned, api.StatusScanned)
	if got.ScannedBy == nil || got.ScannedBy.DisplayName != "Alice Chen" {
		t.Errorf("desktop sees scanned_by %+v, want Alice Chen", got.ScannedBy)
	}
	for id, want := range map[string]string{
		"d-name":     laptop.DeviceName,
		"d-platform": laptop.Platform,
		"d-app":      laptop.AppName,
		"d-ip":       "127.0.0.1",
		"as":         "You are signing in as Alice Chen.",
	} {
		if got := p.text(id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	if !strings.HasPrefix(p.text("left"), "Expires in 1:") {
		t.Errorf("countdown %q, want about two minutes", p.text("left"))
	}
	// Phone and desktop both on loopback: the server cannot tell, and says
	// so without alarm.
	p.checkSections("Reported by the computer", "Seen by the server")
	if got := p.text("d-net"); got != "Can't check the network" {
		t.Errorf("network %q, want \"Can't check the network\"", got)
	}
	if p.visible("netwarn") {
		t.Error("different-network warning shown when the network cannot be checked")
	}
	if !p.visible("netinfo") || !strings.HasPrefix(p.text("netinfo"), "The server can't tell whether this computer is on your phone's network.") {
		t.Errorf("can't-check note visible %v: %q", p.visible("netinfo"), p.text("netinfo"))
	}
	p.shot("phone-confirm")
	p.axe("confirm, real server")
	p.darkMode(true)
	p.shot("phone-confirm-dark")
	p.darkMode(false)

	confirmed := d.longPoll(api.StatusScanned)
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	if want := "You are signed in on " + laptop.DeviceName + ". You can close this page."; p.text("r-body") != want {
		t.Errorf("done screen says %q, want %q", p.text("r-body"), want)
	}
	p.shot("phone-done")
	p.axe("done, real server")

	st := d.wait(confirmed, api.StatusConfirmed)
	if st.Tokens == nil || st.Tokens.AccessToken == "" || st.User == nil || st.User.Username != "alice" {
		t.Fatalf("desktop got %+v, want tokens for alice", st)
	}
	me, err := d.c.Me(d.ctx, st.Tokens.AccessToken)
	if err != nil || me.Username != "alice" {
		t.Errorf("desktop's access token: me = %+v, %v", me, err)
	}
	p.onlyServer(srv.URL)
}

// TestPhoneCancel: tapping Cancel ends the request; the desktop sees it.
func TestPhoneCancel(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)

	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	cancelled := d.longPoll(api.StatusScanned)
	p.do(chromedp.Tap(chromedp.ID("b-cancel")))
	p.result("Sign-in cancelled")
	p.shot("phone-cancelled")
	d.wait(cancelled, api.StatusCancelled)

	// Opening the link again: this phone cancelled it, the computer did not.
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.result("Sign-in cancelled")
	p.onlyServer(srv.URL)
}

// TestPhoneScannedElsewhere: another account scanned the code first; the
// phone says so rather than "already used".
func TestPhoneScannedElsewhere(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)
	srv.AddUser(t, "bob", "Bob Martin", "bob-password")
	bob := srv.Login(t, "bob", "bob-password")
	if _, err := d.c.Scan(d.ctx, bob, d.cs.ID); err != nil {
		t.Fatalf("bob scans: %v", err)
	}
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.result("Scanned by another account")
	if st := d.status(); st != api.StatusScanned {
		t.Fatalf("status %s after alice opened it, want still scanned (by bob)", st)
	}
}

// TestPhoneWithdrawn: the desktop gives up while the phone shows the
// request; the phone says so instead of offering Confirm.
func TestPhoneWithdrawn(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)

	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	if err := d.c.WithdrawSession(d.ctx, d.cs.ID, d.cs.PollToken); err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	p.result("Request withdrawn")
	p.shot("phone-withdrawn")

	// Opening the link again says the same.
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.result("Request withdrawn")
	p.onlyServer(srv.URL)
}

// TestPhoneExpired: an expired request gets its own screen, whether it
// expires while shown or was already expired when opened.
func TestPhoneExpired(t *testing.T) {
	t.Run("while shown", func(t *testing.T) {
		clk := testclock.Running()
		p := newPhone(t, "en")
		srv := startServer(t, func(c *app.Config) { c.Now = clk.Now })
		d := newDesktop(t, srv.Client(), laptop)
		p.do(chromedp.Navigate(d.cs.VerifyURL))
		p.signIn("alice", alicePassword)
		p.screen("confirm")
		clk.Advance(srv.Config.SessionTTL + time.Second)
		p.result("Request expired") // the page's check of the request notices
		p.shot("phone-expired")
		if st := d.status(); st != api.StatusExpired {
			t.Errorf("desktop sees %q, want expired", st)
		}
	})
	t.Run("countdown", func(t *testing.T) {
		p := newPhone(t, "en")
		srv := startServer(t, func(c *app.Config) { c.SessionTTL = 8 * time.Second })
		p.do(chromedp.Navigate(srv.URL + "/m"))
		p.signIn("alice", alicePassword)
		p.screen("code")
		d := newDesktop(t, srv.Client(), laptop)
		p.do(chromedp.Navigate(d.cs.VerifyURL))
		p.screen("confirm")
		p.result("Request expired") // the countdown reaches zero
	})
	t.Run("already expired", func(t *testing.T) {
		clk := testclock.Running()
		p := newPhone(t, "en")
		srv := startServer(t, func(c *app.Config) { c.Now = clk.Now })
		d := newDesktop(t, srv.Client(), laptop)
		clk.Advance(srv.Config.SessionTTL + time.Second)
		p.do(chromedp.Navigate(d.cs.VerifyURL))
		p.signIn("alice", alicePassword)
		p.result("Request expired")
	})
}

// TestPhoneUserCode: at /m the user types the desktop's code (lower case,
// no dash) and reaches the same confirm screen.
func TestPhoneUserCode(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)

	p.do(chromedp.Navigate(srv.URL + "/m"))
	p.signIn("alice", alicePassword)
	p.screen("code")

	tries := []struct{ code, err string }{
		{"abc", "The code has 8 letters, like BCDF-GHJK."},
		{"bcdf-ghjk-1", "The code has 8 letters, like BCDF-GHJK."},
		// Vowels are never in a code, so this one is never issued.
		{"aaaa eeee", "No sign-in request has this code. Check the code on your computer; it may have expired."},
	}
	for _, try := range tries {
		p.do(
			clearInput("c"),
			chromedp.SendKeys(chromedp.ID("c"), try.code),
			chromedp.Tap(chromedp.ID("b-code")),
			chromedp.WaitVisible(chromedp.ID("e-code")),
		)
		if got := p.text("e-code"); got != try.err {
			t.Errorf("code %q: error %q, want %q", try.code, got, try.err)
		}
	}
	p.do(clearInput("c"), chromedp.SendKeys(chromedp.ID("c"), "bcdf-gh"))
	p.shot("phone-code")

	typed := strings.ToLower(strings.ReplaceAll(d.cs.UserCode, "-", ""))
	scanned := d.longPoll(api.StatusPending)
	p.do(
		clearInput("c"),
		chromedp.SendKeys(chromedp.ID("c"), typed),
		chromedp.Tap(chromedp.ID("b-code")),
	)
	p.screen("confirm")
	d.wait(scanned, api.StatusScanned)
	if got := p.eval(`location.pathname`); got != "/m/"+d.cs.ID {
		t.Errorf("after the code the page is at %s, want /m/%s", got, d.cs.ID)
	}
	confirmed := d.longPoll(api.StatusScanned)
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	if st := d.wait(confirmed, api.StatusConfirmed); st.Tokens == nil {
		t.Error("desktop got no tokens")
	}
	p.onlyServer(srv.URL)
}

// TestPhoneDeviceNameIsText: a device name made of HTML is shown as text
// and runs nothing.
func TestPhoneDeviceNameIsText(t *testing.T) {
	const name = `<img src=x onerror="window.pwned=1;document.title='pwned'"><b>x</b>`
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), api.CreateSessionRequest{DeviceName: name, Platform: "<script>window.pwned=2</script>", AppName: "qrlogin"})

	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	if got := p.text("d-name"); got != name {
		t.Errorf("device name shown as %q, want the literal %q", got, name)
	}
	check := func(where string) {
		t.Helper()
		if n := p.eval(`String(document.querySelectorAll('main img, main b, main script').length)`); n != "0" {
			t.Errorf("%s: the device name became %s HTML element(s)", where, n)
		}
		if got := p.eval(`String(window.pwned) + ' ' + document.title`); strings.Contains(got, "pwned") || !strings.HasPrefix(got, "undefined ") {
			t.Errorf("%s: the device name ran code: %q", where, got)
		}
	}
	check("confirm screen")
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	if got := p.text("r-body"); !strings.Contains(got, name) {
		t.Errorf("done screen %q does not show the literal name", got)
	}
	check("done screen")
	p.onlyServer(srv.URL)
}

// TestPhoneCrossOriginRefused: a page on another origin makes the phone's
// browser POST confirm with the phone's cookie; the server refuses it and
// the request stays unconfirmed.
func TestPhoneCrossOriginRefused(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)
	confirmURL := srv.URL + "/api/v1/login-sessions/" + d.cs.ID + "/confirm"

	// The attacker's page: same host, other port, so the browser attaches
	// the SameSite=Strict cookie (same site) and only the origin differs.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>win a prize</title><script>
fetch(%q, {method: "POST", mode: "no-cors", credentials: "include"})
  .then(() => { document.title = "sent" }, (e) => { document.title = "failed " + e });
</script>`, confirmURL)
	}))
	t.Cleanup(evil.Close)

	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")

	p.do(chromedp.Navigate(evil.URL))
	p.do(chromedp.Poll[chromedp.Void](`document.title === "sent"`))
	p.mu.Lock()
	statuses := p.responses[confirmURL]
	var sentCookie bool
	for _, id := range p.ids[confirmURL] {
		sentCookie = sentCookie || strings.Contains(p.cookies[id], "qrlogin_phone=")
	}
	p.mu.Unlock()
	if len(statuses) != 1 || statuses[0] != http.StatusForbidden {
		t.Errorf("cross-origin confirm answered %v, want [403]", statuses)
	}
	if !sentCookie {
		// Then the 403 would prove nothing about the origin check.
		t.Error("the browser did not attach the phone cookie to the cross-origin request")
	}
	if st := d.status(); st != api.StatusScanned {
		t.Fatalf("after the cross-origin POST the desktop sees %q, want scanned", st)
	}

	// The same cookie on the page's own origin still works.
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.screen("confirm")
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	if st := d.status(); st != api.StatusConfirmed {
		t.Errorf("desktop sees %q, want confirmed", st)
	}
}

// TestPhoneChinese: a Chinese browser gets the page in Chinese, a desktop
// on another network is flagged, and the switch changes the language.
func TestPhoneChinese(t *testing.T) {
	p := newPhone(t, "zh-CN,zh;q=0.9,en;q=0.8")
	srv := startServer(t, func(c *app.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	// The desktop seems to come from another network: a documentation
	// address in X-Forwarded-For, believed from the trusted loopback proxy.
	far := &client.Client{BaseURL: srv.URL, HTTPClient: &http.Client{Transport: forwardedFor{"203.0.113.7"}}}
	d := newDesktop(t, far, api.CreateSessionRequest{DeviceName: "陈爱丽的 MacBook Air", Platform: "macOS 15", AppName: "qrlogin desktop"})

	p.forwardedFor("198.51.100.9") // the phone, far away through the same proxy
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.screen("signin")
	if got := p.text("b-signin"); got != "登录" {
		t.Errorf("sign-in button %q, want 登录", got)
	}
	p.shot("phone-signin-zh")
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	if got := p.text("d-ip"); got != "203.0.113.7" {
		t.Errorf("desktop IP %q, want 203.0.113.7", got)
	}
	p.do(chromedp.WaitVisible(chromedp.ID("netwarn")))
	for id, want := range map[string]string{
		"as":        "你将以 Alice Chen 的身份登录。",
		"b-confirm": "确认登录",
		"b-cancel":  "取消",
	} {
		if got := p.text(id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	if !strings.Contains(p.text("netwarn"), "不在同一网络") {
		t.Errorf("network warning %q is not in Chinese", p.text("netwarn"))
	}
	p.checkSections("电脑自报的信息", "服务器看到的信息")
	if got := p.text("d-net"); got != "与这部手机不在同一网络" {
		t.Errorf("network %q, want 与这部手机不在同一网络", got)
	}
	if p.visible("netinfo") {
		t.Error("the can't-check note is shown for a different network")
	}
	p.shot("phone-zh")

	p.do(chromedp.Tap(chromedp.ID("lang")))
	if got := p.text("b-confirm"); got != "Confirm sign-in" {
		t.Errorf("after the language switch the button says %q", got)
	}
	if got := p.eval(`document.documentElement.lang`); got != "en" {
		t.Errorf("after the language switch <html lang=%q>", got)
	}
	p.shot("phone-confirm-far")
	p.onlyServer(srv.URL)
}

// TestPhoneNetwork: behind a trusted proxy, a desktop near the phone is
// on the same network and one far away gets the strong warning.
func TestPhoneNetwork(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t, func(c *app.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	p.forwardedFor("203.0.113.20")
	near := &client.Client{BaseURL: srv.URL, HTTPClient: &http.Client{Transport: forwardedFor{"203.0.113.7"}}}
	far := &client.Client{BaseURL: srv.URL, HTTPClient: &http.Client{Transport: forwardedFor{"198.51.100.4"}}}

	d := newDesktop(t, near, laptop)
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	if got := p.text("d-net"); got != "Same network as this phone" {
		t.Errorf("near desktop: network %q", got)
	}
	if p.visible("netwarn") || p.visible("netinfo") {
		t.Errorf("near desktop: warning %v, can't-check note %v; want neither", p.visible("netwarn"), p.visible("netinfo"))
	}
	p.shot("phone-confirm-same")

	d = newDesktop(t, far, laptop)
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.screen("confirm")
	p.do(chromedp.WaitVisible(chromedp.ID("netwarn")))
	if got := p.text("d-net"); got != "Different network from this phone" {
		t.Errorf("far desktop: network %q", got)
	}
	if got := p.text("netwarn"); !strings.HasPrefix(got, "Different network") {
		t.Errorf("far desktop: warning %q", got)
	}
	if p.visible("netinfo") {
		t.Error("far desktop: the can't-check note is shown too")
	}
	if got := p.text("d-ip"); got != "198.51.100.4" {
		t.Errorf("far desktop: IP %q", got)
	}
	p.onlyServer(srv.URL)
}

// TestPhoneOverHTTPS: over HTTPS the phone's cookie is
// __Host-qrlogin_phone; the page, which never reads it, works the same and
// every answer carries HSTS.
func TestPhoneOverHTTPS(t *testing.T) {
	p := newPhone(t, "en", chromedp.Flag("ignore-certificate-errors", true))
	certFile, keyFile, pool := apptest.SelfSigned(t)
	srv := startServer(t, func(c *app.Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("server URL %s, want https", srv.URL)
	}
	desk := &client.Client{BaseURL: srv.URL, HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	d := newDesktop(t, desk, laptop)

	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	if st := d.status(); st != api.StatusConfirmed {
		t.Fatalf("desktop sees %q, want confirmed", st)
	}
	if got := p.eval(`document.cookie`); got != "" {
		t.Errorf("page script can read cookies %q", got)
	}
	confirmURL := srv.URL + "/api/v1/login-sessions/" + d.cs.ID + "/confirm"
	p.mu.Lock()
	var sent string
	for _, id := range p.ids[confirmURL] {
		sent += p.cookies[id]
	}
	p.mu.Unlock()
	if !strings.Contains(sent, "__Host-qrlogin_phone=") {
		t.Errorf("confirm sent cookies %q, want __Host-qrlogin_phone", sent)
	}
	resp, err := desk.HTTPClient.Get(srv.URL + "/m")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("phone page Strict-Transport-Security %q", got)
	}
	p.onlyServer(srv.URL)
}

// TestPhoneSignInAndOut: a wrong password is refused on the form, and
// "Not you? Sign out" ends the phone's session.
func TestPhoneSignInAndOut(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)

	p.do(chromedp.Navigate(srv.URL + "/m"))
	p.signIn("alice", "wrong password")
	p.do(chromedp.WaitVisible(chromedp.ID("e-signin")))
	if got := p.text("e-signin"); got != "Wrong username or password." {
		t.Errorf("wrong password: %q", got)
	}
	p.do(chromedp.SendKeys(chromedp.ID("p"), alicePassword), chromedp.Tap(chromedp.ID("b-signin")))
	p.screen("code")
	if got := p.text("who-name"); got != "Signed in as Alice Chen." {
		t.Errorf("footer %q", got)
	}

	// Still signed in after a reload: the cookie persists.
	p.do(chromedp.Reload())
	p.screen("code")

	p.do(chromedp.Tap(chromedp.ID("signout")))
	p.screen("signin")
	p.do(chromedp.Reload())
	p.screen("signin")
	if got := p.eval(`document.cookie`); got != "" {
		t.Errorf("page script can read cookies %q; the phone cookie must be HttpOnly", got)
	}
	p.onlyServer(srv.URL)
}

// TestPhoneUnknownRequest: a link to no request says so and offers the
// code form.
func TestPhoneUnknownRequest(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	p.do(chromedp.Navigate(srv.URL + "/m/AAAAAAAAAAAAAAAAAAAAAA"))
	p.signIn("alice", alicePassword)
	p.result("Request not found")
	p.do(chromedp.Tap(chromedp.ID("r-action")))
	p.screen("code")
	if got := p.eval(`location.pathname`); got != "/m" {
		t.Errorf("page at %s, want /m", got)
	}
	p.onlyServer(srv.URL)
}

// clearInput empties an input field.
func clearInput(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, id))
}

// forwardedFor makes requests seem to come from ip through a proxy.
type forwardedFor struct{ ip string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return http.DefaultTransport.RoundTrip(r)
}
