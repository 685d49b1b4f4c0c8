// Package audit names the security events the server records for its
// operators (qrlogin-server audit): who signed in where, what was ended
// and by whom. An entry never holds a secret: no password, token or
// token hash.
package audit

import (
	"context"
	"time"
)

// Event is the kind of a security event.
type Event string

// The events recorded.
const (
	PasswordSignIn       Event = "password_sign_in"        // a password sign-in succeeded (phone page or API)
	PasswordSignInFailed Event = "password_sign_in_failed" // wrong username or password
	SessionConfirmed     Event = "session_confirmed"       // a phone confirmed a login session
	SessionCancelled     Event = "session_cancelled"       // a phone cancelled a login session
	TokensDelivered      Event = "tokens_delivered"        // a confirmed session's tokens went to its desktop or app
	RefreshReuse         Event = "refresh_reuse_detected"  // a rotated refresh token came back; its sign-in was ended
	DeviceSignedOut      Event = "device_signed_out"       // one sign-in was ended (from the phone, or by itself)
	SignedOutEverywhere  Event = "signed_out_everywhere"   // every sign-in of the user was ended
	PasswordChanged      Event = "password_changed"        // qrlogin-server user passwd
	UserAdded            Event = "user_added"
	UserDeleted          Event = "user_deleted"
	KeyRotated           Event = "key_rotated"
	KeyRetired           Event = "key_retired"
	ClientAdded          Event = "client_added"
	ClientDeleted        Event = "client_deleted"
)

// Entry is one recorded event.
type Entry struct {
	ID       int64 // assigned by the store, increasing
	Time     time.Time
	Event    Event
	UserID   string // empty when no account is concerned (a key rotation)
	Username string // as it was then; a failed sign-in's attempted name
	// DeviceID is the sign-in (a device of GET /api/v1/devices) or the
	// login session the event concerns; Device names it as reported.
	DeviceID string
	Device   string
	IP       string // the client address of the request; empty from the command line
	// Detail is a little more context (a client id, a key id, a reason);
	// never a secret.
	Detail map[string]string
}

// Discard records nothing: for servers and tests that keep no audit log.
type Discard struct{}

// Record records nothing.
func (Discard) Record(context.Context, Entry) {}
