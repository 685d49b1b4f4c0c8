package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"path"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/qrlogin/qrlogin/server/app"
	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// A Go app signs its user in with qrlogin: the OAuth 2.0 device flow of
// golang.org/x/oauth2 and OpenID Connect from github.com/coreos/go-oidc,
// plus qrlogin's event stream so that the app hears the phone's answer at
// once. The app was registered with
//
//	qrlogin-server client add --id notes-cli --name "Notes"
//
// This example needs a server and a phone, so it is compiled but not run;
// TestSignInWithQR runs the same signInWithQR against a real server.
func Example_signInWithQR() {
	ctx := context.Background()
	user, token, err := signInWithQR(ctx, "https://login.example.com", "notes-cli",
		func(qrContent, userCode string) {
			// Draw qrContent as a QR code (e.g. with skip2/go-qrcode); a
			// phone without a camera opens <server>/m and types userCode.
			fmt.Printf("Scan this QR code with your phone: %s (or enter %s)\n", qrContent, userCode)
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in as", user.Subject)
	// Keep token.RefreshToken (scope offline_access) to stay signed in;
	// cfg.TokenSource(ctx, token) refreshes the access token when needed.
	_ = token
}

// signInWithQR runs the device flow against the qrlogin server at issuer
// for the public client clientID, calling show with what to put in the QR
// code. It returns the verified ID token and the tokens.
func signInWithQR(ctx context.Context, issuer, clientID string, show func(qrContent, userCode string)) (*oidc.IDToken, *oauth2.Token, error) {
	provider, err := oidc.NewProvider(ctx, issuer) // GET /.well-known/openid-configuration
	if err != nil {
		return nil, nil, err
	}
	cfg := oauth2.Config{
		ClientID: clientID,
		Endpoint: provider.Endpoint(),
		Scopes:   []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		return nil, nil, err
	}
	show(da.VerificationURIComplete, da.UserCode)

	token, err := waitForPhone(ctx, issuer, &cfg, da)
	if err != nil {
		return nil, nil, err
	}
	rawID, _ := token.Extra("id_token").(string)
	id, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, rawID)
	if err != nil {
		return nil, nil, err
	}
	return id, token, nil
}

// waitForPhone gets the tokens once the phone confirms. What qrlogin adds
// to RFC 8628: the device code is also the poll token of the login
// session named at the end of verification_uri_complete, so the app can
// follow the session's event stream and ask for the tokens the moment
// the phone confirms, instead of polling every few seconds. Should the
// stream be unavailable, the standard polling still works.
func waitForPhone(ctx context.Context, issuer string, cfg *oauth2.Config, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	u, err := url.Parse(da.VerificationURIComplete)
	if err != nil {
		return nil, err
	}
	events, err := client.New(issuer).Events(ctx, path.Base(u.Path), da.DeviceCode)
	if err != nil {
		return cfg.DeviceAccessToken(ctx, da)
	}
	defer events.Close()
	for {
		ev, err := events.Next()
		if err != nil {
			return cfg.DeviceAccessToken(ctx, da) // the stream ended early: poll
		}
		if ev.Status == api.StatusPending || ev.Status == api.StatusScanned {
			continue
		}
		// Confirmed, cancelled or expired: one token request says which.
		return cfg.Exchange(ctx, "",
			oauth2.SetAuthURLParam("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
			oauth2.SetAuthURLParam("device_code", da.DeviceCode))
	}
}

// TestSignInWithQR runs the example's code against a real server while a
// phone confirms, and shows that the app hears the answer long before the
// 5-second polling interval would have let it.
func TestSignInWithQR(t *testing.T) {
	srv := apptest.Start(t, func(c *app.Config) { c.DeviceInterval = 5 * time.Second })
	srv.AddClient(t, "notes-cli", "Notes", "")
	alice := srv.AddUser(t, "alice", "Alice Chen", "alice-password")
	phoneToken := srv.Login(t, "alice", "alice-password")
	phone := srv.Client()

	phoneDone := make(chan error, 1)
	var shown time.Time
	start := time.Now()
	user, token, err := signInWithQR(t.Context(), srv.URL, "notes-cli", func(qrContent, userCode string) {
		shown = time.Now()
		go func() {
			id := path.Base(qrContent)
			_, err := phone.Scan(context.Background(), phoneToken, id)
			if err == nil {
				_, err = phone.Confirm(context.Background(), phoneToken, id)
			}
			phoneDone <- err
		}()
	})
	if err != nil {
		t.Fatalf("signInWithQR: %v", err)
	}
	if err := <-phoneDone; err != nil {
		t.Fatalf("phone: %v", err)
	}
	if shown.IsZero() || user.Subject != alice.ID || token.RefreshToken == "" {
		t.Fatalf("user %q token %+v", user.Subject, token)
	}
	// Polling would have asked for the first time 5 s after the QR was
	// shown; the event stream gets the tokens well before.
	if waited := time.Since(start); waited >= 5*time.Second {
		t.Errorf("signing in took %v; the event stream should beat the 5 s poll", waited)
	}

	// A phone that refuses makes the app fail with access_denied.
	_, _, err = signInWithQR(t.Context(), srv.URL, "notes-cli", func(qrContent, _ string) {
		go func() { _, _ = phone.Cancel(context.Background(), phoneToken, path.Base(qrContent)) }()
	})
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "access_denied" {
		t.Fatalf("refused on the phone: %v, want access_denied", err)
	}
}
