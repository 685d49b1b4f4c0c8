package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Streams are pinged, and so check their sign-in again, every 15 s; a
// revocation that arrives well before was carried by a notification.
const notifiedWithin = 10 * time.Second

// qrSignIn signs a desktop in on desk through a login session that the
// phone (access token phone) confirms on phoneSrv.
func qrSignIn(t *testing.T, desk, phoneSrv *apptest.Server, phone string) api.Tokens {
	t.Helper()
	ctx := t.Context()
	sess, err := desk.Client().CreateSession(ctx, api.CreateSessionRequest{DeviceName: "Alice's laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phoneSrv.Client().Scan(ctx, phone, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := phoneSrv.Client().Confirm(ctx, phone, sess.ID); err != nil {
		t.Fatal(err)
	}
	st, err := desk.Client().SessionStatus(ctx, sess.ID, sess.PollToken, "", 0)
	if err != nil || st.Tokens == nil {
		t.Fatalf("tokens: %+v, %v", st, err)
	}
	return *st.Tokens
}

// revokedEvent is the reason of the first revoked event on srv's account
// event stream for token, and when it arrived; opened is closed once the
// stream is held.
func revokedEvent(t *testing.T, srv *apptest.Server, token string, opened chan<- struct{}) (<-chan string, <-chan time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	r, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/me/events", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("me/events: %d", resp.StatusCode)
	}
	close(opened)
	reasons, at := make(chan string, 1), make(chan time.Time, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				at <- time.Now()
				var rv api.Revoked
				_ = json.Unmarshal([]byte(data), &rv)
				reasons <- rv.Reason
				return
			}
		}
		at <- time.Now()
		reasons <- "(stream ended: " + resp.Status + ")"
	}()
	return reasons, at
}

func awaitRevoked(t *testing.T, reasons <-chan string, at <-chan time.Time, acted time.Time, want string) {
	t.Helper()
	select {
	case got := <-reasons:
		when := <-at
		if got != want {
			t.Fatalf("revoked %q, want %q", got, want)
		}
		if d := when.Sub(acted); d > notifiedWithin {
			t.Fatalf("revoked %v after the change: the ping's re-check found it, not a notification", d)
		}
	case <-time.After(time.Minute):
		t.Fatal("no revoked event within a minute")
	}
}

// A sign-in ended on one server reaches its event stream held by another
// sharing the PostgreSQL database, through the same NOTIFY path as login
// sessions: from the phone's device list, and from a password change (the
// command line, another process).
func TestMultiInstanceRevocationReachesStream(t *testing.T) {
	servers := startInstances(t, 2)
	a, b := servers[0].Server, servers[1].Server
	a.AddUser(t, "alice", "Alice Chen", "alice-password-1")
	phone := b.Login(t, "alice", "alice-password-1")

	desk1 := qrSignIn(t, a, b, phone)
	desk2 := qrSignIn(t, a, b, phone)
	opened1, opened2 := make(chan struct{}), make(chan struct{})
	reasons1, at1 := revokedEvent(t, a, desk1.AccessToken, opened1)
	reasons2, at2 := revokedEvent(t, a, desk2.AccessToken, opened2)
	<-opened1
	<-opened2
	waitForWaiters(t, 2, servers[0])

	// The phone, on B, ends the first desktop's sign-in.
	r, _ := http.NewRequest("GET", b.URL+"/api/v1/devices", nil)
	r.Header.Set("Authorization", "Bearer "+phone)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var ds api.DevicesResponse
	err = json.NewDecoder(resp.Body).Decode(&ds)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, d := range ds.Devices {
		if d.Kind == api.DeviceDesktop {
			id = d.ID // newest first: the last is desk1
		}
	}
	r, _ = http.NewRequest("DELETE", b.URL+"/api/v1/devices/"+id, nil)
	r.Header.Set("Authorization", "Bearer "+phone)
	acted := time.Now()
	resp, err = http.DefaultClient.Do(r)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE on B: %v %v", resp, err)
	}
	resp.Body.Close()
	awaitRevoked(t, reasons1, at1, acted, api.ReasonSignedOut)

	// qrlogin-server user passwd, through B's store.
	acted = time.Now()
	if err := b.App.Accounts().SetPassword(t.Context(), "alice", "alice-password-2"); err != nil {
		t.Fatal(err)
	}
	awaitRevoked(t, reasons2, at2, acted, api.ReasonPasswordChanged)
	waitForWaiters(t, 0, servers[0])
}
