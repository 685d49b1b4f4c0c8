package app_test

import (
	"context"
	"testing"

	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// A password change signs the user out everywhere at once: an access token
// issued before it stops working on the very next request, not when it
// expires, and so do refresh tokens.
func TestPasswordChangeRevokesAccessTokensAtOnce(t *testing.T) {
	srv := apptest.Start(t)
	srv.AddUser(t, "carol", "Carol", "first-password")
	srv.AddUser(t, "dave", "Dave", "daves-password")
	c := srv.Client()
	ctx := context.Background()

	old, err := c.Login(ctx, "carol", "first-password")
	if err != nil {
		t.Fatal(err)
	}
	dave := srv.Login(t, "dave", "daves-password")
	if _, err := c.Me(ctx, old.AccessToken); err != nil {
		t.Fatalf("me before the password change: %v", err)
	}

	if err := srv.App.Accounts().SetPassword(ctx, "carol", "second-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx, old.AccessToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Fatalf("me with a token from before the password change: %v, want 401", err)
	}
	if _, err := c.Refresh(ctx, old.RefreshToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Fatalf("refresh from before the password change: %v, want 401", err)
	}
	if _, err := c.Me(ctx, dave); err != nil {
		t.Fatalf("another user's token after carol's password change: %v", err)
	}

	// Signing in again (in the same second, often) works.
	fresh, err := c.Login(ctx, "carol", "second-password")
	if err != nil {
		t.Fatal(err)
	}
	if me, err := c.Me(ctx, fresh.AccessToken); err != nil || me.Username != "carol" {
		t.Fatalf("me after signing in again: %+v, %v", me, err)
	}

	// Deleting the account ends its tokens too.
	if err := srv.App.Accounts().Delete(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx, fresh.AccessToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Fatalf("me after the account was deleted: %v, want 401", err)
	}
}

// LogoutAll through the Go client, against a real server: the desktop's
// QR token cannot do it, the phone's password token can, and then the
// desktop is signed out too.
func TestLogoutAllEndToEnd(t *testing.T) {
	srv := apptest.Start(t)
	srv.AddUser(t, "erin", "Erin", "erins-password")
	c := srv.Client()
	ctx := context.Background()

	phone := srv.Login(t, "erin", "erins-password")
	sess, err := c.CreateSession(ctx, api.CreateSessionRequest{DeviceName: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Scan(ctx, phone, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Confirm(ctx, phone, sess.ID); err != nil {
		t.Fatal(err)
	}
	st, err := c.SessionStatus(ctx, sess.ID, sess.PollToken, "", 0)
	if err != nil || st.Tokens == nil {
		t.Fatalf("status: %+v, %v", st, err)
	}
	desktop := st.Tokens

	if err := c.LogoutAll(ctx, desktop.AccessToken); !client.IsCode(err, api.ErrForbidden) {
		t.Fatalf("logout-all with the desktop's QR token: %v, want 403", err)
	}
	if err := c.LogoutAll(ctx, phone); err != nil {
		t.Fatalf("logout-all: %v", err)
	}
	for name, tok := range map[string]string{"phone": phone, "desktop": desktop.AccessToken} {
		if _, err := c.Me(ctx, tok); !client.IsCode(err, api.ErrUnauthorized) {
			t.Errorf("me with the %s's token after logout-all: %v, want 401", name, err)
		}
	}
	if _, err := c.Refresh(ctx, desktop.RefreshToken); !client.IsCode(err, api.ErrUnauthorized) {
		t.Errorf("desktop refresh after logout-all: %v, want 401", err)
	}
}
