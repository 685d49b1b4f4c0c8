package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/qrlogin/qrlogin/desktop/signin"
	"github.com/qrlogin/qrlogin/desktop/tokenstore"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// streamCounter counts the account streams the app has asked for.
type streamCounter struct {
	signin.Client
	asked *atomic.Int32
}

func (c streamCounter) WaitRevoked(ctx context.Context, accessToken string) (*api.Revoked, error) {
	c.asked.Add(1)
	return c.Client.WaitRevoked(ctx, accessToken)
}

// TestAppSignedOutFromPhone is the whole app against the real server: the
// desktop signs in by QR, the phone ends that sign-in from its list of
// signed-in devices, and within 2 seconds the window shows a new code
// saying so, and the saved sign-in is gone from the keychain (or from the
// fallback file, without a keychain).
func TestAppSignedOutFromPhone(t *testing.T) {
	srv := apptest.Start(t)
	ph := newPhone(t, srv)
	store := tokenstore.New(tokenstore.Config{Service: "io.github.qrlogin.desktop-test-" + t.Name(), Dir: t.TempDir()})
	t.Cleanup(func() { _ = store.Delete(srv.URL) })
	var asked atomic.Int32
	q := make(queue, 1000)
	a := New(test.NewTempApp(t), Config{
		Server: srv.URL, Tokens: store, Do: q.Do, Tick: time.Hour,
		NewAPI: func(server string) signin.API {
			return streamCounter{signin.Client{Client: client.New(server)}, &asked}
		},
	})
	t.Cleanup(a.Stop)
	a.Start()
	w := a.Window()
	q.pump(t, "a code", func() bool { return a.view.state.Phase == signin.Waiting })
	id := a.view.state.Code.ID
	ph.do("scan", id)
	ph.do("confirm", id)
	q.pump(t, "the account view", func() bool { return visible(w, a.view.account) && visibleTexts(w)["Alice Example"] })
	if _, err := store.Load(srv.URL); err != nil {
		t.Fatalf("sign-in not saved: %v", err)
	}
	q.pump(t, "the account stream", func() bool { return asked.Load() > 0 })

	// The phone: its list of signed-in devices names this desktop.
	var list api.DevicesResponse
	phoneRequest(t, srv, ph.token, http.MethodGet, "/api/v1/devices", http.StatusOK, &list)
	var desktop *api.SignedInDevice
	for i, d := range list.Devices {
		if d.Kind == api.DeviceDesktop {
			desktop = &list.Devices[i]
		}
	}
	if desktop == nil {
		t.Fatalf("no desktop among the signed-in devices: %+v", list.Devices)
	}
	start := time.Now()
	phoneRequest(t, srv, ph.token, http.MethodDelete, "/api/v1/devices/"+url.PathEscape(desktop.ID), http.StatusNoContent, nil)

	const notice = "You were signed out from your phone."
	q.pumpWithin(t, "the code screen saying "+notice, 2*time.Second, func() bool {
		return visible(w, a.view.login) && visible(w, a.view.notice) && a.view.notice.Text == notice
	})
	if _, err := store.Load(srv.URL); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("the saved sign-in is still there after %v: %v", time.Since(start), err)
	}
	q.pump(t, "a new code", func() bool { return a.view.state.Code != nil && visible(w, a.view.qr) })
	if a.view.state.Code.ID == id || !visibleTexts(w)[notice] {
		t.Errorf("code %s, texts %q", a.view.state.Code.ID, keys(visibleTexts(w)))
	}
}

// phoneRequest sends one request of the phone with its access token and
// decodes the answer into out.
func phoneRequest(t *testing.T, srv *apptest.Server, token, method, path string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e api.Error
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s %s: %d %+v, want %d", method, path, resp.StatusCode, e, want)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
