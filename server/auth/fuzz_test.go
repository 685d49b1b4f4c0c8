package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
)

// fuzzKeys is an in-memory auth.KeyStore for the fuzz targets.
type fuzzKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (k *fuzzKeys) SigningKeys(context.Context) ([]store.SigningKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]store.SigningKey(nil), k.keys...), nil
}

func (k *fuzzKeys) CreateSigningKey(_ context.Context, sk store.SigningKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, sk)
	return nil
}

// fuzzIssuer is an issuer with a fixed clock, and a token it signed.
func fuzzIssuer(tb testing.TB) (*auth.Issuer, *fuzzKeys, string) {
	tb.Helper()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ks := &fuzzKeys{}
	iss, err := auth.NewIssuer(context.Background(), ks, auth.IssuerConfig{
		Issuer: "qrlogin", Audience: "qrlogin", TTL: 15 * time.Minute, Now: func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tok, _, err := iss.Sign("user-1", auth.AMRPassword, "")
	if err != nil {
		tb.Fatal(err)
	}
	return iss, ks, tok
}

// tokenSeeds are strings shaped like tokens, forged ones among them: no
// algorithm, an HMAC keyed with the public key, another Ed25519 key.
func tokenSeeds(tb testing.TB, ks *fuzzKeys, valid string) []string {
	tb.Helper()
	head, rest, _ := strings.Cut(valid, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	kid := ks.keys[0].ID
	claims := jwt.MapClaims{"sub": "user-1", "iss": "qrlogin", "aud": "qrlogin", "exp": 4102444800, "iat": 1, "nbf": 1}
	var seeds []string
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	none.Header["kid"] = kid
	if s, err := none.SignedString(jwt.UnsafeAllowNoneSignatureType); err == nil {
		seeds = append(seeds, s)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = kid
	if s, err := hs.SignedString([]byte(ks.keys[0].PrivateKey[32:])); err == nil {
		seeds = append(seeds, s)
	}
	other, _, _ := fuzzIssuer(tb)
	if s, _, err := other.Sign("user-1", auth.AMRPassword, ""); err == nil {
		seeds = append(seeds, s)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return append(seeds,
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		valid+".", valid+"=", " "+valid, valid+"\n", strings.ToUpper(valid),
		head+"."+payload+".", head+"."+payload, head+".."+sig, "."+payload+"."+sig,
		head+"."+b64([]byte(`{"sub":"user-2","iss":"qrlogin","aud":"qrlogin","exp":4102444800}`))+"."+sig,
		b64([]byte(`{"alg":"EdDSA","kid":"`+kid+`","crit":["x"]}`))+"."+payload+"."+sig,
		b64([]byte(`{"alg":"EdDSA","kid":["`+kid+`"]}`))+"."+payload+"."+sig,
		b64([]byte(`{"alg":"none"}`))+"."+payload+".",
		strings.Repeat("A", 5000),
	)
}

// FuzzVerify: Issuer.Verify on any string. Only a token the issuer signed
// passes, and a refusal always wraps ErrInvalidToken.
func FuzzVerify(f *testing.F) {
	iss, ks, valid := fuzzIssuer(f)
	f.Add(valid)
	for _, s := range tokenSeeds(f, ks, valid) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := iss.Verify(token)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify(%q): %v does not wrap ErrInvalidToken", token, err)
			}
			return
		}
		if token != valid {
			t.Fatalf("Verify(%q) accepted a token that was never signed: %+v", token, c)
		}
		if c.UserID != "user-1" {
			t.Fatalf("Verify(valid) = %+v", c)
		}
	})
}

// FuzzVerifyMutated: a signed token with any change made to it (a byte
// replaced, inserted or removed, bits flipped, a segment swapped) never
// verifies.
func FuzzVerifyMutated(f *testing.F) {
	iss, _, valid := fuzzIssuer(f)
	for _, pos := range []uint16{0, 1, 10, 40, 100, uint16(len(valid) - 2), uint16(len(valid) - 1), uint16(len(valid))} {
		for op := range uint8(4) {
			for _, b := range []byte{0, 1, '.', '=', 'A', ' ', '\n', '\r', 0xff} {
				f.Add(pos, op, b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, pos uint16, op, b byte) {
		p := int(pos) % (len(valid) + 1)
		var m string
		switch op % 4 {
		case 0: // replace
			if p == len(valid) {
				return
			}
			m = valid[:p] + string([]byte{b}) + valid[p+1:]
		case 1: // insert
			m = valid[:p] + string([]byte{b}) + valid[p:]
		case 2: // remove b%8+1 bytes
			end := min(p+int(b%8)+1, len(valid))
			m = valid[:p] + valid[end:]
		case 3: // flip bits of one byte
			if p == len(valid) || b == 0 {
				return
			}
			m = valid[:p] + string([]byte{valid[p] ^ b}) + valid[p+1:]
		}
		if m == valid {
			return
		}
		if c, err := iss.Verify(m); err == nil {
			t.Fatalf("mutated token %q (op %d at %d with %#x) verified: %+v", m, op%4, p, b, c)
		}
	})
}

// FuzzNormalizeUserCode: what a person types as a user code. A code is
// accepted only as UserCodeLen letters of the alphabet, the same way
// however it is dashed, spaced or cased.
func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{
		"", "BCDF-GHJK", "bcdfghjk", "BCDF GHJK", " B-C-D-F-G-H-J-K ", "BCDFGHJ", "BCDFGHJKL", "BCDF-GHJA",
		"ＢCDFGHJK", "ß", "bcdf\u0130hjk", "\xff", strings.Repeat("-", 40), strings.Repeat(" ", 24) + "BCDFGHJK",
		"BCDF\u2010GHJK", "bcdf\tghjk", "K\u212aBCDFGH",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, ok := auth.NormalizeUserCode(in)
		if !ok {
			if code != "" {
				t.Fatalf("NormalizeUserCode(%q) = %q, false", in, code)
			}
			return
		}
		if len(code) != auth.UserCodeLen || strings.Trim(code, auth.UserCodeAlphabet) != "" {
			t.Fatalf("NormalizeUserCode(%q) = %q: not %d letters of the alphabet", in, code, auth.UserCodeLen)
		}
		if len(in) > 4*auth.UserCodeLen {
			t.Fatalf("NormalizeUserCode accepted %d bytes", len(in))
		}
		// Only case, dashes and spaces may differ from the code.
		if stripped := strings.NewReplacer("-", "", " ", "").Replace(in); !strings.EqualFold(stripped, code) || len(stripped) != len(code) {
			t.Fatalf("NormalizeUserCode(%q) = %q", in, code)
		}
		for _, again := range []string{code, auth.FormatUserCode(code), strings.ToLower(auth.FormatUserCode(code))} {
			if c, ok := auth.NormalizeUserCode(again); !ok || c != code {
				t.Fatalf("NormalizeUserCode(%q) = %q, %v; want %q", again, c, ok, code)
			}
		}
	})
}
