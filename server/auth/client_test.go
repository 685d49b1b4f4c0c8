package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

const publicURL = "https://login.example.com"

// A token issued to an OAuth client works only as a client's token: this
// server's own API refuses it, and a client's verification refuses the
// API's tokens and ID tokens.
func TestClientTokensAreKeptApart(t *testing.T) {
	c := testclock.New(t0)
	iss := newIssuer(t, &keyStore{}, c)

	clientTok, exp, err := iss.SignClient(publicURL, "cli", "user-1", auth.AMRQR, "openid profile", "dev-app")
	if err != nil {
		t.Fatalf("SignClient: %v", err)
	}
	if !exp.Equal(t0.Add(testTTL)) {
		t.Errorf("expiry %v, want %v", exp, t0.Add(testTTL))
	}
	apiTok := mustSign(t, iss, "user-1")
	idTok, err := iss.SignIDToken(auth.IDToken{Issuer: publicURL, Subject: "user-1", Audience: "cli", AuthTime: t0})
	if err != nil {
		t.Fatalf("SignIDToken: %v", err)
	}

	got, err := iss.VerifyClient(clientTok, publicURL)
	if err != nil {
		t.Fatalf("VerifyClient(client token): %v", err)
	}
	if got.UserID != "user-1" || got.ClientID != "cli" || got.Scope != "openid profile" || !got.HasAMR(auth.AMRQR) || got.SID != "dev-app" {
		t.Errorf("client claims %+v", got)
	}

	refused := []struct {
		name string
		fn   func() error
	}{
		{"client token at the API", func() error { _, err := iss.Verify(clientTok); return err }},
		{"API token as a client's", func() error { _, err := iss.VerifyClient(apiTok, publicURL); return err }},
		{"API token with the API's issuer", func() error { _, err := iss.VerifyClient(apiTok, testIssuer); return err }},
		{"ID token as a client's access token", func() error { _, err := iss.VerifyClient(idTok, publicURL); return err }},
		{"ID token at the API", func() error { _, err := iss.Verify(idTok); return err }},
		{"client token from another issuer", func() error { _, err := iss.VerifyClient(clientTok, "https://other.example.com"); return err }},
	}
	for _, tt := range refused {
		if err := tt.fn(); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", tt.name, err)
		}
	}

	// A client may not take the API's own audience.
	if _, _, err := iss.SignClient(publicURL, testAudience, "user-1", auth.AMRQR, "", ""); err == nil {
		t.Error("SignClient with the API's audience as client id succeeded")
	}
}

func TestSignIDToken(t *testing.T) {
	c := testclock.New(t0.Add(1500 * time.Millisecond))
	iss := newIssuer(t, &keyStore{}, c)
	tok, err := iss.SignIDToken(auth.IDToken{
		Issuer: publicURL, Subject: "user-1", Audience: "cli", AuthTime: t0,
		Name: "Alice Chen", PreferredUsername: "alice",
	})
	if err != nil {
		t.Fatalf("SignIDToken: %v", err)
	}
	var claims jwt.MapClaims
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "EdDSA" || parsed.Header["kid"] == "" {
		t.Errorf("header %v, want EdDSA with a kid", parsed.Header)
	}
	want := map[string]any{
		"iss": publicURL, "sub": "user-1", "aud": []any{"cli"},
		"iat": float64(t0.Add(time.Second).Unix()), "exp": float64(t0.Add(time.Second + testTTL).Unix()),
		"auth_time": float64(t0.Unix()), "name": "Alice Chen", "preferred_username": "alice",
	}
	for k, v := range want {
		if got := claims[k]; !equalJSON(got, v) {
			t.Errorf("claim %s = %v, want %v", k, got, v)
		}
	}
	for _, bad := range []auth.IDToken{
		{Subject: "u", Audience: "cli", AuthTime: t0},
		{Issuer: publicURL, Audience: "cli", AuthTime: t0},
		{Issuer: publicURL, Subject: "u", AuthTime: t0},
		{Issuer: publicURL, Subject: "u", Audience: "cli"},
	} {
		if _, err := iss.SignIDToken(bad); err == nil {
			t.Errorf("SignIDToken(%+v) succeeded", bad)
		}
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return !aok && !bok && a == b
}
