// Package api holds the JSON wire types of the qrlogin HTTP API, version 1.
//
// Every type is documented with the endpoint that sends or receives it; the
// full contract is docs/API.md. The package imports nothing beyond the
// standard library so that any client can use it.
package api

import "time"

// Status is the public state of a login session, as the desktop sees it.
type Status string

// The states a login session can be reported in. A session whose tokens were
// delivered answers 410 with ErrConsumed instead of a status.
const (
	StatusPending   Status = "pending"
	StatusScanned   Status = "scanned"
	StatusConfirmed Status = "confirmed"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
)

// Valid reports whether s is one of the public states.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusScanned, StatusConfirmed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Final reports whether a session in state s can no longer change.
func (s Status) Final() bool {
	return s == StatusCancelled || s == StatusExpired
}

// Error codes carried in Error.Code.
const (
	ErrInvalidRequest     = "invalid_request"     // 400: malformed JSON, wrong types, bad parameters
	ErrInvalidCredentials = "invalid_credentials" // 401: wrong username or password
	ErrUnauthorized       = "unauthorized"        // 401: missing, wrong or expired token
	ErrForbidden          = "forbidden"           // 403: authenticated, but not allowed
	ErrNotFound           = "not_found"           // 404: no such resource
	ErrMethodNotAllowed   = "method_not_allowed"  // 405
	ErrInvalidState       = "invalid_state"       // 409: the session is not in a state that allows this
	ErrExpired            = "expired"             // 410: the session expired
	ErrConsumed           = "consumed"            // 410: the session's tokens were already delivered
	ErrTooLarge           = "too_large"           // 413: request body over the limit
	ErrUnsupportedMedia   = "unsupported_media"   // 415: body is not JSON
	ErrRateLimited        = "rate_limited"        // 429: too many requests; see Retry-After
	ErrInternal           = "internal"            // 500: never expected; logged with the request id
	ErrUnavailable        = "unavailable"         // 503: shutting down or store not ready
)

// Error is the body of every non-2xx response.
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// CreateSessionRequest is the optional body of POST /api/v1/login-sessions.
// Values are trimmed, stripped of control characters and cut to 100
// characters by the server.
type CreateSessionRequest struct {
	DeviceName string `json:"device_name,omitempty"`
	Platform   string `json:"platform,omitempty"`
	AppName    string `json:"app_name,omitempty"`
}

// CreateSessionResponse is the 201 body of POST /api/v1/login-sessions.
type CreateSessionResponse struct {
	// ID is public: it is part of VerifyURL and so of the QR code.
	ID string `json:"id"`
	// PollToken is the desktop's secret for the status and delete endpoints.
	// It is shown once; the server keeps only its hash.
	PollToken string `json:"poll_token"`
	// VerifyURL is what the QR code encodes: <public-url>/m/<id>.
	VerifyURL string `json:"verify_url"`
	// UserCode is XXXX-XXXX, typed at <public-url>/m when the camera fails.
	UserCode string `json:"user_code"`
	// QRURL is the absolute URL of a PNG of the QR code of VerifyURL:
	// GET /api/v1/login-sessions/{id}/qr.png[?size=N]. It needs no token
	// (the image shows only what the QR code shows) and answers 404 once
	// the session has ended.
	QRURL     string    `json:"qr_url"`
	ExpiresAt time.Time `json:"expires_at"`
	// ExpiresIn is the session's lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
	// Interval is the number of seconds a client that does not long-poll
	// should wait between status requests.
	Interval int `json:"interval"`
}

// SessionStatusResponse is the 200 body of
// GET /api/v1/login-sessions/{id}/status.
type SessionStatusResponse struct {
	Status    Status     `json:"status"`
	ExpiresAt time.Time  `json:"expires_at"`
	ScannedBy *ScannedBy `json:"scanned_by,omitempty"`
	// Tokens and User are set in exactly one response: the first one that
	// reports StatusConfirmed. Every later request answers 410 consumed.
	Tokens *Tokens `json:"tokens,omitempty"`
	User   *User   `json:"user,omitempty"`
}

// ScannedBy names the phone user who scanned a session.
type ScannedBy struct {
	DisplayName string `json:"display_name"`
}

// Tokens is a token pair issued to a signed-in client.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"` // always "Bearer"
	ExpiresIn    int    `json:"expires_in"` // access token lifetime in seconds
	RefreshToken string `json:"refresh_token"`
}

