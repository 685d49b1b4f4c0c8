// Package devices owns the rules of signed-in devices: each sign-in of an
// account (a desktop's QR sign-in, an app's OAuth sign-in, a phone's
// password sign-in) is a Device the user can see and end.
//
// It holds no HTTP and no SQL. A device's id is the id of its refresh
// token family (refresh.Token.FamilyID), or a fresh id for an app that
// got no refresh token. Stores load a Device, run the functions here on
// it inside the transaction that changes its tokens, and save it.
package devices

import (
	"time"

	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/shared/api"
)

// TouchInterval is how stale a device's last use may be before a request
// records it again: at most one write per device per interval, whatever
// the traffic.
const TouchInterval = time.Minute

// Retention is how long a device is kept after it ended or expired, so a
// sign-in whose access token is still valid learns why it was ended.
// Longer than any access token lives.
const Retention = 7 * 24 * time.Hour

// NewFor is how long a sign-in counts as new.
const NewFor = api.NewDeviceHours * time.Hour

// EventKeyPrefix begins the notification key of a user's sign-ins. Login
// session ids, the other keys, never hold a ':'.
const EventKeyPrefix = "user:"

// EventKey is the key (notify.Hub, PostgreSQL NOTIFY) under which a
// change to userID's sign-ins is announced: the account event streams
// wait on it.
func EventKey(userID string) string { return EventKeyPrefix + userID }

// Device is one sign-in of a user.
type Device struct {
	ID       string
	UserID   string
	Kind     string // api.DeviceDesktop, api.DevicePhone or api.DeviceApp
	ClientID string // the OAuth client of an app; empty otherwise
	// Name, Platform and AppName are what the device reported of itself;
	// an app's AppName is its registered client name.
	Name     string
	Platform string
	AppName  string
	IP       string // the client address at sign-in
	// CreatedAt is the sign-in; LastUsedAt and LastIP its latest use.
	CreatedAt  time.Time
	LastUsedAt time.Time
	LastIP     string
	// ExpiresAt is when the sign-in ends by itself: the expiry of its
	// newest refresh token or phone cookie, or of an app's access token.
	ExpiresAt time.Time
	// EndedAt is when it was ended, zero while it is not; EndReason is
	// why (one of the api.Reason* values).
	EndedAt   time.Time
	EndReason string
}

// Info is what a device says of itself at sign-in.
type Info struct {
	Name, Platform, AppName string
}

// Kind is the kind of a sign-in made with method amr ("pwd" or "qr") by
// OAuth client clientID ("" for the qrlogin API itself).
func Kind(amr, clientID string) string {
	switch {
	case clientID != "":
		return api.DeviceApp
	case amr == "pwd":
		return api.DevicePhone
	default:
		return api.DeviceDesktop
	}
}

// Start is the device of a new sign-in whose first token is rt (a refresh
// token or phone cookie), made from ip and describing itself as info.
func Start(rt refresh.Token, info Info, ip string) Device {
	return Device{
		ID:         rt.FamilyID,
		UserID:     rt.UserID,
		Kind:       Kind(rt.AMR, rt.ClientID),
		ClientID:   rt.ClientID,
		Name:       info.Name,
		Platform:   info.Platform,
		AppName:    info.AppName,
		IP:         ip,
		CreatedAt:  rt.CreatedAt,
		LastUsedAt: rt.CreatedAt,
		LastIP:     ip,
		ExpiresAt:  rt.ExpiresAt,
	}
}

// FromSession completes d, the device of a login session's delivery, with
// what the session knows: its user, and the computer that asked to sign
// in. An app keeps the AppName it was given (its registered name).
func FromSession(d *Device, s login.Session) {
	d.UserID = s.UserID
	d.Name, d.Platform = s.Device.Name, s.Device.Platform
	if d.AppName == "" {
		d.AppName = s.Device.AppName
	}
	d.IP, d.LastIP = s.Device.IP, s.Device.IP
	if d.LastUsedAt.IsZero() {
		d.LastUsedAt = d.CreatedAt
	}
}

// Live reports whether d is a sign-in at now: not ended, not expired.
func (d Device) Live(now time.Time) bool {
	return d.EndedAt.IsZero() && now.Before(d.ExpiresAt)
}

// Ended reports whether d was ended (rather than just expired).
func (d Device) Ended() bool { return !d.EndedAt.IsZero() }

// New reports whether d signed in within NewFor before now.
func (d Device) New(now time.Time) bool { return now.Sub(d.CreatedAt) < NewFor }

// End ends d at now for reason. A device ended already keeps its first
// end and reason: the user learns what ended it.
func End(d *Device, reason string, now time.Time) {
	if d.EndedAt.IsZero() {
		d.EndedAt, d.EndReason = now.UTC(), reason
	}
}

// Rotated records that d's refresh chain issued next: the sign-in now
// lasts as long as next, and was used when next was made.
func Rotated(d *Device, next refresh.Token) {
	if next.ExpiresAt.After(d.ExpiresAt) {
		d.ExpiresAt = next.ExpiresAt
	}
	if next.CreatedAt.After(d.LastUsedAt) {
		d.LastUsedAt = next.CreatedAt
	}
}

// RevokeReason is the end reason of a device whose token was revoked by
// a store's UpdateRefreshToken: reuse of a rotated token, or its own
// sign-out.
func RevokeReason(reused bool) string {
	if reused {
		return api.ReasonReuseDetected
	}
	return api.ReasonSignedOut
}

// TouchDue reports whether a request from ip at now should record itself
// as d's latest use: the last one is TouchInterval old, or came from
// another address. It keeps writes to one per device per interval.
func TouchDue(d Device, ip string, now time.Time) bool {
	return d.EndedAt.IsZero() && (ip != d.LastIP || now.Sub(d.LastUsedAt) >= TouchInterval)
}

// Touch records a use of d from ip at now; the time never moves back.
func Touch(d *Device, ip string, now time.Time) {
	if now.After(d.LastUsedAt) {
		d.LastUsedAt = now.UTC()
	}
	d.LastIP = ip
}

// SweepCutoff is the cutoff of a sweep at now: devices that ended or
// expired before it are deleted.
func SweepCutoff(now time.Time) time.Time { return now.Add(-Retention) }

// SameSignIn reports whether a and b are one sign-in, whatever their
// state: the same id, user, kind and client. Moving a store refuses to
// overwrite a device that is not.
func SameSignIn(a, b Device) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Kind == b.Kind && a.ClientID == b.ClientID
}

// CatchUp brings d forward to src, the same sign-in as held by the store
// being moved from: its latest use (with its address) and its expiry
// never move back, and a d not ended takes src's end and reason. An
// ended d stays as it is: an end is never undone nor its reason changed.
// It reports whether d changed.
func CatchUp(d *Device, src Device) bool {
	changed := false
	if src.LastUsedAt.After(d.LastUsedAt) {
		d.LastUsedAt, d.LastIP = src.LastUsedAt, src.LastIP
		changed = true
	}
	if src.ExpiresAt.After(d.ExpiresAt) {
		d.ExpiresAt = src.ExpiresAt
		changed = true
	}
	if d.EndedAt.IsZero() && !src.EndedAt.IsZero() {
		d.EndedAt, d.EndReason = src.EndedAt, src.EndReason
		changed = true
	}
	return changed
}
