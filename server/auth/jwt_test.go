package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// keyStore is an in-memory auth.KeyStore.
type keyStore struct {
	mu      sync.Mutex
	keys    []store.SigningKey
	created int
	// beforeCreate, if set, runs inside CreateSigningKey before the key
	// is stored; returning an error stops the store.
	beforeCreate func(ks *keyStore, k store.SigningKey) error
}

func (ks *keyStore) SigningKeys(context.Context) ([]store.SigningKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return slices.Clone(ks.keys), nil
}

func (ks *keyStore) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.beforeCreate != nil {
		if err := ks.beforeCreate(ks, k); err != nil {
			return err
		}
	}
	for _, old := range ks.keys {
		if old.ID == k.ID {
			return store.ErrConflict
		}
	}
	ks.keys = append(ks.keys, k)
	ks.created++
	return nil
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "qrlogin"
	testAudience = "qrlogin-api"
	testTTL      = 15 * time.Minute
)

func newIssuer(tb testing.TB, ks auth.KeyStore, c *testclock.Clock) *auth.Issuer {
	tb.Helper()
	iss, err := auth.NewIssuer(context.Background(), ks, auth.IssuerConfig{
		Issuer: testIssuer, Audience: testAudience, TTL: testTTL, Now: c.Now,
	})
	if err != nil {
		tb.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func mustSign(tb testing.TB, iss *auth.Issuer, userID string) string {
	tb.Helper()
	tok, _, err := iss.Sign(userID, auth.AMRPassword, "")
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return tok
}

// forge signs claims with any method and key, with kid in the header
// unless kid is empty.
func forge(tb testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("forge %s: %v", m.Alg(), err)
	}
	return s
}

func goodClaims(now time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Subject:   "user-1",
		Issuer:    testIssuer,
		Audience:  jwt.ClaimStrings{testAudience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(testTTL)),
		ID:        "jti-1",
	}
}

