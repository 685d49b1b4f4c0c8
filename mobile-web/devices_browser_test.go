package mobileweb_test

// The "Signed-in devices" screen. The helpers below read and drive only
// the page, so they work against any server: the tests using pageDouble
// (double_test.go) put the list in every state, and
// TestPhoneDevicesRealServer runs the same checks against qrlogin-server.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/qrlogin/qrlogin/shared/api"
)

// card is what the devices screen shows of one sign-in.
type card struct {
	Name  string   `json:"name"`
	Sub   string   `json:"sub"` // kind · platform · app
	Icon  string   `json:"icon"`
	Tags  []string `json:"tags"`  // visible markers: "This phone", "New"
	Facts []string `json:"facts"` // "Last active: 5 minutes ago", …
}

func (c card) fact(name string) string {
	for _, f := range c.Facts {
		if v, ok := strings.CutPrefix(f, name+": "); ok {
			return v
		}
	}
	return ""
}

// cards waits for the devices screen's list and reads it.
func (p *phone) cards() []card {
	p.t.Helper()
	p.screen("devices")
	p.do(chromedp.Poll[chromedp.Void](`document.getElementById('l-devices').hidden`))
	js := `JSON.stringify([...document.querySelectorAll('#devices > li.dev')].map((li) => ({
  name: li.querySelector('h2').textContent,
  sub: li.querySelector('.dev-title p').textContent,
  icon: li.querySelector('use').getAttribute('href'),
  tags: [...li.querySelectorAll('.tag')].filter((e) => e.checkVisibility()).map((e) => e.textContent),
  facts: [...li.querySelectorAll('dt')].map((dt) => dt.textContent + ': ' + dt.nextElementSibling.textContent),
})))`
	var cs []card
	if err := json.Unmarshal([]byte(p.eval(js)), &cs); err != nil {
		p.t.Fatalf("read the device list: %v", err)
	}
	return cs
}

// cardNamed is the position of the card with that name, or fails.
// signedInPhone is a new phone in lang on the double's page, signed in as
// alice, at the code screen.
func signedInPhone(t *testing.T, d *pageDouble, lang string) *phone {
	p := newPhone(t, lang)
	p.do(chromedp.Navigate(d.URL + "/m"))
	p.signIn("alice", alicePassword)
	p.screen("code")
	return p
}

func (p *phone) cardNamed(name string) int {
	p.t.Helper()
	cs := p.cards()
	i := slices.IndexFunc(cs, func(c card) bool { return c.Name == name })
	if i < 0 {
		p.t.Fatalf("no device %q in the list %+v", name, cs)
	}
	return i
}

// askSignOut taps "Sign out" on the device named name and waits for the
// confirm step.
func (p *phone) askSignOut(name string) {
	p.t.Helper()
	i := p.cardNamed(name)
	p.do(chromedp.Tap(chromedp.CSS(fmt.Sprintf("#devices > li:nth-child(%d) button", i+1))),
		chromedp.WaitVisible(chromedp.ID("dlg")))
}

// dialogOpen reports whether the confirm step is shown.
func (p *phone) dialogOpen() bool {
	p.t.Helper()
	return p.eval(`String(document.getElementById('dlg').open)`) == "true"
}

// deviceNotice waits for the devices screen's message and returns it.
func (p *phone) deviceNotice() string {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.ID("m-devices")))
	return p.text("m-devices")
}

