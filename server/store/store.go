// Package store defines the storage contract of the qrlogin server: users,
// login sessions, refresh tokens, signing keys, OAuth clients and the audit
// log. Backends live in
// sub-packages (sqlite) and all run the conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
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
	ErrTokenReused = refresh.ErrReused
	// ErrTokenInvalid: the refresh token is revoked or expired.
	ErrTokenInvalid = refresh.ErrInvalid
)

// User is an account that can sign in on a phone.
type User struct {
	ID           string
	Username     string // unique, compared case-sensitively as stored
	DisplayName  string
	PasswordHash string // PHC-style Argon2id string; never leaves the server
	CreatedAt    time.Time
	// TokensValidAfter: access tokens issued at or before it are refused
	// (auth.Revoked). Set by a password change and by signing out
	// everywhere; zero if never. Stored to the microsecond.
	TokensValidAfter time.Time
}

// RefreshToken is a refresh token or phone cookie, stored only as its
// hash; its rules are in server/refresh.
type RefreshToken = refresh.Token

// Device is one sign-in of a user (a refresh chain, a phone cookie, or an
// app's access token); its rules are in server/devices.
type Device = devices.Device

// Client is an OAuth 2.0 client: an app registered to sign its users in
// through the device authorization grant.
type Client struct {
	ID   string // the OAuth client_id; the "aud" of its tokens
	Name string // shown on the phone's confirm screen as the app
	// SecretHash is the SHA-256 of a confidential client's secret; nil for
	// a public client (a desktop or command-line app that cannot keep one).
	SecretHash []byte
	CreatedAt  time.Time
}

// Public reports whether c has no secret.
func (c Client) Public() bool { return len(c.SecretHash) == 0 }

// SigningKey is an Ed25519 key that signs access tokens.
type SigningKey struct {
	ID         string // the JWT "kid"
	PrivateKey []byte // ed25519.PrivateKey (64 bytes)
	CreatedAt  time.Time
}

