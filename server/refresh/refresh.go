// Package refresh owns the rules of long-lived sign-ins: refresh tokens
// (rotated on every use, with reuse detection) and phone cookies, both
// stored hashed as a Token in a family that descends from one sign-in.
//
// It holds no HTTP and no SQL. Stores load a Token, run the functions here
// on it inside one transaction and save the result (store.Store's
// UpdateRefreshToken), so every rule lives in one place.
package refresh

import (
	"errors"
	"time"
)

// Kind says what a token is for. A phone cookie is never accepted as a
// refresh token, and a refresh token never signs in a phone's browser.
type Kind string

// The kinds of token.
const (
	KindRefresh Kind = "refresh" // a desktop's or API client's refresh token
	KindPhone   Kind = "phone"   // the phone page's sign-in cookie
)

// Errors returned by the rules. Stores return them unwrapped from
// UpdateRefreshToken, so callers test with errors.Is.
var (
	// ErrReused: a token that was already rotated was presented again.
	// Rotate revokes it, and the store revokes its whole family.
	ErrReused = errors.New("refresh token reused")
	// ErrInvalid: the token is revoked, expired, past its chain's maximum
	// age, or of the wrong kind.
	ErrInvalid = errors.New("refresh token revoked or expired")
)

// Token is a long-lived opaque token, stored only as its hash. Tokens
// descend from one sign-in in a family: rotating one marks it used and
// issues its successor in the same family, with the family's user, kind,
// AMR and AuthTime.
type Token struct {
	ID        string
	Hash      []byte // SHA-256 of the token
	UserID    string
	FamilyID  string
	Kind      Kind
	AMR       string    // how the family's sign-in was made: "pwd" or "qr"
	AuthTime  time.Time // the family's first sign-in; the chain ends MaxAge after it
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
	RevokedAt time.Time // zero until revoked
	// ClientID is the OAuth client the family was issued to, and Scope
	// what it was granted; both empty for the qrlogin API's own sign-ins.
	// A token is only ever accepted from the client it was issued to.
	ClientID string
	Scope    string
}

// Policy is how long tokens live.
type Policy struct {
	// TTL is the lifetime of one token (and of a phone cookie).
	TTL time.Duration
	// MaxAge is how long a family lives after its first sign-in, however
	// often it is refreshed.
	MaxAge time.Duration
}

// Start returns the first token of a new family: a sign-in of kind by
// userID made with amr at now. id, hash and family are fresh random values
// chosen by the caller.
func (p Policy) Start(kind Kind, userID, amr, id, family string, hash []byte, now time.Time) Token {
	now = now.UTC()
	return Token{
		ID:        id,
		Hash:      hash,
		UserID:    userID,
		FamilyID:  family,
		Kind:      kind,
		AMR:       amr,
		AuthTime:  now,
		CreatedAt: now,
		ExpiresAt: p.expiry(now, now),
	}
}

// expiry is when a token created at now in a family signed in at auth
// expires: after TTL, but never after the family's end.
func (p Policy) expiry(auth, now time.Time) time.Time {
	exp := now.Add(p.TTL)
	if end := auth.Add(p.MaxAge); p.MaxAge > 0 && end.Before(exp) {
		exp = end
	}
	return exp
}

// Live reports whether rt may be used at now as a token of kind: not
// revoked, not expired, and its family not past MaxAge. It says nothing of
// UsedAt (Rotate handles reuse).
func (p Policy) Live(rt Token, kind Kind, now time.Time) error {
	switch {
	case rt.Kind != kind:
		return ErrInvalid
	case !rt.RevokedAt.IsZero(), !now.Before(rt.ExpiresAt):
		return ErrInvalid
	case p.MaxAge > 0 && !now.Before(rt.AuthTime.Add(p.MaxAge)):
		return ErrInvalid
	}
	return nil
}

// Rotate uses refresh token rt, presented by clientID ("" for the qrlogin
// API itself), at now: it marks rt used and returns its successor, which
// has id and hash and everything else from rt's family. A token issued to
// another client is ErrInvalid and left as it was: whoever presents it is
// not its holder, and no reuse is recorded.
// A token already used is a stolen copy or a replay: Rotate revokes it and
// returns ErrReused, and the whole family must be revoked with it. A
// revoked, expired or too old token, or a phone cookie, is ErrInvalid and
// rt is left as it was.
func (p Policy) Rotate(rt *Token, clientID, id string, hash []byte, now time.Time) (Token, error) {
	now = now.UTC()
	if rt.ClientID != clientID {
		return Token{}, ErrInvalid
	}
	if rt.Kind == KindRefresh && !rt.UsedAt.IsZero() {
		Revoke(rt, now)
		return Token{}, ErrReused
	}
	if err := p.Live(*rt, KindRefresh, now); err != nil {
		return Token{}, err
	}
	rt.UsedAt = now
	return Token{
		ID:        id,
		Hash:      hash,
		UserID:    rt.UserID,
		FamilyID:  rt.FamilyID,
		Kind:      rt.Kind,
		AMR:       rt.AMR,
		AuthTime:  rt.AuthTime,
		CreatedAt: now,
		ExpiresAt: p.expiry(rt.AuthTime, now),
		ClientID:  rt.ClientID,
		Scope:     rt.Scope,
	}, nil
}

// Revoke marks rt revoked at now, keeping an earlier revocation time. A
// store revokes the whole family of a token it saves newly revoked.
func Revoke(rt *Token, now time.Time) {
	if rt.RevokedAt.IsZero() {
		rt.RevokedAt = now.UTC()
	}
}