// seedDevices gives alice, besides the phone's own sign-in, a laptop signed
// in two hours ago and used five minutes ago from another address, an app
// signed in three days ago, and an old phone.
func seedDevices(d *pageDouble) (laptop, app, old string) {
	old = d.addDevice(api.SignedInDevice{Kind: api.DevicePhone, Name: "Pixel 6", Platform: "Android 13", AppName: "Chrome",
		IP: "198.51.100.23", LastIP: "198.51.100.23"}, 40*24*time.Hour, 9*24*time.Hour)
	app = d.addDevice(api.SignedInDevice{Kind: api.DeviceApp, AppName: "Notes 笔记",
		IP: "203.0.113.50", LastIP: "203.0.113.50"}, 3*24*time.Hour, 2*time.Hour)
	laptop = d.addDevice(api.SignedInDevice{Kind: api.DeviceDesktop, Name: "Alice's ThinkPad", Platform: "Linux (amd64)", AppName: "qrlogin desktop",
		IP: "203.0.113.7", LastIP: "198.51.100.4"}, 2*time.Hour, 5*time.Minute)
	// Newest first, as the server sends them.
	d.mu.Lock()
	slices.Reverse(d.devices)
	d.mu.Unlock()
	return laptop, app, old
}

// TestPhoneDevices (against pageDouble): after signing in, the footer
// leads to the list; each sign-in is shown with its kind, details, markers
// and times; "Sign out" asks first, Cancel keeps the device, confirming
// removes it; an error keeps the dialog and the device; a device already
// gone is said so and the list refreshed; Back returns.
func TestPhoneDevices(t *testing.T) {
	d := newPageDouble(t)
	laptop, _, _ := seedDevices(d)
	p := signedInPhone(t, d, "en-US,en;q=0.9")

	// The sign-in described this phone for the list.
	d.mu.Lock()
	body := d.signIns[0]
	d.mu.Unlock()
	if body.DeviceName != "Pixel 8" || body.Platform != "Android 14" || body.AppName != "Google Chrome" {
		t.Errorf("sign-in body's device = %q, %q, %q, want Pixel 8, Android 14, Google Chrome", body.DeviceName, body.Platform, body.AppName)
	}

	p.do(chromedp.Tap(chromedp.ID("to-devices")))
	cs := p.cards()
	if len(cs) != 4 {
		t.Fatalf("%d devices shown, want 4: %+v", len(cs), cs)
	}
	if got := p.eval(`location.hash`); got != "#devices" {
		t.Errorf("location.hash %q, want #devices", got)
	}
	self, lap, app, old := cs[0], cs[1], cs[2], cs[3]
	if !slices.Equal(self.Tags, []string{"This phone", "New"}) || self.Icon != "#i-phone" {
		t.Errorf("this phone: %+v, want marked This phone and New", self)
	}
	if self.fact("Last active") != "just now" {
		t.Errorf("this phone last active %q, want just now", self.fact("Last active"))
	}
	for _, tt := range []struct {
		got              card
		name, sub, icon  string
		tags             []string
		lastActive, ipAt string
	}{
		{lap, "Alice's ThinkPad", "Computer · Linux (amd64) · qrlogin desktop", "#i-desktop", []string{"New"}, "5 minutes ago", "198.51.100.4"},
		{app, "Notes 笔记", "App", "#i-app", nil, "2 hours ago", "203.0.113.50"},
		{old, "Pixel 6", "Phone · Android 13 · Chrome", "#i-phone", nil, "9 days ago", "198.51.100.23"},
	} {
		c := tt.got
		if c.Name != tt.name || c.Sub != tt.sub || c.Icon != tt.icon || !slices.Equal(c.Tags, tt.tags) {
			t.Errorf("card %+v, want %q / %q / %s / tags %q", c, tt.name, tt.sub, tt.icon, tt.tags)
		}
		if c.fact("Last active") != tt.lastActive || c.fact("IP address") != tt.ipAt || c.fact("Signed in") == "" {
			t.Errorf("%s: facts %q, want last active %q at %s and a sign-in date", c.Name, c.Facts, tt.lastActive, tt.ipAt)
		}
	}
	if lap.fact("Sign-in IP") != "203.0.113.7" {
		t.Errorf("laptop signed in from %q, want 203.0.113.7 (it moved since)", lap.fact("Sign-in IP"))
	}
	if !strings.Contains(old.fact("Signed in"), fmt.Sprint(time.Now().Add(-40*24*time.Hour).Year())) {
		t.Errorf("old phone signed in %q, want an absolute date", old.fact("Signed in"))
	}
	p.shot("phone-devices")
	p.darkMode(true)
	p.shot("phone-devices-dark")
	p.darkMode(false)
	p.eval(`window.scrollTo(0, document.body.scrollHeight), ''`)
	p.shot("phone-devices-end")
	p.eval(`window.scrollTo(0, 0), ''`)

	// Cancel keeps the device.
	p.askSignOut("Alice's ThinkPad")
	if got := p.text("dlg-title"); got != "Sign out Alice's ThinkPad?" {
		t.Errorf("dialog title %q", got)
	}
	if got := p.eval(`document.activeElement.id`); got != "dlg-cancel" {
		t.Errorf("the dialog focuses #%s, want Cancel", got)
	}
	p.shot("phone-devices-confirm")
	p.do(chromedp.Tap(chromedp.ID("dlg-cancel")))
	if p.dialogOpen() || d.called("DELETE /api/v1/devices/"+laptop) != 0 || len(p.cards()) != 4 {
		t.Fatal("Cancel signed the laptop out or left the dialog open")
	}

	// A failure keeps the dialog, says why, and signs nothing out.
	d.failNext("DELETE /api/v1/devices/"+laptop, http.StatusServiceUnavailable)
	p.askSignOut("Alice's ThinkPad")
	p.do(chromedp.Tap(chromedp.ID("dlg-ok")), chromedp.WaitVisible(chromedp.ID("e-dlg")))
	if got := p.text("e-dlg"); got != "The server is busy. Please try again in a moment." || !p.dialogOpen() {
		t.Errorf("after a 503 the dialog (open %v) says %q", p.dialogOpen(), got)
	}
	if !slices.Contains(d.deviceIDs(), laptop) {
		t.Fatal("the laptop is gone after a failed sign-out")
	}
	// Trying again works.
	p.do(chromedp.Tap(chromedp.ID("dlg-ok")))
	if got := p.deviceNotice(); got != "Alice's ThinkPad was signed out." {
		t.Errorf("notice %q", got)
	}
	if p.dialogOpen() || slices.Contains(d.deviceIDs(), laptop) {
		t.Error("the laptop is still signed in, or the dialog still open")
	}
	if cs := p.cards(); len(cs) != 3 || slices.ContainsFunc(cs, func(c card) bool { return c.Name == "Alice's ThinkPad" }) {
		t.Errorf("list after signing the laptop out: %+v", cs)
	}

	// Signed out elsewhere meanwhile: 404, said so, and the list refreshed.
	cs = p.cards()
	d.endDevice(d.deviceIDs()[2]) // the old phone
	p.askSignOut("Pixel 6")
	p.do(chromedp.Tap(chromedp.ID("dlg-ok")))
	p.do(chromedp.Poll[chromedp.Void](`document.getElementById('m-devices').textContent.startsWith('Pixel 6 was already')`))
	if got := p.text("m-devices"); got != "Pixel 6 was already signed out. The list is up to date." {
		t.Errorf("notice %q", got)
	}
	if got := p.cards(); len(got) != len(cs)-1 {
		t.Errorf("list not refreshed after the 404: %+v", got)
	}

	// Back returns to the code screen, and the browser's Back works too.
	p.do(chromedp.Tap(chromedp.ID("b-back")))
	p.screen("code")
	if got := p.eval(`location.pathname + location.hash`); got != "/m" {
		t.Errorf("after Back the page is at %s, want /m", got)
	}
	p.do(chromedp.Tap(chromedp.ID("to-devices")))
	p.cards()
	p.do(chromedp.NavigateBack())
	p.screen("code")
	p.onlyServer(d.URL)
}

