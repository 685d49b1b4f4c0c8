// Package store defines the storage contract of the qrlogin server: users,
// login sessions, refresh tokens and signing keys. Backends live in
// sub-packages (sqlite) and all run the conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/qrlogin/qrlogin/server/login"
)

// Sentinel errors every backend returns (wrapped or not; test with errors.Is).
var (
	// ErrNotFound: no record with that key.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key (username, session id, user code, token
	// hash) is taken.
	ErrConflict = errors.New("already exists")
	// ErrTokenReused: a refresh token that was already rotated was
	// presented again; its whole family is now revoked.
	ErrTokenReused = errors.New("refresh token reused")
	// ErrTokenInvalid: the refresh token is revoked or expired.
	ErrTokenInvalid = errors.New("refresh token revoked or expired")
)

// User is an account that can sign in on a phone.
type User struct {
	ID           string
	Username     string // unique, compared case-sensitively as stored
	DisplayName  string
	PasswordHash string // PHC-style Argon2id string; never leaves the server
	CreatedAt    time.Time
}

// RefreshToken is a long-lived opaque token, stored only as its hash.
// Tokens descend from one sign-in in a family: rotating one marks it used
// and issues its successor in the same family.
type RefreshToken struct {
	ID        string
	Hash      []byte // SHA-256 of the token
	UserID    string
	FamilyID  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
	RevokedAt time.Time // zero until revoked
}

// SigningKey is an Ed25519 key that signs access tokens.
type SigningKey struct {
	ID         string // the JWT "kid"
	PrivateKey []byte // ed25519.PrivateKey (64 bytes)
	CreatedAt  time.Time
}

// Store is the whole storage contract. Implementations are safe for
// concurrent use. Every method that changes state does so in one
// transaction.
type Store interface {
	// CreateUser stores u; ErrConflict if the username is taken.
	CreateUser(ctx context.Context, u User) error
	// User returns the user with that id, or ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// UserByUsername returns the user with that username, or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (User, error)
	// Users returns every user ordered by username.
	Users(ctx context.Context) ([]User, error)
	// CountUsers returns how many users exist.
	CountUsers(ctx context.Context) (int, error)
	// SetPassword replaces a user's password hash and revokes all of the
	// user's refresh tokens; ErrNotFound if there is no such user.
	SetPassword(ctx context.Context, userID, passwordHash string, now time.Time) error
	// DeleteUser removes a user and their refresh tokens; ErrNotFound if
	// there is no such user.
	DeleteUser(ctx context.Context, userID string) error

	// CreateSession stores a new login session; ErrConflict if its id or
	// user code is taken by a stored session.
	CreateSession(ctx context.Context, s login.Session) error
	// Session returns the session with that id, or ErrNotFound.
	Session(ctx context.Context, id string) (login.Session, error)
	// SessionByUserCode returns the session with that user code (without
	// the dash), or ErrNotFound.
	SessionByUserCode(ctx context.Context, code string) (login.Session, error)
	// UpdateSession loads the session, calls fn on it and saves the result,
	// all in one transaction. If fn returns an error nothing is saved and
	// that error is returned (unwrapped) with the session as loaded.
	// ErrNotFound if there is no such session.
	UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error)
	// DeliverSession runs login.Deliver on the session and, if it succeeds,
	// stores rt (with rt.UserID set to the session's user) in the same
	// transaction. It returns the session as saved. Errors from
	// login.Deliver are returned unwrapped.
	DeliverSession(ctx context.Context, id string, rt RefreshToken, now time.Time) (login.Session, error)
	// DeleteEndedSessions removes sessions that ended (by cancel, delivery
	// or expiry) before cutoff, and returns how many it removed.
	DeleteEndedSessions(ctx context.Context, cutoff time.Time) (int, error)

	// CreateRefreshToken stores a new refresh token (a new family when
	// rt.FamilyID is new).
	CreateRefreshToken(ctx context.Context, rt RefreshToken) error
	// RotateRefreshToken finds the token with hash oldHash; if it is live
	// at now it marks it used and stores next in the same family and for
	// the same user (next.UserID and next.FamilyID are set by the store),
	// returning the old token. If it was already used, the whole family is
	// revoked and ErrTokenReused is returned; if revoked or expired,
	// ErrTokenInvalid; if unknown, ErrNotFound.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeRefreshToken revokes the family of the token with that hash
	// (signing out ends the whole chain); ErrNotFound if unknown. Revoking
	// a revoked token is not an error.
	RevokeRefreshToken(ctx context.Context, hash []byte, now time.Time) (RefreshToken, error)
	// RefreshToken returns the token with that hash whatever its state, or
	// ErrNotFound. Callers check UsedAt, RevokedAt and ExpiresAt.
	RefreshToken(ctx context.Context, hash []byte) (RefreshToken, error)
	// DeleteExpiredRefreshTokens removes tokens that expired before cutoff.
	DeleteExpiredRefreshTokens(ctx context.Context, cutoff time.Time) (int, error)

	// SigningKeys returns every stored signing key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// CreateSigningKey stores a new signing key; ErrConflict if its id is
	// taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
