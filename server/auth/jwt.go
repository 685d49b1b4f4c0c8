package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/qrlogin/qrlogin/server/store"
)

// ErrInvalidToken is returned (wrapped) by Issuer.Verify for every token it
// refuses, whatever the reason, so callers need only one check.
var ErrInvalidToken = errors.New("invalid access token")

// jwsChars are the characters of a compact JWS: base64url and dots.
const jwsChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

// maxTokenLen bounds what Verify will parse; our tokens are ~300 bytes.
const maxTokenLen = 4096

// Leeway is the clock skew between servers that Verify allows on a
// token's "nbf" and "iat". Expiry is checked without it.
const Leeway = 30 * time.Second

// The sign-in methods an access token's "amr" claim names (RFC 8176).
const (
	// AMRPassword: the user typed their password (POST /auth/login, the
	// phone page). Only such tokens may act as the phone.
	AMRPassword = "pwd"
	// AMRQR: tokens delivered to a desktop through a login session.
	AMRQR = "qr"
)

// KeyStore is where an Issuer keeps its signing keys; server/store's Store
// satisfies it.
type KeyStore interface {
	// SigningKeys returns every stored key.
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	// CreateSigningKey stores k; store.ErrConflict if its id is taken.
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	Issuer   string           // "iss" claim written and required, e.g. "qrlogin"
	Audience string           // "aud" claim written and required
	TTL      time.Duration    // lifetime of an access token
	Now      func() time.Time // clock; time.Now when nil
}

// Claims is what a valid access token says.
type Claims struct {
	UserID string // "sub"
	ID     string // "jti", unique per token
	// IssuedAt is when the token was signed, to the microsecond ("iat_us";
	// "iat" when a token lacks it): whole-second "iat" cannot tell a token
	// signed just before a revocation from one signed just after.
	IssuedAt  time.Time
	ExpiresAt time.Time
	AMR       []string // "amr": how the user signed in
	// Set in a client's token (VerifyClient): the OAuth client it was
	// issued to ("aud") and the scope it was granted.
	ClientID string
	Scope    string
	// SID is the sign-in (the device, server/devices) the token belongs
	// to ("sid"); empty in tokens signed before devices existed.
	SID string
}

// HasAMR reports whether the token says the user signed in with method.
func (c Claims) HasAMR(method string) bool { return slices.Contains(c.AMR, method) }

// Revoked reports whether a token issued at issued is revoked by a user's
// tokens-valid-after time validAfter (store.User.TokensValidAfter). Both
// are compared to the microsecond, the precision of the claim and of the
// stores, and a token issued in the very microsecond of the revocation is
// revoked: of two events that close, the revocation wins.
func Revoked(issued, validAfter time.Time) bool {
	if validAfter.IsZero() {
		return false
	}
	return !issued.Truncate(time.Microsecond).After(validAfter.Truncate(time.Microsecond))
}

// tokenClaims is the JWT payload of an access token.
type tokenClaims struct {
	jwt.RegisteredClaims
	AMR []string `json:"amr,omitempty"`
	// IssuedAtMicros is "iat" in Unix microseconds.
	IssuedAtMicros int64 `json:"iat_us,omitempty"`
	// In an OAuth client's token (RFC 9068): the client and its scope.
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	// SID is the sign-in (device) the token belongs to (OpenID Connect
	// Front-Channel Logout's "sid").
	SID string `json:"sid,omitempty"`
}

// Issuer signs and verifies access tokens: JWTs signed with Ed25519
// (EdDSA) whose header names the key ("kid"). It signs with the newest
// stored key and accepts any stored key, so a new key can be introduced
// without invalidating tokens already handed out. It is immutable after
// NewIssuer and safe for concurrent use.
type Issuer struct {
	cfg     IssuerConfig
	signKID string
	signKey ed25519.PrivateKey
	pub     map[string]ed25519.PublicKey
	jwks    JWKS
	parser  *jwt.Parser
}

// NewIssuer loads the signing keys from ks, creating and storing one if
// there are none (the first start of a server).
func NewIssuer(ctx context.Context, ks KeyStore, cfg IssuerConfig) (*Issuer, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("new issuer: issuer and audience are required")
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("new issuer: TTL %v must be positive", cfg.TTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	keys, err := ks.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("new issuer: load signing keys: %w", err)
	}
	if len(keys) == 0 {
		k, err := newSigningKey(cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("new issuer: %w", err)
		}
		// ErrConflict means another process stored a key at the same time;
		// reloading picks up whatever is there now. Reloading after a
		// success too means two racing servers see each other's keys if
		// the store already has them.
		if err := ks.CreateSigningKey(ctx, k); err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("new issuer: store signing key: %w", err)
		}
		if keys, err = ks.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("new issuer: reload signing keys: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("new issuer: signing key was stored but cannot be loaded")
		}
	}

	iss := &Issuer{cfg: cfg, pub: make(map[string]ed25519.PublicKey, len(keys))}
	var newest time.Time
	for _, k := range keys {
		if len(k.PrivateKey) != ed25519.PrivateKeySize || k.ID == "" {
			return nil, fmt.Errorf("new issuer: signing key %q is malformed", k.ID)
		}
		priv := ed25519.PrivateKey(k.PrivateKey)
		pub := priv.Public().(ed25519.PublicKey)
		if _, dup := iss.pub[k.ID]; dup {
			return nil, fmt.Errorf("new issuer: duplicate signing key id %q", k.ID)
		}
		iss.pub[k.ID] = pub
		iss.jwks.Keys = append(iss.jwks.Keys, JWK{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(pub),
			Kid: k.ID,
			Alg: jwt.SigningMethodEdDSA.Alg(),
			Use: "sig",
		})
		if iss.signKey == nil || k.CreatedAt.After(newest) {
			iss.signKID, iss.signKey, newest = k.ID, priv, k.CreatedAt
		}
	}
	// Issuer and audience are checked by Verify and VerifyClient, which
	// expect different ones.
	iss.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithStrictDecoding(),
	)
	return iss, nil
}