// TestPhoneDevicesLoadError (pageDouble): the list cannot be loaded; the
// screen says why and offers to try again, which works.
func TestPhoneDevicesLoadError(t *testing.T) {
	d := newPageDouble(t)
	seedDevices(d)
	p := signedInPhone(t, d, "en")
	d.failNext("GET /api/v1/devices", http.StatusTooManyRequests)
	p.do(chromedp.Tap(chromedp.ID("to-devices")), chromedp.WaitVisible(chromedp.ID("e-devices")))
	if got := p.text("e-devices-text"); got != "Too many attempts. Please wait 7 seconds and try again." {
		t.Errorf("error %q", got)
	}
	p.do(chromedp.Tap(chromedp.ID("b-reload")), chromedp.WaitNotVisible(chromedp.ID("e-devices")))
	if n := len(p.cards()); n != 4 {
		t.Errorf("%d devices after trying again, want 4", n)
	}
	// A refresh that cannot reach the server keeps the list shown.
	d.failNext("GET /api/v1/devices", 0)
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('b-reload').click()`))
	p.do(chromedp.WaitVisible(chromedp.ID("e-devices")))
	if got := p.text("e-devices-text"); got != "Cannot reach the server. Check your connection and try again." {
		t.Errorf("error %q", got)
	}
	if n := len(p.cards()); n != 4 {
		t.Errorf("%d devices shown after a failed refresh, want the 4 still", n)
	}
	d.clearFail("GET /api/v1/devices")
	p.do(chromedp.Tap(chromedp.ID("b-reload")), chromedp.WaitNotVisible(chromedp.ID("e-devices")))
}

// TestPhoneDevicesSignOutThisPhone (pageDouble): signing out the device
// marked "This phone" signs the page out, with a message.
func TestPhoneDevicesSignOutThisPhone(t *testing.T) {
	d := newPageDouble(t)
	seedDevices(d)
	p := signedInPhone(t, d, "en")
	p.do(chromedp.Tap(chromedp.ID("to-devices")))
	self := p.cards()[0]
	p.askSignOut(self.Name)
	if got := p.text("dlg-title"); got != "Sign out this phone?" {
		t.Errorf("dialog title %q", got)
	}
	p.do(chromedp.Tap(chromedp.ID("dlg-ok")))
	p.screen("signin")
	if got := p.text("m-signin"); got != "This phone was signed out." {
		t.Errorf("sign-in notice %q", got)
	}
	if n := len(d.deviceIDs()); n != 3 {
		t.Errorf("%d devices left, want the other 3", n)
	}
	// The username is kept; signing in again clears the notice.
	if got := p.eval(`document.getElementById('u').value + ' ' + document.activeElement.id`); got != "alice p" {
		t.Errorf("username and focus after signing out: %q, want alice and the password field", got)
	}
	p.do(chromedp.SendKeys(chromedp.ID("p"), alicePassword), chromedp.Tap(chromedp.ID("b-signin")))
	p.screen("code")
	if p.visible("m-signin") {
		t.Error("the signed-out notice outlives the next sign-in")
	}
}

// TestPhoneDevicesSignOutEverywhere (pageDouble): from the done screen to
// the list, "Sign out everywhere" asks first, then ends every sign-in and
// this phone's too.
func TestPhoneDevicesSignOutEverywhere(t *testing.T) {
	d := newPageDouble(t)
	seedDevices(d)
	d.addSession("sess-ok", doubleSession{info: api.SessionInfo{Device: api.Device{Name: "Alice's ThinkPad", Platform: "Linux (amd64)", AppName: "qrlogin desktop", IP: "127.0.0.1"}}})
	p := newPhone(t, "en")
	p.do(chromedp.Navigate(d.URL + "/m/sess-ok"))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	p.do(chromedp.Tap(chromedp.ID("r-devices")))
	if n := len(p.cards()); n != 4 {
		t.Fatalf("%d devices, want 4", n)
	}
	// Back returns to the done screen, not to the request again.
	p.do(chromedp.Tap(chromedp.ID("b-back")))
	p.result("Signed in")
	p.do(chromedp.Tap(chromedp.ID("r-devices")))
	p.cards()

	p.do(chromedp.Tap(chromedp.ID("b-all")), chromedp.WaitVisible(chromedp.ID("dlg")))
	if got := p.text("dlg-title"); got != "Sign out everywhere?" {
		t.Errorf("dialog title %q", got)
	}
	p.do(chromedp.Tap(chromedp.ID("dlg-cancel")))
	if d.called("POST /api/v1/auth/logout-all") != 0 {
		t.Fatal("Cancel signed out everywhere")
	}
	p.do(chromedp.Tap(chromedp.ID("b-all")), chromedp.WaitVisible(chromedp.ID("dlg")), chromedp.Tap(chromedp.ID("dlg-ok")))
	p.screen("signin")
	if got := p.text("m-signin"); got != "You signed out everywhere, this phone included." {
		t.Errorf("sign-in notice %q", got)
	}
	p.shot("phone-signed-out-everywhere")
	if n := len(d.deviceIDs()); n != 0 || d.called("POST /api/v1/auth/logout-all") != 1 {
		t.Errorf("%d devices left after signing out everywhere", n)
	}
	p.do(chromedp.Reload())
	p.screen("signin")
}

// TestPhoneDevicesSignedOutElsewhere (pageDouble): this phone's sign-in
// ended elsewhere; the next list request gets 401 and the page asks to sign
// in again, saying so.
func TestPhoneDevicesSignedOutElsewhere(t *testing.T) {
	d := newPageDouble(t)
	seedDevices(d)
	p := signedInPhone(t, d, "en")
	p.do(chromedp.Tap(chromedp.ID("to-devices")))
	p.cards()
	d.endDevice(d.deviceIDs()[0])
	p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('b-reload').click()`))
	p.screen("signin")
	if got := p.text("m-signin"); got != "This phone is no longer signed in. Please sign in again." {
		t.Errorf("sign-in notice %q", got)
	}
}

