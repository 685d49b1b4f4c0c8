package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// Context keys the authenticator sets: the user, and the sign-in
// (device id) of the credential, when it has one.
const (
	userKey   = "user"
	deviceKey = "device"
)

// authenticator is the middleware that authenticates phones and bearers
// of access tokens; the handler after it finds the user with userOf.
type authenticator struct {
	errorWriter
	store interface {
		User(ctx context.Context, id string) (store.User, error)
		RefreshToken(ctx context.Context, hash []byte) (store.RefreshToken, error)
		Device(ctx context.Context, id string) (store.Device, error)
		TouchDevice(ctx context.Context, id, ip string, now time.Time) error
	}
	tokens interface {
		Verify(token string) (auth.Claims, error)
	}
	policy refresh.Policy
	cookie phoneCookie
	now    func() time.Time
	log    *slog.Logger
}

// errSignInEnded answers a credential whose sign-in (device) was ended.
var errSignInEnded = errorf(api.ErrUnauthorized, "This sign-in was ended; sign in again.")

func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func userOf(c *gin.Context) store.User {
	u, _ := c.Get(userKey)
	return u.(store.User)
}

// deviceOf is the sign-in (device id) of the request's credential: the
// phone cookie's family or the access token's "sid"; empty for an access
// token from before devices existed.
func deviceOf(c *gin.Context) string { return c.GetString(deviceKey) }

// requireBearer authenticates the request by its access token, whatever
// the way its user signed in.
func (s *authenticator) requireBearer(c *gin.Context) {
	claims, ok := s.verifyBearer(c)
	if !ok || !s.setBearerUser(c, claims) {
		return
	}
	c.Next()
}

// requireUser authenticates the phone, for the endpoints that act on a
// login session or on every sign-in of the account: by the phone cookie,
// or by an access token from a password sign-in. A token a desktop got
// through a login session is refused (403), so whoever holds one cannot
// use it to confirm new sessions for themselves.
func (s *authenticator) requireUser(c *gin.Context) {
	if bearer(c) == "" {
		s.requireCookie(c)
		return
	}
	claims, ok := s.verifyBearer(c)
	if !ok {
		return
	}
	// Before the account checks, so such a token gets 403 even once it
	// is revoked.
	if !claims.HasAMR(auth.AMRPassword) {
		s.writeError(c, errorf(api.ErrForbidden,
			"This access token came from a QR sign-in; a phone sign-in is needed (password or the phone page)."))
		return
	}
	if !s.setBearerUser(c, claims) {
		return
	}
	c.Next()
}

// requireAnyUser authenticates by any access token, or by the phone
// cookie when the request has none.
func (s *authenticator) requireAnyUser(c *gin.Context) {
	if bearer(c) != "" {
		s.requireBearer(c)
		return
	}
	s.requireCookie(c)
}

// verifyBearer checks the request's access token (401 if missing or bad).
func (s *authenticator) verifyBearer(c *gin.Context) (auth.Claims, bool) {
	tok := bearer(c)
	if tok == "" {
		s.writeError(c, errorf(api.ErrUnauthorized, "An access token is required (Authorization: Bearer ...)."))
		return auth.Claims{}, false
	}
	claims, err := s.tokens.Verify(tok)
	if err != nil {
		s.writeError(c, errorf(api.ErrUnauthorized, "The access token is invalid or expired."))
		return auth.Claims{}, false
	}
	return claims, true
}

// setBearerUser loads the token's user and refuses (401) a token issued
// before the user signed out everywhere or changed their password.
func (s *authenticator) setBearerUser(c *gin.Context, claims auth.Claims) bool {
	u, err := s.store.User(c.Request.Context(), claims.UserID)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, errorf(api.ErrUnauthorized, "The account no longer exists."))
		return false
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load user of access token: %w", err))
		return false
	}
	if auth.Revoked(claims.IssuedAt, u.TokensValidAfter) {
		s.writeError(c, errorf(api.ErrUnauthorized, "The access token was revoked; sign in again."))
		return false
	}
	// A token of an ended sign-in is refused at once, not when it expires.
	// A token whose sign-in this database does not know (signed before
	// devices existed) lives out its short life, as it did before: ending
	// a sign-in always finds its row, so no revocation is missed.
	if claims.SID != "" {
		d, err := s.store.Device(c.Request.Context(), claims.SID)
		switch {
		case err == nil && (d.Ended() || d.UserID != u.ID):
			s.writeError(c, errSignInEnded)
			return false
		case err == nil:
			s.touch(c, d)
			c.Set(deviceKey, d.ID)
		case !errors.Is(err, store.ErrNotFound):
			s.writeError(c, fmt.Errorf("load device of access token: %w", err))
			return false
		}
	}
	c.Set(userKey, u)
	return true
}

// touch records the request as the device's latest use, at most once per
// devices.TouchInterval (or when its address changes). A failure only
// leaves the record stale, so it is logged, not answered.
func (s *authenticator) touch(c *gin.Context, d store.Device) {
	ip, now := c.ClientIP(), s.now()
	if !devices.TouchDue(d, ip, now) {
		return
	}
	if err := s.store.TouchDevice(c.Request.Context(), d.ID, ip, now); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WarnContext(c.Request.Context(), "record device use", "device", d.ID, "err", err)
	}
}

// requireCookie authenticates a phone by its cookie.
func (s *authenticator) requireCookie(c *gin.Context) {
	ck := s.cookie.value(c)
	if ck == "" {
		s.writeError(c, errorf(api.ErrUnauthorized, "Sign in first."))
		return
	}
	rt, err := s.store.RefreshToken(c.Request.Context(), auth.HashToken(ck))
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.policy.Live(rt, refresh.KindPhone, s.now()) != nil) {
		s.cookie.clear(c)
		s.writeError(c, errorf(api.ErrUnauthorized, "Your sign-in on this phone has ended; sign in again."))
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load phone session: %w", err))
		return
	}
	u, err := s.store.User(c.Request.Context(), rt.UserID)
	if err != nil {
		s.writeError(c, errorf(api.ErrUnauthorized, "Your sign-in on this phone has ended; sign in again."))
		return
	}
	// Ending the device revokes the cookie in the same transaction; the
	// device is checked as well so neither can outlive the other. A cookie
	// from before devices existed has none.
	d, err := s.store.Device(c.Request.Context(), rt.FamilyID)
	switch {
	case err == nil && d.Ended():
		s.cookie.clear(c)
		s.writeError(c, errorf(api.ErrUnauthorized, "Your sign-in on this phone has ended; sign in again."))
		return
	case err == nil:
		s.touch(c, d)
	case !errors.Is(err, store.ErrNotFound):
		s.writeError(c, fmt.Errorf("load device of phone session: %w", err))
		return
	}
	c.Set(deviceKey, rt.FamilyID)
	c.Set(userKey, u)
	c.Next()
}