// newSigningKey makes a fresh Ed25519 key with a random 16-character kid.
func newSigningKey(now time.Time) (store.SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	var kid [12]byte
	rand.Read(kid[:])
	return store.SigningKey{
		ID:         base64.RawURLEncoding.EncodeToString(kid[:]),
		PrivateKey: priv,
		CreatedAt:  now.UTC(),
	}, nil
}

// TTL returns the lifetime of the tokens Sign makes.
func (i *Issuer) TTL() time.Duration { return i.cfg.TTL }

// Sign returns an access token for userID, saying it signed in with
// method amr (AMRPassword or AMRQR) in the sign-in sid (its device), and
// the moment it expires. Its issuer and audience are the configured ones:
// it is a token for this server's own API.
func (i *Issuer) Sign(userID, amr, sid string) (string, time.Time, error) {
	return i.sign(tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: userID, Issuer: i.cfg.Issuer, Audience: jwt.ClaimStrings{i.cfg.Audience}},
		AMR:              []string{amr},
		SID:              sid,
	})
}

// SignClient returns an access token for userID issued to the OAuth
// client clientID (RFC 9068): "iss" is issuer (the server's public URL,
// as its OpenID Connect discovery says), "aud" and "client_id" are the
// client, "scope" what it was granted, "sid" the sign-in (device). Verify
// refuses it, so a client's token never works at this server's own API.
func (i *Issuer) SignClient(issuer, clientID, userID, amr, scope, sid string) (string, time.Time, error) {
	if issuer == "" || clientID == "" || clientID == i.cfg.Audience {
		return "", time.Time{}, fmt.Errorf("sign client access token: issuer %q and client %q must be set and the client must not be %q", issuer, clientID, i.cfg.Audience)
	}
	return i.sign(tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: userID, Issuer: issuer, Audience: jwt.ClaimStrings{clientID}},
		AMR:              []string{amr},
		ClientID:         clientID,
		Scope:            scope,
		SID:              sid,
	})
}

// sign fills in the times and id of tc and signs it.
func (i *Issuer) sign(tc tokenClaims) (string, time.Time, error) {
	if tc.Subject == "" {
		return "", time.Time{}, errors.New("sign access token: empty user id")
	}
	if len(tc.AMR) != 1 || tc.AMR[0] == "" {
		return "", time.Time{}, errors.New("sign access token: empty sign-in method")
	}
	issued := i.cfg.Now().Truncate(time.Microsecond)
	// JWT times are whole seconds; truncating here makes the returned
	// expiry equal to the token's.
	now := issued.Truncate(time.Second)
	exp := now.Add(i.cfg.TTL)
	tc.IssuedAt = jwt.NewNumericDate(now)
	tc.NotBefore = jwt.NewNumericDate(now)
	tc.ExpiresAt = jwt.NewNumericDate(exp)
	tc.ID = NewID()
	tc.IssuedAtMicros = issued.UnixMicro()
	s, err := i.signJWT(tc)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return s, exp, nil
}

// signJWT signs claims with the newest key, naming it in "kid".
func (i *Issuer) signJWT(claims jwt.Claims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = i.signKID
	return tok.SignedString(i.signKey)
}

// IDToken is what an OpenID Connect ID token says (OIDC Core §2).
type IDToken struct {
	Issuer   string    // "iss": the public URL, the discovery document's issuer
	Subject  string    // "sub": the user's id
	Audience string    // "aud": the client id
	AuthTime time.Time // "auth_time": when the user signed in
	// Profile claims, sent when the scope has "profile".
	Name              string // "name": the display name
	PreferredUsername string // "preferred_username": the username
}