// TestPhoneDevicesChinese (pageDouble): the list in Chinese, with times in
// Chinese, and names that are HTML shown as text.
func TestPhoneDevicesChinese(t *testing.T) {
	const evil = `<img src=x onerror="window.pwned=1">`
	d := newPageDouble(t)
	seedDevices(d)
	d.addDevice(api.SignedInDevice{Kind: api.DeviceDesktop, Name: evil, Platform: "<b>x</b>", IP: "203.0.113.9", LastIP: "203.0.113.9"}, 50*24*time.Hour, 30*24*time.Hour)
	p := signedInPhone(t, d, "zh-CN,zh;q=0.9,en;q=0.8")
	if got := p.text("to-devices"); got != "已登录的设备" {
		t.Errorf("link %q", got)
	}
	p.do(chromedp.Tap(chromedp.ID("to-devices")))
	cs := p.cards()
	if len(cs) != 5 {
		t.Fatalf("%d devices, want 5", len(cs))
	}
	if !slices.Equal(cs[0].Tags, []string{"本机", "新登录"}) || cs[1].Sub != "电脑 · Linux (amd64) · qrlogin desktop" ||
		cs[1].fact("最近使用") != "5分钟前" || cs[2].fact("最近使用") != "2小时前" {
		t.Errorf("Chinese list: %+v", cs[:3])
	}
	if cs[4].Name != evil || cs[4].Sub != "电脑 · <b>x</b>" {
		t.Errorf("HTML name shown as %q / %q", cs[4].Name, cs[4].Sub)
	}
	if got := p.eval(`String(window.pwned) + document.querySelectorAll('main img, main b').length`); got != "undefined0" {
		t.Errorf("a device name became HTML: %s", got)
	}
	p.eval(`window.scrollTo(0, 0), ''`)
	p.shot("phone-devices-zh")
	p.askSignOut("Alice's ThinkPad")
	if got := p.text("dlg-title"); got != "要让 Alice's ThinkPad 退出登录吗？" {
		t.Errorf("dialog title %q", got)
	}
	if got := p.text("dlg-ok"); got != "退出登录" {
		t.Errorf("dialog button %q", got)
	}
}