// AuditQuery selects audit entries. Entries come oldest first (by id).
type AuditQuery struct {
	UserID  string    // only this user's entries; every user's when empty
	Since   time.Time // only entries at or after it; all when zero
	AfterID int64     // only entries with a larger id: the next page
	Limit   int       // at most this many (the first of those selected); all when 0
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
	// SetPassword replaces a user's password hash and, in the same
	// transaction, does what RevokeUserTokens does but ends the devices
	// for api.ReasonPasswordChanged; ErrNotFound if there is no such user.
	SetPassword(ctx context.Context, userID, passwordHash string, now time.Time) error
	// RevokeUserTokens sets the user's TokensValidAfter to now (to the
	// microsecond), revokes every refresh token and phone cookie of
	// theirs and ends every device not yet ended (api.ReasonLogoutAll),
	// in one transaction; ErrNotFound if there is no such user.
	RevokeUserTokens(ctx context.Context, userID string, now time.Time) error
	// CatchUpUser brings the stored user with u's id forward to u by
	// account.CatchUp (moving a store again), in one transaction: if that
	// moves the sign-out everywhere, the user's tokens are revoked and
	// devices ended as RevokeUserTokens does at u.TokensValidAfter (for a
	// password change if the hash changed). It reports whether anything
	// changed. ErrNotFound if there is no such user, ErrConflict if the
	// stored one has another username or a password changed in this store
	// (account.ErrChangedHere).
	CatchUpUser(ctx context.Context, u User) (bool, error)
	// DeleteUser removes a user, their refresh tokens and their devices;
	// ErrNotFound if there is no such user.
	DeleteUser(ctx context.Context, userID string) error

	// CreateSession stores a new login session; ErrConflict if its id or
	// user code is taken by a stored session.
	CreateSession(ctx context.Context, s login.Session) error
	// Session returns the session with that id, or ErrNotFound.
	Session(ctx context.Context, id string) (login.Session, error)
	// SessionByUserCode returns the session with that user code (without
	// the dash), or ErrNotFound.
	SessionByUserCode(ctx context.Context, code string) (login.Session, error)
	// SessionByPollToken returns the session whose poll token has that
	// hash (an OAuth client's device code), or ErrNotFound.
	SessionByPollToken(ctx context.Context, hash []byte) (login.Session, error)
	// UpdateSession loads the session, calls fn on it and saves the result,
	// all in one transaction. If fn returns an error nothing is saved and
	// that error is returned (unwrapped) with the session as loaded.
	// ErrNotFound if there is no such session.
	UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error)
	// DeliverSession runs login.Deliver on the session and, if it succeeds,
	// stores rt (with rt.UserID set to the session's user) and the sign-in's
	// device d, completed from the session by devices.FromSession, in the
	// same transaction. It returns the session as saved. Errors from
	// login.Deliver are returned unwrapped. When rt.Hash is empty no token
	// is stored (an OAuth client that did not ask for offline_access), but
	// the device is: its access token can be ended too. d.ID is rt.FamilyID
	// when a token is stored.
	DeliverSession(ctx context.Context, id string, d Device, rt RefreshToken, now time.Time) (login.Session, error)
	// ExpireSessions sets the status of every live session (pending,
	// scanned, confirmed) whose ExpiresAt is not after now to expired, in
	// one transaction, and returns how many it changed. Each session is
	// changed once, however many servers call it.
	ExpireSessions(ctx context.Context, now time.Time) (int, error)
	// DeleteEndedSessions removes sessions that ended (by cancel, delivery
	// or expiry) before cutoff, and returns how many it removed.
	DeleteEndedSessions(ctx context.Context, cutoff time.Time) (int, error)

	// CreateRefreshToken stores a refresh token as it is, without a
	// device (moving a store; tests). New sign-ins use CreateDevice.
	CreateRefreshToken(ctx context.Context, rt RefreshToken) error
	// UpdateRefreshToken loads the token with that hash, calls fn on it
	// and saves it as fn left it (UsedAt, RevokedAt), all in one
	// transaction, and returns it as saved. If fn returns a token, that is
	// stored too (a rotated token's successor), and the family's device
	// follows it (devices.Rotated). Whenever the saved token is revoked,
	// every token of its family not yet revoked is revoked at the same
	// time, so a revocation always ends the whole chain, and the family's
	// device is ended: api.ReasonReuseDetected when fn returned
	// ErrTokenReused, api.ReasonSignedOut otherwise.
	// If fn returns ErrTokenReused (refresh.ErrReused), the token as fn
	// left it and its family's revocation are committed and the error is
	// returned, so detecting reuse and revoking cannot come apart. Any
	// other error from fn saves nothing and is returned unwrapped with the
	// token as loaded. ErrNotFound if there is no such token.
	UpdateRefreshToken(ctx context.Context, hash []byte, fn func(*RefreshToken) (*RefreshToken, error)) (RefreshToken, error)
	// RefreshToken returns the token with that hash whatever its state, or
	// ErrNotFound. Callers check UsedAt, RevokedAt and ExpiresAt.
	RefreshToken(ctx context.Context, hash []byte) (RefreshToken, error)
	// DeleteExpiredRefreshTokens removes tokens that expired before cutoff.
	DeleteExpiredRefreshTokens(ctx context.Context, cutoff time.Time) (int, error)
	// RefreshTokens returns up to limit stored tokens and phone cookies in
	// whatever state (used and revoked ones too), ordered by id in byte
	// order, starting after the id afterID ("" for the first page); every
	// one when limit is 0. It is for copying a store (store copy).
	RefreshTokens(ctx context.Context, afterID string, limit int) ([]RefreshToken, error)

	// CreateDevice stores a new sign-in: its device d and its first
	// refresh token or phone cookie rt (d.ID == rt.FamilyID), in one
	// transaction. ErrConflict if either id or the hash is taken,
	// ErrNotFound if the user does not exist.
	CreateDevice(ctx context.Context, d Device, rt RefreshToken) error
	// Device returns the device with that id whatever its state, or
	// ErrNotFound.
	Device(ctx context.Context, id string) (Device, error)
	// Devices returns the user's devices live at now (devices.Device.Live),
	// newest sign-in first.
	Devices(ctx context.Context, userID string, now time.Time) ([]Device, error)
	// EndDevice ends the user's device id for reason at now and revokes
	// its refresh chain or phone cookie, in one transaction, and returns
	// it as saved. ErrNotFound if there is no such device of that user or
	// it was ended already.
	EndDevice(ctx context.Context, userID, id, reason string, now time.Time) (Device, error)
	// TouchDevice records a use of a device not ended: LastUsedAt (never
	// moving back) and LastIP. Callers decide with devices.TouchDue
	// whether it is worth a write. ErrNotFound if there is no such device
	// or it has ended.
	TouchDevice(ctx context.Context, id, ip string, now time.Time) error
	// DeleteOldDevices removes devices that ended or expired before
	// cutoff, and returns how many it removed.
	DeleteOldDevices(ctx context.Context, cutoff time.Time) (int, error)
	// ListDevices returns up to limit stored devices in whatever state
	// (ended and expired ones too), ordered by id in byte order, starting
	// after the id afterID ("" for the first page); every one when limit
	// is 0. It is for copying a store (store copy).
	ListDevices(ctx context.Context, afterID string, limit int) ([]Device, error)
	// ImportDevice stores d exactly as given, ended or not, without
	// touching any token (moving a store). ErrConflict if its id is taken,
	// ErrNotFound if the user does not exist.
	ImportDevice(ctx context.Context, d Device) error
	// CatchUpDevice brings the stored device with d's id forward to d by
	// devices.CatchUp (moving a store again), in one transaction: if that
	// ends it, its refresh chain or phone cookie is revoked at d.EndedAt
	// too. It reports whether anything changed. ErrNotFound if there is no
	// such device, ErrConflict if the stored one is another sign-in
	// (devices.SameSignIn).
	CatchUpDevice(ctx context.Context, d Device) (bool, error)

	// SigningKeys returns every stored signing key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// CreateSigningKey stores a new signing key; ErrConflict if its id is
	// taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// DeleteSigningKey removes a signing key (retiring it: tokens it
	// signed are refused from then on); ErrNotFound if there is none.
	DeleteSigningKey(ctx context.Context, id string) error

	// CreateClient stores an OAuth client; ErrConflict if its id is taken.
	CreateClient(ctx context.Context, c Client) error
	// Client returns the OAuth client with that id, or ErrNotFound.
	Client(ctx context.Context, id string) (Client, error)
	// Clients returns every OAuth client ordered by id.
	Clients(ctx context.Context) ([]Client, error)
	// DeleteClient removes an OAuth client and, in the same transaction,
	// every refresh token and device issued to it, so a client registered
	// again under the same id inherits nothing; ErrNotFound if there is
	// none.
	DeleteClient(ctx context.Context, id string) error

	// AppendAudit adds an entry to the audit log. A zero e.ID is assigned
	// by the store, above every id it ever assigned; a non-zero one (an
	// entry copied from another store) is kept, and ErrConflict if taken.
	// Times are kept to the microsecond.
	AppendAudit(ctx context.Context, e audit.Entry) error
	// AuditEntries returns the entries q selects, oldest first (by id). An
	// entry without detail has a nil Detail.
	AuditEntries(ctx context.Context, q AuditQuery) ([]audit.Entry, error)
	// DeleteAuditBefore removes the entries older than cutoff and returns
	// how many it removed.
	DeleteAuditBefore(ctx context.Context, cutoff time.Time) (int, error)

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
