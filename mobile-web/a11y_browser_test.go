package mobileweb_test

// Accessibility: axe-core (testdata/axe, MPL-2.0, see its README) on every
// screen of the page, light and dark, English and Chinese.

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/qrlogin/qrlogin/shared/api"
)

//go:embed testdata/axe/axe.min.js
var axeSource string

// axeRun runs axe-core's WCAG 2.0 and 2.1 A and AA rules on the page as it
// is and returns each violation as one line.
const axeRun = `axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
  resultTypes: ['violations'],
}).then((r) => JSON.stringify(r.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
  v.nodes.map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\s+/g, ' ')).join(' | '))))`

// axe checks the page as shown, in light and in dark, and fails the test
// on any violation.
func (p *phone) axe(where string) {
	p.t.Helper()
	if p.eval(`typeof axe`) != "object" {
		if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[chromedp.Void](axeSource+"\n;void 0")); err != nil {
			p.t.Fatalf("load axe-core: %v", err)
		}
	}
	for _, dark := range []bool{false, true} {
		p.darkMode(dark)
		out, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](axeRun, chromedp.EvalAwaitPromise))
		if err != nil {
			p.t.Fatalf("run axe-core: %v", err)
		}
		var violations []string
		if err := json.Unmarshal([]byte(out), &violations); err != nil {
			p.t.Fatalf("axe-core's answer %q: %v", out, err)
		}
		for _, v := range violations {
			p.t.Errorf("%s (lang %s, dark %v): %s", where, p.eval(`document.documentElement.lang`), dark, v)
		}
	}
	p.darkMode(false)
}

// a11ySessions are login sessions of pageDouble, one for each screen that
// opening a request can lead to.
var a11ySessions = map[string]doubleSession{
	"sess-ok":        {info: api.SessionInfo{Device: api.Device{Name: "Alice's ThinkPad", Platform: "Linux (amd64)", AppName: "qrlogin desktop", IP: "127.0.0.1"}}},
	"sess-cancel":    {info: api.SessionInfo{Device: api.Device{Name: "Alice's ThinkPad", Platform: "Linux (amd64)", AppName: "qrlogin desktop", IP: "127.0.0.1"}}},
	"sess-far":       {info: api.SessionInfo{Network: api.NetworkDifferent, Device: api.Device{Name: "陈爱丽的 MacBook Air", Platform: "macOS 15", AppName: "qrlogin desktop", IP: "203.0.113.7"}}},
	"sess-near":      {info: api.SessionInfo{Network: api.NetworkSame, Device: api.Device{Name: "Alice's ThinkPad", IP: "203.0.113.8"}}},
	"sess-app":       {info: api.SessionInfo{Client: &api.Client{ID: "notes-cli", Name: "Notes 笔记"}, Device: api.Device{IP: "127.0.0.1"}}},
	"sess-expired":   {status: http.StatusGone, code: api.ErrExpired},
	"sess-used":      {status: http.StatusGone, code: api.ErrConsumed},
	"sess-elsewhere": {status: http.StatusForbidden, code: api.ErrForbidden},
	"sess-busy":      {status: http.StatusServiceUnavailable, code: api.ErrUnavailable},
	"sess-limited":   {status: http.StatusTooManyRequests, code: api.ErrRateLimited, retry: 7},
}