func TestIssuerVerify(t *testing.T) {
	ks := &keyStore{}
	c := testclock.New(t0)
	iss := newIssuer(t, ks, c)
	if len(ks.keys) != 1 {
		t.Fatalf("NewIssuer stored %d keys, want 1", len(ks.keys))
	}
	kid := ks.keys[0].ID
	priv := ed25519.PrivateKey(ks.keys[0].PrivateKey)
	pub := priv.Public().(ed25519.PublicKey)
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	valid := mustSign(t, iss, "user-1")
	with := func(edit func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		cl := goodClaims(t0)
		edit(&cl)
		return cl
	}
	segs := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		at    time.Time // verification time; t0 when zero
		ok    bool
		// reason, if set, is the jwt error the refusal must wrap, so a
		// case cannot pass by failing for some unrelated reason.
		reason error
	}{
		{name: "valid", token: valid, ok: true},
		{name: "valid just before expiry", token: valid, at: t0.Add(testTTL - time.Second), ok: true},
		{name: "forged with stored key", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, goodClaims(t0)), ok: true},
		{name: "expired", token: valid, at: t0.Add(testTTL + time.Second), reason: jwt.ErrTokenExpired},
		{name: "long expired", token: valid, at: t0.Add(24 * time.Hour), reason: jwt.ErrTokenExpired},
		{name: "not yet valid", token: valid, at: t0.Add(-time.Minute), reason: jwt.ErrTokenNotValidYet},
		{name: "alg none", token: forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, goodClaims(t0)), reason: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with public key as secret", token: forge(t, jwt.SigningMethodHS256, []byte(pub), kid, goodClaims(t0)), reason: jwt.ErrTokenSignatureInvalid},
		{name: "HS256 with base64 public key as secret", token: forge(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), kid, goodClaims(t0)), reason: jwt.ErrTokenSignatureInvalid},
		{name: "ES256", token: forge(t, jwt.SigningMethodES256, ecKey, kid, goodClaims(t0)), reason: jwt.ErrTokenSignatureInvalid},
		{name: "other key same kid", token: forge(t, jwt.SigningMethodEdDSA, otherPriv, kid, goodClaims(t0)), reason: jwt.ErrTokenSignatureInvalid},
		{name: "unknown kid", token: forge(t, jwt.SigningMethodEdDSA, priv, "no-such-kid", goodClaims(t0)), reason: jwt.ErrTokenUnverifiable},
		{name: "no kid", token: forge(t, jwt.SigningMethodEdDSA, priv, "", goodClaims(t0)), reason: jwt.ErrTokenUnverifiable},
		{name: "wrong audience", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other-api"} })), reason: jwt.ErrTokenInvalidAudience},
		{name: "no audience", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *jwt.RegisteredClaims) { c.Audience = nil })), reason: jwt.ErrTokenRequiredClaimMissing},
		{name: "wrong issuer", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" })), reason: jwt.ErrTokenInvalidIssuer},
		{name: "no issuer", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *jwt.RegisteredClaims) { c.Issuer = "" })), reason: jwt.ErrTokenRequiredClaimMissing},
		{name: "no exp", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), reason: jwt.ErrTokenRequiredClaimMissing},
		{name: "no subject", token: forge(t, jwt.SigningMethodEdDSA, priv, kid, with(func(c *jwt.RegisteredClaims) { c.Subject = "" }))},
		{name: "tampered payload", token: segs[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","iss":"qrlogin","aud":["qrlogin-api"],"exp":9999999999}`)) + "." + segs[2], reason: jwt.ErrTokenSignatureInvalid},
		{name: "signature stripped", token: segs[0] + "." + segs[1] + ".", reason: jwt.ErrTokenSignatureInvalid},
		{name: "signature padded", token: valid + "==", reason: jwt.ErrTokenMalformed},
		{name: "empty", token: "", reason: jwt.ErrTokenMalformed},
		{name: "garbage", token: "not a token", reason: jwt.ErrTokenMalformed},
		{name: "three dots", token: "...", reason: jwt.ErrTokenMalformed},
		{name: "a.b.c", token: "a.b.c", reason: jwt.ErrTokenMalformed},
		{name: "bearer prefix", token: "Bearer " + valid, reason: jwt.ErrTokenMalformed},
		{name: "huge", token: valid + strings.Repeat("A", 10000)},
		{name: "json", token: `{"alg":"none"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			if at.IsZero() {
				at = t0
			}
			c.Set(at)
			defer c.Set(t0)
			claims, err := iss.Verify(tt.token)
			if tt.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.UserID != "user-1" {
					t.Errorf("UserID = %q, want user-1", claims.UserID)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token, claims %+v", claims)
			}
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify error %v does not wrap ErrInvalidToken", err)

			}
		})
	}
}

func TestIssuerSign(t *testing.T) {
	ks := &keyStore{}
	c := testclock.New(t0.Add(700 * time.Millisecond))
	iss := newIssuer(t, ks, c)
	tok, exp, err := iss.Sign("user-7", auth.AMRQR, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(testTTL); !exp.Equal(want) {
		t.Errorf("expiresAt = %v, want %v (whole seconds)", exp, want)
	}
	if iss.TTL() != testTTL {
		t.Errorf("TTL = %v", iss.TTL())
	}

	// Inspect what was written, without trusting Verify.
	var rc jwt.RegisteredClaims
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &rc)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "EdDSA" || parsed.Header["kid"] != ks.keys[0].ID {
		t.Errorf("header = %v, want alg EdDSA and kid %q", parsed.Header, ks.keys[0].ID)
	}
	if rc.Subject != "user-7" || rc.Issuer != testIssuer || !slices.Equal(rc.Audience, jwt.ClaimStrings{testAudience}) {
		t.Errorf("sub/iss/aud = %q/%q/%v", rc.Subject, rc.Issuer, rc.Audience)
	}
	if rc.IssuedAt == nil || !rc.IssuedAt.Equal(t0) || rc.NotBefore == nil || !rc.NotBefore.Equal(t0) {
		t.Errorf("iat/nbf = %v/%v, want %v", rc.IssuedAt, rc.NotBefore, t0)
	}
	if rc.ExpiresAt == nil || !rc.ExpiresAt.Equal(exp) {
		t.Errorf("exp = %v, want %v", rc.ExpiresAt, exp)
	}
	if len(rc.ID) < 22 {
		t.Errorf("jti = %q, want a random id", rc.ID)
	}

	claims, err := iss.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	// IssuedAt keeps the sub-second part (claim iat_us), so a revocation
	// in the same second can tell before from after.
	want := auth.Claims{UserID: "user-7", ID: rc.ID, IssuedAt: t0.Add(700 * time.Millisecond), ExpiresAt: exp, AMR: []string{"qr"}}
	if !claims.IssuedAt.Equal(want.IssuedAt) || !claims.ExpiresAt.Equal(want.ExpiresAt) ||
		claims.UserID != want.UserID || claims.ID != want.ID || !slices.Equal(claims.AMR, want.AMR) {
		t.Errorf("Verify = %+v, want %+v", claims, want)
	}
	if !claims.HasAMR(auth.AMRQR) || claims.HasAMR(auth.AMRPassword) {
		t.Errorf("HasAMR: qr %v, pwd %v; want true, false", claims.HasAMR(auth.AMRQR), claims.HasAMR(auth.AMRPassword))
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if !strings.Contains(string(payload), `"amr":["qr"]`) || !strings.Contains(string(payload), `"iat_us":1772366400700000`) {
		t.Errorf("payload %s lacks amr [qr] or iat_us", payload)
	}
	if _, _, err := iss.Sign("user-7", "", ""); err == nil {
		t.Errorf("Sign without a method succeeded")
	}

	tok2 := mustSign(t, iss, "user-7")
	var rc2 jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok2, &rc2); err != nil {
		t.Fatal(err)
	}
	if rc2.ID == rc.ID {
		t.Errorf("two tokens share jti %q", rc.ID)
	}

	if _, _, err := iss.Sign("", auth.AMRPassword, ""); err == nil {
		t.Errorf("Sign(\"\") succeeded")
	}
}

func TestIssuerKeyPersisted(t *testing.T) {
	ks := &keyStore{}
	c := testclock.New(t0)
	first := newIssuer(t, ks, c)
	tok := mustSign(t, first, "user-1")
	if ks.created != 1 {
		t.Fatalf("first NewIssuer created %d keys, want 1", ks.created)
	}
	kid := ks.keys[0].ID
	if len(kid) != 16 || !urlSafe.MatchString(kid) {
		t.Errorf("kid = %q, want 16 URL-safe characters", kid)
	}
	if len(ks.keys[0].PrivateKey) != ed25519.PrivateKeySize {
		t.Errorf("stored private key is %d bytes", len(ks.keys[0].PrivateKey))
	}

	second := newIssuer(t, ks, c) // a restart over the same store
	if ks.created != 1 {
		t.Fatalf("second NewIssuer created a key; %d in store", ks.created)
	}
	if _, err := second.Verify(tok); err != nil {
		t.Errorf("restarted issuer refuses the old token: %v", err)
	}
	if _, err := first.Verify(mustSign(t, second, "user-1")); err != nil {
		t.Errorf("first issuer refuses the restarted one's token: %v", err)
	}
	if a, b := first.JWKS(), second.JWKS(); !slices.Equal(a.Keys, b.Keys) {
		t.Errorf("JWKS differ: %+v vs %+v", a, b)
	}
}

// TestIssuerCreateRace simulates another server storing its key between
// our load and our store: we get ErrConflict and must use its key.
func TestIssuerCreateRace(t *testing.T) {
	_, theirs, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyStore{}
	ks.beforeCreate = func(ks *keyStore, _ store.SigningKey) error {
		ks.keys = append(ks.keys, store.SigningKey{ID: "theirs", PrivateKey: theirs, CreatedAt: t0})
		return store.ErrConflict
	}
	iss := newIssuer(t, ks, testclock.New(t0))
	if keys := iss.JWKS().Keys; len(keys) != 1 || keys[0].Kid != "theirs" {
		t.Fatalf("JWKS = %+v, want only the racing server's key", keys)
	}
	tok := mustSign(t, iss, "u")
	if _, err := iss.Verify(forge(t, jwt.SigningMethodEdDSA, theirs, "theirs", goodClaims(t0))); err != nil {
		t.Errorf("token of the racing server refused: %v", err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if err != nil || parsed.Header["kid"] != "theirs" {
		t.Errorf("signed with kid %v, err %v; want theirs", parsed.Header["kid"], err)
	}
}

func TestIssuerNewestKeySigns(t *testing.T) {
	_, older, _ := ed25519.GenerateKey(rand.Reader)
	_, newer, _ := ed25519.GenerateKey(rand.Reader)
	ks := &keyStore{keys: []store.SigningKey{
		{ID: "older", PrivateKey: older, CreatedAt: t0.Add(-48 * time.Hour)},
		{ID: "newer", PrivateKey: newer, CreatedAt: t0.Add(-time.Hour)},
	}}
	iss := newIssuer(t, ks, testclock.New(t0))
	parsed, _, err := jwt.NewParser().ParseUnverified(mustSign(t, iss, "u"), &jwt.RegisteredClaims{})
	if err != nil || parsed.Header["kid"] != "newer" {
		t.Fatalf("signed with kid %v, err %v; want newer", parsed.Header["kid"], err)
	}
	if _, err := iss.Verify(forge(t, jwt.SigningMethodEdDSA, older, "older", goodClaims(t0))); err != nil {
		t.Errorf("token of the older key refused: %v", err)
	}
	if _, err := iss.Verify(forge(t, jwt.SigningMethodEdDSA, older, "newer", goodClaims(t0))); err == nil {
		t.Errorf("older key accepted under the newer kid")
	}
}

func TestIssuerJWKS(t *testing.T) {
	ks := &keyStore{}
	c := testclock.New(t0)
	iss := newIssuer(t, ks, c)
	raw, err := json.Marshal(iss.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: want 1 key", raw)
	}
	k := set.Keys[0]
	for field, want := range map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": ks.keys[0].ID} {
		if k[field] != want {
			t.Errorf("%s = %q, want %q (JWKS %s)", field, k[field], want, raw)
		}
	}
	if _, ok := k["d"]; ok || len(k) != 6 {
		t.Errorf("JWKS key has fields %v, want exactly kty crv x kid alg use", k)
	}
	x, err := base64.RawURLEncoding.DecodeString(k["x"])
	if err != nil || len(x) != ed25519.PublicKeySize {
		t.Fatalf("x = %q: %d bytes, err %v", k["x"], len(x), err)
	}

	// Another service verifies our token with nothing but the JWKS.
	tok := mustSign(t, iss, "user-1")
	_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil },
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithTimeFunc(c.Now))
	if err != nil {
		t.Errorf("token does not verify with the JWKS key: %v", err)
	}

	// The returned set is a copy.
	j := iss.JWKS()
	j.Keys[0].X = "changed"
	if iss.JWKS().Keys[0].X == "changed" {
		t.Errorf("JWKS returns the issuer's own slice")
	}
}

type failingKeyStore struct{ err error }

func (f failingKeyStore) SigningKeys(context.Context) ([]store.SigningKey, error)  { return nil, f.err }
func (f failingKeyStore) CreateSigningKey(context.Context, store.SigningKey) error { return f.err }

// dropKeyStore claims to store keys but never returns any.
type dropKeyStore struct{}

func (dropKeyStore) SigningKeys(context.Context) ([]store.SigningKey, error)  { return nil, nil }
func (dropKeyStore) CreateSigningKey(context.Context, store.SigningKey) error { return nil }

func TestNewIssuerErrors(t *testing.T) {
	good := auth.IssuerConfig{Issuer: testIssuer, Audience: testAudience, TTL: testTTL}
	boom := errors.New("disk on fire")
	tests := []struct {
		name string
		ks   auth.KeyStore
		cfg  func(*auth.IssuerConfig)
		is   error
	}{
		{name: "no issuer", ks: &keyStore{}, cfg: func(c *auth.IssuerConfig) { c.Issuer = "" }},
		{name: "no audience", ks: &keyStore{}, cfg: func(c *auth.IssuerConfig) { c.Audience = "" }},
		{name: "zero TTL", ks: &keyStore{}, cfg: func(c *auth.IssuerConfig) { c.TTL = 0 }},
		{name: "store fails", ks: failingKeyStore{boom}, is: boom},
		{name: "key vanishes", ks: dropKeyStore{}},
		{name: "short key", ks: &keyStore{keys: []store.SigningKey{{ID: "k", PrivateKey: make([]byte, 32), CreatedAt: t0}}}},
		{name: "empty kid", ks: &keyStore{keys: []store.SigningKey{{PrivateKey: make([]byte, 64), CreatedAt: t0}}}},
		{name: "duplicate kid", ks: &keyStore{keys: []store.SigningKey{
			{ID: "k", PrivateKey: make([]byte, 64), CreatedAt: t0},
			{ID: "k", PrivateKey: make([]byte, 64), CreatedAt: t0},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			_, err := auth.NewIssuer(context.Background(), tt.ks, cfg)
			if err == nil {
				t.Fatal("NewIssuer succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
		})
	}
}

func TestIssuerConcurrent(t *testing.T) {
	iss := newIssuer(t, &keyStore{}, testclock.New(t0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				tok, _, err := iss.Sign("u", auth.AMRPassword, "")
				if err == nil {
					_, err = iss.Verify(tok)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSign(b *testing.B) {
	iss := newIssuer(b, &keyStore{}, testclock.New(t0))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Sign("user-1", auth.AMRPassword, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	iss := newIssuer(b, &keyStore{}, testclock.New(t0))
	tok := mustSign(b, iss, "user-1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// Servers' clocks differ: a token whose nbf/iat is up to 30 s ahead of the
// verifier's clock is accepted, one 31 s ahead is not, and expiry gets no
// leeway.
func TestIssuerLeeway(t *testing.T) {
	ks := &keyStore{}
	c := testclock.New(t0)
	iss := newIssuer(t, ks, c)
	tests := []struct {
		name   string
		signAt time.Time
		ok     bool
	}{
		{"same time", t0, true},
		{"signer 29 s ahead", t0.Add(29 * time.Second), true},
		{"signer 30 s ahead", t0.Add(30 * time.Second), true},
		{"signer 31 s ahead", t0.Add(31 * time.Second), false},
		{"expired 1 s ago", t0.Add(-testTTL - time.Second), false},
		{"expires now", t0.Add(-testTTL), false},
		{"expires in 1 s", t0.Add(-testTTL + time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Set(tt.signAt)
			tok := mustSign(t, iss, "user-1")
			c.Set(t0)
			_, err := iss.Verify(tok)
			if tt.ok && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

// A token cannot claim a precise issue time outside the second its iat
// names (to escape a revocation).
func TestIssuerIssuedAtMicrosMustMatch(t *testing.T) {
	ks := &keyStore{}
	iss := newIssuer(t, ks, testclock.New(t0))
	priv := ed25519.PrivateKey(ks.keys[0].PrivateKey)
	type claims struct {
		jwt.RegisteredClaims
		IssuedAtMicros int64 `json:"iat_us"`
	}
	for _, tt := range []struct {
		us time.Time
		ok bool
	}{{t0.Add(999 * time.Millisecond), true}, {t0.Add(time.Second), false}, {t0.Add(-time.Microsecond), false}} {
		tok := forge(t, jwt.SigningMethodEdDSA, priv, ks.keys[0].ID, claims{goodClaims(t0), tt.us.UnixMicro()})
		c, err := iss.Verify(tok)
		if tt.ok && (err != nil || !c.IssuedAt.Equal(tt.us)) {
			t.Errorf("iat_us %v: %+v, %v", tt.us, c, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("iat_us %v accepted with iat %v", tt.us, t0)
		}
	}
}

func TestRevoked(t *testing.T) {
	at := t0.Add(500*time.Millisecond + 300*time.Nanosecond)
	tests := []struct {
		name       string
		issued     time.Time
		validAfter time.Time
		revoked    bool
	}{
		{"never revoked", t0, time.Time{}, false},
		{"issued a second before", at.Add(-time.Second), at, true},
		{"issued earlier in the same second", at.Add(-400 * time.Millisecond), at, true},
		{"issued 1 µs before", at.Add(-time.Microsecond), at, true},
		{"issued in the same microsecond", at.Truncate(time.Microsecond), at, true},
		{"issued 1 µs after", at.Add(time.Microsecond), at, false},
		{"issued later in the same second", at.Add(400 * time.Millisecond), at, false},
		{"issued a second after", at.Add(time.Second), at, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.Revoked(tt.issued, tt.validAfter); got != tt.revoked {
				t.Errorf("Revoked(%v, %v) = %v, want %v", tt.issued, tt.validAfter, got, tt.revoked)
			}
		})
	}
}

// An access token names its sign-in ("sid"), so the server can refuse it
// once that sign-in is ended; tokens signed without one verify with none.
func TestSignCarriesSID(t *testing.T) {
	iss := newIssuer(t, &keyStore{}, testclock.New(t0))
	for _, sid := range []string{"device-1", ""} {
		tok, _, err := iss.Sign("user-1", auth.AMRQR, sid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := iss.Verify(tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got.SID != sid {
			t.Errorf("SID = %q, want %q", got.SID, sid)
		}
	}
}
