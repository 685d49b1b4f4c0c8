package mobileweb_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestPhoneOAuthApp: an app signing in through OAuth (the device
// authorization grant) is shown on the confirm screen by the name the
// server's administrator registered, apart from anything a computer
// reports; confirming lets the app collect its tokens.
func TestPhoneOAuthApp(t *testing.T) {
	srv := startServer(t)
	srv.AddClient(t, "notes-cli", "Notes 笔记", "")
	token := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(srv.URL+"/oauth2/"+form.Get("endpoint"), form)
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
	status, da := token(url.Values{"endpoint": {"device_authorization"}, "client_id": {"notes-cli"}, "scope": {"openid"}})
	if status != http.StatusOK {
		t.Fatalf("device authorization: %d %v", status, da)
	}

	p := newPhone(t, "en-US,en;q=0.9")
	p.do(chromedp.Navigate(da["verification_uri_complete"].(string)))
	p.screen("signin")
	p.signIn("alice", alicePassword)
	p.screen("confirm")
	for id, want := range map[string]string{
		"h-client":       "App registered on this server",
		"tag-registered": "Registered",
		"c-name":         "Notes 笔记",
		"c-id":           "notes-cli",
		"d-ip":           "127.0.0.1",
	} {
		if got := p.text(id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	if !p.visible("sec-client") || !p.visible("sec-seen") {
		t.Error("the registered app or what the server saw is not shown")
	}
	if p.visible("sec-reported") {
		t.Error("an empty \"reported by the computer\" section is shown for an app that reports nothing")
	}
	p.shot("phone-confirm-oauth")
	p.axe("confirm OAuth app, real server")

	p.do(chromedp.Tap(chromedp.ID("lang")))
	if got := p.text("h-client"); got != "在此服务器上登记的应用" {
		t.Errorf("Chinese heading %q", got)
	}
	p.do(chromedp.Tap(chromedp.ID("lang")))

	p.do(chromedp.Tap(chromedp.ID("b-confirm")))
	p.result("Signed in")
	if want := "You are signed in to Notes 笔记. You can close this page."; p.text("r-body") != want {
		t.Errorf("done screen says %q, want %q", p.text("r-body"), want)
	}
	status, tok := token(url.Values{"endpoint": {"token"}, "client_id": {"notes-cli"},
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da["device_code"].(string)}})
	if status != http.StatusOK || tok["id_token"] == nil {
		t.Fatalf("the app's token request: %d %v", status, tok)
	}
	p.onlyServer(srv.URL)
}
