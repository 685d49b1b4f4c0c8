// Package login owns the login-session state machine: the states a QR
// sign-in request moves through, who may move it, and when it expires.
//
// It holds no HTTP and no SQL. Stores persist Session values and run the
// transition functions here inside one transaction, so every rule is
// enforced in one place and races have exactly one winner.
//
//	pending → scanned → confirmed → consumed
//	pending | scanned → cancelled
//	pending | scanned | confirmed → expired (at ExpiresAt)
package login

import (
	"errors"
	"time"
)

// Status is the stored state of a session. Expiry need not be stored: a
// live session whose ExpiresAt has passed is expired (see
// Session.StatusAt), whether or not the sweeper has marked it Expired
// yet.
type Status string

// The stored states.
const (
	Pending   Status = "pending"
	Scanned   Status = "scanned"
	Confirmed Status = "confirmed"
	Consumed  Status = "consumed" // tokens delivered to the desktop
	Cancelled Status = "cancelled"
	Expired   Status = "expired"
)

// Live reports whether a session in state s can still change.
func (s Status) Live() bool {
	return s == Pending || s == Scanned || s == Confirmed
}

// Errors returned by the transitions. Callers map them to responses.
var (
	ErrInvalidState = errors.New("login session is not in a state that allows this")
	ErrExpired      = errors.New("login session expired")
	ErrConsumed     = errors.New("login session tokens already delivered")
	ErrForbidden    = errors.New("login session belongs to another user")
	// ErrSlowDown: a device-grant poll came sooner than the session's
	// PollInterval after the previous one (or after the session began).
	ErrSlowDown = errors.New("login session polled too often")
)

// SlowDownStep is how much a session's PollInterval grows each time it is
// polled too often (RFC 8628 §3.5: "by 5 seconds").
const SlowDownStep = 5 * time.Second

// Retention is how long an ended session keeps answering its final state
// before the sweeper may delete it.
const Retention = 10 * time.Minute

// Device is what the desktop said about itself, plus what the server saw.
type Device struct {
	Name      string
	Platform  string
	AppName   string
	IP        string
	UserAgent string
}

// Session is one desktop's request to sign in.
type Session struct {
	ID            string // public, in the QR code
	PollTokenHash []byte // SHA-256 of the desktop's secret poll token
	UserCode      string // 8 letters, stored without the dash
	Status        Status
	Device        Device
	CreatedAt     time.Time
	ExpiresAt     time.Time

	// Set by Scan: the phone user who scanned, and their display name at
	// that moment (shown to the desktop).
	UserID          string
	UserDisplayName string
	ScannedAt       time.Time
	// ConfirmedAt is when the phone confirmed; zero before. The time from
	// it to delivery is how long the desktop took to notice.
	ConfirmedAt time.Time

	// EndedAt is when the session was confirmed-and-delivered or cancelled;
	// zero while live or when it ended by expiry.
	EndedAt time.Time

	// Set when an OAuth client started the session (the device
	// authorization grant): the client's id and the scope it asked for.
	// Empty for the qrlogin API's own desktop sign-ins.
	ClientID string
	Scope    string
	// PollInterval is the least time a client must leave between two
	// device-grant polls, and LastPollAt the last such poll (zero before
	// the first). Only the device grant's token endpoint uses them.
	PollInterval time.Duration
	LastPollAt   time.Time
}

// StatusAt is the session's effective state at now: a live session past
// its ExpiresAt is Expired.
func (s *Session) StatusAt(now time.Time) Status {
	if s.Status.Live() && !now.Before(s.ExpiresAt) {
		return Expired
	}
	return s.Status
}

// EndedBy is when the session stopped being live, or the zero time if it
// is live at now. The sweeper deletes sessions Retention after this.
func (s *Session) EndedBy(now time.Time) time.Time {
	switch st := s.StatusAt(now); {
	case st == Expired && s.Status.Live():
		return s.ExpiresAt
	case st.Live():
		return time.Time{}
	case !s.EndedAt.IsZero():
		return s.EndedAt
	default:
		return s.ExpiresAt
	}
}

// Scan records that userID (named displayName) opened the session on a
// phone. Scanning again by the same user is allowed and changes nothing.
func Scan(s *Session, userID, displayName string, now time.Time) error {
	switch s.StatusAt(now) {
	case Expired:
		return ErrExpired
	case Pending:
		s.Status = Scanned
		s.UserID = userID
		s.UserDisplayName = displayName
		s.ScannedAt = now
		return nil
	case Scanned:
		if s.UserID == userID {
			return nil
		}
		return ErrInvalidState
	default:
		return ErrInvalidState
	}
}

// Confirm approves the sign-in. Only the user who scanned may confirm.
func Confirm(s *Session, userID string, now time.Time) error {
	switch s.StatusAt(now) {
	case Expired:
		return ErrExpired
	case Scanned:
		if s.UserID != userID {
			return ErrForbidden
		}
		s.Status = Confirmed
		s.ConfirmedAt = now
		return nil
	default:
		return ErrInvalidState
	}
}

// Cancel is the phone refusing the sign-in. A pending session may be
// cancelled by any signed-in user who has its id; a scanned one only by
// its scanner.
func Cancel(s *Session, userID string, now time.Time) error {
	switch s.StatusAt(now) {
	case Expired:
		return ErrExpired
	case Pending:
	case Scanned:
		if s.UserID != userID {
			return ErrForbidden
		}
	default:
		return ErrInvalidState
	}
	s.Status = Cancelled
	s.EndedAt = now
	return nil
}

// Withdraw is the desktop giving up its request. Withdrawing twice is
// allowed; a delivered or expired session cannot be withdrawn.
func Withdraw(s *Session, now time.Time) error {
	switch s.StatusAt(now) {
	case Expired:
		return ErrExpired
	case Consumed:
		return ErrConsumed
	case Cancelled:
		return nil
	}
	s.Status = Cancelled
	s.EndedAt = now
	return nil
}

// Deliver marks a confirmed session's tokens as handed to the desktop.
// It succeeds once; the store runs it in the same transaction that saves
// the refresh token it delivers.
func Deliver(s *Session, now time.Time) error {
	switch s.StatusAt(now) {
	case Confirmed:
		s.Status = Consumed
		s.EndedAt = now
		return nil
	case Consumed:
		return ErrConsumed
	case Expired:
		return ErrExpired
	default:
		return ErrInvalidState
	}
}

// NotePoll records a device-grant poll at now on a session that is still
// waiting for the phone (pending or scanned). A poll sooner than
// PollInterval after the previous one — or, for the first poll, after the
// session was created — makes the interval grow by SlowDownStep and
// returns ErrSlowDown; either way the poll is recorded, so the session
// must be saved. Callers check final states first: a cancelled, expired
// or delivered session answers so however often it is polled.
func NotePoll(s *Session, now time.Time) error {
	last := s.LastPollAt
	if last.IsZero() {
		last = s.CreatedAt
	}
	s.LastPollAt = now
	if now.Sub(last) < s.PollInterval {
		s.PollInterval += SlowDownStep
		return ErrSlowDown
	}
	return nil
}