// TestPhoneDevicesRealServer: the devices screen against qrlogin-server:
// a desktop signs in through the page, the done screen leads to the list,
// which shows the desktop and this phone; signing the desktop out there
// ends its refresh chain at once.
func TestPhoneDevicesRealServer(t *testing.T) {
	p := newPhone(t, "en")
	srv := startServer(t)
	d := newDesktop(t, srv.Client(), laptop)
	scanned := d.longPoll(api.StatusPending)
	p.do(chromedp.Navigate(d.cs.VerifyURL))
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	d.wait(scanned, api.StatusScanned)
	confirmed := d.longPoll(api.StatusScanned)
	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	st := d.wait(confirmed, api.StatusConfirmed)
	if st.Tokens == nil {
		t.Fatalf("desktop got no tokens: %+v", st)
	}
	p.do(chromedp.Tap(chromedp.ID("r-devices")))
	cs := p.cards()
	if len(cs) != 2 || !slices.Contains(cs[1].Tags, "This phone") && !slices.Contains(cs[0].Tags, "This phone") {
		t.Fatalf("list %+v, want the laptop and this phone", cs)
	}
	// The server keeps what the page's sign-in said of this phone.
	if i := p.cardNamed("Pixel 8"); !slices.Contains(cs[i].Tags, "This phone") || cs[i].Sub != "Phone · Android 14 · Google Chrome" {
		t.Errorf("this phone's card %+v", cs[i])
	}
	lap := cs[p.cardNamed(laptop.DeviceName)]
	if lap.Sub != "Computer · Linux (amd64) · qrlogin desktop" || !slices.Equal(lap.Tags, []string{"New"}) || lap.fact("IP address") != "127.0.0.1" {
		t.Errorf("laptop card %+v", lap)
	}
	p.axe("devices, real server")
	p.askSignOut(laptop.DeviceName)
	p.do(chromedp.Tap(chromedp.ID("dlg-ok")))
	if got := p.deviceNotice(); got != laptop.DeviceName+" was signed out." {
		t.Errorf("notice %q", got)
	}
	if _, err := d.c.Refresh(d.ctx, st.Tokens.RefreshToken); err == nil {
		t.Error("the signed-out desktop's refresh token still works")
	}
	p.onlyServer(srv.URL)
}