// idTokenClaims is the JWT payload of an ID token.
type idTokenClaims struct {
	jwt.RegisteredClaims
	AuthTime          int64    `json:"auth_time"`
	AMR               []string `json:"amr,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
}

// SignIDToken signs an OpenID Connect ID token valid for the access-token
// lifetime, saying the user signed in by QR code ("amr": ["qr"]).
func (i *Issuer) SignIDToken(t IDToken) (string, error) {
	if t.Issuer == "" || t.Subject == "" || t.Audience == "" || t.AuthTime.IsZero() {
		return "", errors.New("sign ID token: issuer, subject, audience and auth time are required")
	}
	now := i.cfg.Now().Truncate(time.Second)
	s, err := i.signJWT(idTokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.Issuer,
			Subject:   t.Subject,
			Audience:  jwt.ClaimStrings{t.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.cfg.TTL)),
		},
		AuthTime:          t.AuthTime.Unix(),
		AMR:               []string{AMRQR},
		Name:              t.Name,
		PreferredUsername: t.PreferredUsername,
	})
	if err != nil {
		return "", fmt.Errorf("sign ID token: %w", err)
	}
	return s, nil
}

// Verify checks token's signature (EdDSA only, by a known kid), issuer,
// audience and times, and returns its claims. Only tokens for this
// server's own API pass: issuer and audience must be the configured ones,
// so an OAuth client's token (SignClient) is refused. "nbf" and "iat" may
// be up to Leeway in the future (another server's clock); "exp" is exact.
// Every failure wraps ErrInvalidToken.
func (i *Issuer) Verify(token string) (Claims, error) {
	tc, c, err := i.verify(token)
	if err != nil {
		return Claims{}, err
	}
	if tc.Issuer != i.cfg.Issuer || len(tc.Audience) != 1 || tc.Audience[0] != i.cfg.Audience || tc.ClientID != "" {
		return Claims{}, fmt.Errorf("%w: not a token for this API", ErrInvalidToken)
	}
	return c, nil
}

// VerifyClient checks a token that SignClient made for an OAuth client:
// as Verify does, but "iss" must be issuer, and "aud" exactly one client
// (never this server's own audience), named in Claims.ClientID. Whether
// that client still exists is the caller's to check.
func (i *Issuer) VerifyClient(token, issuer string) (Claims, error) {
	tc, c, err := i.verify(token)
	if err != nil {
		return Claims{}, err
	}
	if tc.Issuer != issuer || len(tc.Audience) != 1 || tc.Audience[0] == i.cfg.Audience || tc.Audience[0] != tc.ClientID {
		return Claims{}, fmt.Errorf("%w: not a client's token", ErrInvalidToken)
	}
	c.ClientID, c.Scope = tc.ClientID, tc.Scope
	return c, nil
}

// verify checks signature, subject and times.
func (i *Issuer) verify(token string) (tokenClaims, Claims, error) {
	if len(token) > maxTokenLen {
		return tokenClaims{}, Claims{}, fmt.Errorf("%w: too long", ErrInvalidToken)
	}
	// base64 decoding skips line breaks, so without this check a token
	// with one added to its signature would verify as the original.
	if strings.TrimLeft(token, jwsChars) != "" {
		return tokenClaims{}, Claims{}, fmt.Errorf("%w: not a compact JWS", ErrInvalidToken)
	}
	var tc tokenClaims
	_, err := i.parser.ParseWithClaims(token, &tc, i.key)
	if err != nil {
		return tokenClaims{}, Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	rc := tc.RegisteredClaims
	if rc.Subject == "" {
		return tokenClaims{}, Claims{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	// The parser's leeway applies to "exp" too; expiry gets none.
	if !i.cfg.Now().Before(rc.ExpiresAt.Time) {
		return tokenClaims{}, Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenExpired)
	}
	c := Claims{UserID: rc.Subject, ID: rc.ID, ExpiresAt: rc.ExpiresAt.Time, AMR: tc.AMR, SID: tc.SID}
	if rc.IssuedAt != nil {
		c.IssuedAt = rc.IssuedAt.Time
	}
	// iat_us must lie in iat's second, so a token cannot claim a later
	// issue time than its iat says.
	if tc.IssuedAtMicros != 0 {
		us := time.UnixMicro(tc.IssuedAtMicros)
		if rc.IssuedAt == nil || !us.Truncate(time.Second).Equal(rc.IssuedAt.Time) {
			return tokenClaims{}, Claims{}, fmt.Errorf("%w: iat_us does not match iat", ErrInvalidToken)
		}
		c.IssuedAt = us
	}
	return tc, c, nil
}

// key finds the public key named by the token's kid. The parser has
// already refused every algorithm but EdDSA before calling it.
func (i *Issuer) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	pub, ok := i.pub[kid]
	if !ok {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	return pub, nil
}

// JWKS returns the public keys, for GET /.well-known/jwks.json.
func (i *Issuer) JWKS() JWKS {
	return JWKS{Keys: append([]JWK(nil), i.jwks.Keys...)}
}

// JWKS is a JSON Web Key Set (RFC 7517).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public key in a JWKS, in the OKP form of RFC 8037.
type JWK struct {
	Kty string `json:"kty"` // "OKP"
	Crv string `json:"crv"` // "Ed25519"
	X   string `json:"x"`   // public key, unpadded base64url
	Kid string `json:"kid"`
	Alg string `json:"alg"` // "EdDSA"
	Use string `json:"use"` // "sig"
}