// TestPhoneAccessibility (against pageDouble, which can put the page in
// every state): no axe-core violation of WCAG 2.1 A/AA on any screen —
// sign-in, code, confirm (each network, an OAuth app), every result, the
// devices list with its messages and errors, and each confirm step — in
// light and dark, in English and in Chinese.
func TestPhoneAccessibility(t *testing.T) {
	for _, lang := range []string{"en", "zh-CN,zh;q=0.9"} {
		t.Run(strings.SplitN(lang, ",", 2)[0], func(t *testing.T) {
			d := newPageDouble(t)
			seedDevices(d)
			for id, s := range a11ySessions {
				d.addSession(id, s)
			}
			p := newPhone(t, lang)
			p.do(chromedp.Navigate(d.URL + "/m"))
			p.screen("signin")
			p.axe("sign-in")
			p.signIn("alice", "wrong")
			p.do(chromedp.WaitVisible(chromedp.ID("e-signin")))
			p.axe("sign-in, wrong password")
			p.do(chromedp.SendKeys(chromedp.ID("p"), alicePassword), chromedp.Tap(chromedp.ID("b-signin")))
			p.screen("code")
			p.axe("code")
			p.do(chromedp.SendKeys(chromedp.ID("c"), "abc"), chromedp.Tap(chromedp.ID("b-code")), chromedp.WaitVisible(chromedp.ID("e-code")))
			p.axe("code, bad code")

			for _, s := range []string{"sess-ok", "sess-far", "sess-near", "sess-app"} {
				p.do(chromedp.Navigate(d.URL + "/m/" + s))
				p.screen("confirm")
				p.axe("confirm " + s)
			}
			p.do(chromedp.Tap(chromedp.ID("b-confirm")))
			p.screen("result")
			p.axe("done, app")
			p.do(chromedp.Navigate(d.URL+"/m/sess-cancel"), chromedp.WaitVisible(chromedp.ID("s-confirm")), chromedp.Tap(chromedp.ID("b-cancel")))
			p.screen("result")
			p.axe("cancelled")
			for _, s := range []string{"sess-expired", "sess-used", "sess-elsewhere", "sess-busy", "sess-limited", "sess-unknown"} {
				p.do(chromedp.Navigate(d.URL + "/m/" + s))
				p.screen("result")
				p.axe("result " + s)
			}
			p.do(chromedp.Navigate(d.URL+"/m/sess-ok"), chromedp.WaitVisible(chromedp.ID("s-confirm")), chromedp.Tap(chromedp.ID("b-confirm")))
			p.screen("result")
			p.axe("done")

			p.do(chromedp.Tap(chromedp.ID("r-devices")))
			cs := p.cards()
			p.axe("devices")
			p.askSignOut(cs[1].Name)
			p.axe("confirm signing out a device")
			d.failNext("DELETE /api/v1/devices/"+d.deviceIDs()[1], http.StatusServiceUnavailable)
			p.do(chromedp.Tap(chromedp.ID("dlg-ok")), chromedp.WaitVisible(chromedp.ID("e-dlg")))
			p.axe("confirm signing out a device, failed")
			p.do(chromedp.Tap(chromedp.ID("dlg-ok")))
			p.deviceNotice()
			p.axe("devices, one signed out")
			d.failNext("GET /api/v1/devices", http.StatusServiceUnavailable)
			p.do(chromedp.Tap(chromedp.ID("b-back")), chromedp.WaitVisible(chromedp.ID("s-result")), chromedp.Tap(chromedp.ID("r-devices")),
				chromedp.WaitVisible(chromedp.ID("e-devices")))
			p.axe("devices, failed to load")
			p.do(chromedp.Tap(chromedp.ID("b-reload")))
			p.askSignOut(p.cards()[0].Name)
			p.axe("confirm signing out this phone")
			p.do(chromedp.Tap(chromedp.ID("dlg-cancel")), chromedp.Tap(chromedp.ID("b-all")), chromedp.WaitVisible(chromedp.ID("dlg")))
			p.axe("confirm signing out everywhere")
			p.do(chromedp.Tap(chromedp.ID("dlg-ok")))
			p.screen("signin")
			p.do(chromedp.WaitVisible(chromedp.ID("m-signin")))
			p.axe("sign-in, signed out everywhere")
		})
	}
}

// borderContrast is, for each selector, the contrast of the element's
// border with its own fill and with the first background behind it (the
// smaller), and the least it must be, as "selector=ratio:least"; last, the
// same for the code field's placeholder, an example that is text (4.5:1,
// WCAG 1.4.3) and that axe-core does not check.
const borderContrast = `((sels) => {
  const rgb = (s) => s.match(/[\d.]+/g).slice(0, 3).map(Number);
  const clear = (s) => s === 'transparent' || /^rgba\(.*,\s*0\)$/.test(s);
  const lum = (c) => c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const cr = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const behind = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor; if (!clear(c)) return rgb(c); } return [255, 255, 255]; };
  const out = sels.map((sel) => {
    const el = document.querySelector(sel);
    if (!el) return sel.replace(/ /g, '_') + '=0:3';
    const st = getComputedStyle(el), b = rgb(st.borderTopColor);
    const sides = [behind(el.parentElement)];
    if (!clear(st.backgroundColor)) sides.push(rgb(st.backgroundColor));
    return sel.replace(/ /g, '_') + '=' + Math.min(...sides.map((s) => cr(b, s))).toFixed(2) + ':3';
  });
  const c = document.getElementById('c'), ph = getComputedStyle(c, '::placeholder');
  out.push('#c::placeholder=' + (Number(ph.opacity) < 1 ? 0 : cr(rgb(ph.color), behind(c))).toFixed(2) + ':4.5');
  return out.join(' ');
})(%s)`

// TestBorderContrast (pageDouble): the borders of inputs and outlined
// buttons, on every screen including the devices list and its confirm
// step, are at least 3:1 against their fill and their background, light
// and dark (WCAG 1.4.11).
func TestBorderContrast(t *testing.T) {
	d := newPageDouble(t)
	seedDevices(d)
	p := signedInPhone(t, d, "en")
	p.do(chromedp.Tap(chromedp.ID("to-devices")))
	p.askSignOut(p.cards()[1].Name)
	sels, _ := json.Marshal([]string{"#u", "#p", "#c", "#b-cancel", "#r-action", "#r-devices", "#b-all", "#b-back", "#devices li button", "#dlg-cancel"})
	for _, dark := range []bool{false, true} {
		p.darkMode(dark)
		got := p.eval(fmt.Sprintf(borderContrast, sels))
		for _, f := range strings.Fields(got) {
			id, v, _ := strings.Cut(f, "=")
			ratio, least, _ := strings.Cut(v, ":")
			var r, l float64
			if _, err := fmt.Sscan(ratio, &r); err != nil {
				t.Errorf("dark %v: %s: bad ratio %q", dark, id, v)
			}
			if _, err := fmt.Sscan(least, &l); err != nil || r < l {
				t.Errorf("dark %v: %s contrast %s, want at least %s:1", dark, id, ratio, least)
			}
		}
		t.Logf("dark %v: %s", dark, got)
	}
}