// TestPhoneDescribesItself (pageDouble): the sign-in names this phone from
// what its browser tells: the client hints where there are some (Chrome,
// in TestPhoneDevices), else the user agent.
func TestPhoneDescribesItself(t *testing.T) {
	d := newPageDouble(t)
	p := newPhone(t, "en")
	tests := []struct {
		ua, platform string
		name, system string
		app          string
	}{
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			"iPhone", "iPhone", "iOS 17", "Safari"},
		{"Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0", "Linux aarch64", "", "Linux aarch64", "Firefox"},
		{"Mozilla/5.0 (X11; Linux x86_64) SomethingNew/1.0", "Linux x86_64", "", "Linux x86_64", "Browser"},
	}
	for i, tt := range tests {
		p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: tt.ua, Platform: tt.platform})
			return err
		}))
		p.do(chromedp.Navigate(d.URL+"/m"), chromedp.WaitVisible(chromedp.ID("s-signin")), clearInput("u"))
		p.signIn("alice", alicePassword)
		p.screen("code")
		d.mu.Lock()
		got := d.signIns[i]
		d.mu.Unlock()
		if got.DeviceName != tt.name || got.Platform != tt.system || got.AppName != tt.app {
			t.Errorf("%s: device %q, %q, %q, want %q, %q, %q", tt.ua, got.DeviceName, got.Platform, got.AppName, tt.name, tt.system, tt.app)
		}
		p.do(chromedp.Tap(chromedp.ID("signout")))
		p.screen("signin")
	}
}