// User identifies a signed-in account.
type User struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// Device describes the computer that asked to sign in, for the phone's
// "is this you?" screen.
type Device struct {
	Name      string    `json:"name"`
	Platform  string    `json:"platform"`
	AppName   string    `json:"app_name"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	CreatedAt time.Time `json:"created_at"`
}

// SessionInfo is what a signed-in phone sees of a login session, from
// GET /api/v1/login-sessions/{id}, GET /api/v1/login-sessions/by-code/{code}
// and POST /api/v1/login-sessions/{id}/scan. It carries no secret.
type SessionInfo struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	ExpiresAt time.Time `json:"expires_at"`
	Device    Device    `json:"device"`
	// Network is what the server can tell of the desktop's network compared
	// with the phone making this request: NetworkSame, NetworkDifferent or
	// NetworkUnknown (an address is loopback or a proxy's, so the check
	// means nothing). The phone warns on NetworkDifferent.
	Network string `json:"network"`
	// Client is set when an app signing in through OAuth (the device
	// authorization grant) started the session: the app as registered on
	// this server by its administrator, so unlike Device it is not what
	// the computer says of itself.
	Client *Client `json:"client,omitempty"`
}

// Client is an OAuth app registered on the server
// (qrlogin-server client add).
type Client struct {
	ID string `json:"id"`
	// Name is the registered display name; empty if the app was removed
	// since the session began.
	Name string `json:"name"`
}

// The values of SessionInfo.Network.
const (
	NetworkSame      = "same"
	NetworkDifferent = "different"
	NetworkUnknown   = "unknown"
)

// StatusResponse is the 200 body of the phone's confirm and cancel requests.
type StatusResponse struct {
	Status Status `json:"status"`
}

// LoginRequest is the body of POST /api/v1/auth/login and of the phone
// page's POST /api/v1/auth/cookie. The device fields are optional: they
// describe the signing-in device in GET /api/v1/devices, and are trimmed,
// stripped of control characters and cut to 100 characters by the server.
type LoginRequest struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name,omitempty"`
	Platform   string `json:"platform,omitempty"`
	AppName    string `json:"app_name,omitempty"`
}

// LoginResponse is the 200 body of POST /api/v1/auth/login and
// POST /api/v1/auth/refresh.
type LoginResponse struct {
	Tokens
	User User `json:"user"`
}

// RefreshRequest is the body of POST /api/v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// LogoutRequest is the body of POST /api/v1/auth/logout.
type LogoutRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// Me is the 200 body of GET /api/v1/me.
type Me struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
}

// Health is the 200 body of GET /healthz.
type Health struct {
	Status string `json:"status"` // "ok"
}

// MaxWait is the longest long-poll the status endpoint holds, in seconds.
const MaxWait = 30

// The event stream of GET /api/v1/login-sessions/{id}/events.
const (
	// EventStreamType is its media type (server-sent events).
	EventStreamType = "text/event-stream"
	// EventStatus is the type of an event whose data is a
	// SessionStatusResponse: the first event, and one per change.
	EventStatus = "status"
	// EventError is the type of an event whose data is an Error; the
	// stream ends after it. ErrConsumed: another request took the tokens.
	EventError = "error"
	// PingInterval is how often, in seconds, the server sends a comment
	// line on an idle stream, so proxies keep it open.
	PingInterval = 15
)

// The kinds of SignedInDevice.
const (
	DeviceDesktop = "desktop" // signed in through a login session (the QR)
	DevicePhone   = "phone"   // a password sign-in: the phone page, or POST /api/v1/auth/login
	DeviceApp     = "app"     // an OAuth client, through the device authorization grant
)

// SignedInDevice is one live sign-in of the account, in
// GET /api/v1/devices. Name, Platform and AppName are what the device
// reported of itself (for an app, AppName is its registered name); IP and
// CreatedAt are as seen at sign-in, LastIP and LastUsedAt at its latest
// use.
type SignedInDevice struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	Platform   string    `json:"platform"`
	AppName    string    `json:"app_name"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	LastIP     string    `json:"last_ip"`
	// Current marks the sign-in making the request.
	Current bool `json:"current"`
	// New marks a sign-in made within the last NewDeviceHours.
	New bool `json:"new"`
}

// NewDeviceHours is how long a sign-in counts as new.
const NewDeviceHours = 24

// DevicesResponse is the 200 body of GET /api/v1/devices: newest first.
type DevicesResponse struct {
	Devices []SignedInDevice `json:"devices"`
}

// The event stream of GET /api/v1/me/events.
const (
	// EventRevoked is the type of the event whose data is a Revoked: the
	// sign-in of the stream's access token has ended. The stream ends
	// after it.
	EventRevoked = "revoked"
)

// Revoked is the data of an EventRevoked event.
type Revoked struct {
	Reason string `json:"reason"`
}

// The values of Revoked.Reason.
const (
	ReasonSignedOut       = "signed_out"       // this sign-in was signed out (from the phone's device list, or by itself)
	ReasonLogoutAll       = "logout_all"       // the user signed out everywhere
	ReasonPasswordChanged = "password_changed" // the user's password was changed
	ReasonUserDeleted     = "user_deleted"     // the account was deleted
	ReasonReuseDetected   = "reuse_detected"   // a rotated refresh token of this sign-in came back: it was copied, so it was ended
)
