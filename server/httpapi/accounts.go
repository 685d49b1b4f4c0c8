package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/account"
	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// accounts signs users in with their password, refreshes and revokes
// their tokens, and keeps the phone's cookie sign-in.
type accounts struct {
	errorWriter
	log   *slog.Logger
	now   func() time.Time
	store interface {
		User(ctx context.Context, id string) (store.User, error)
		UserByUsername(ctx context.Context, username string) (store.User, error)
		CreateDevice(ctx context.Context, d store.Device, rt store.RefreshToken) error
		Device(ctx context.Context, id string) (store.Device, error)
		UpdateRefreshToken(ctx context.Context, hash []byte, fn func(*store.RefreshToken) (*store.RefreshToken, error)) (store.RefreshToken, error)
		RevokeUserTokens(ctx context.Context, userID string, now time.Time) error
		TouchDevice(ctx context.Context, id, ip string, now time.Time) error
	}
	acct    *account.Service
	mint    minter
	auth    *authenticator
	cookie  phoneCookie
	metrics Metrics
	limits  Limits // Login and LoginUser
	audit   recorder
	ended   signInsEnded
}

// Mount adds the /auth endpoints and /me.
func (s *accounts) Mount(r gin.IRouter) {
	r.POST("/auth/login", s.login)
	r.POST("/auth/refresh", s.refresh)
	r.POST("/auth/logout", s.auth.requireBearer, s.logout)
	r.POST("/auth/logout-all", s.auth.requireUser, s.logoutAll)
	r.POST("/auth/cookie", s.cookieLogin)
	r.DELETE("/auth/cookie", s.cookieLogout)
	r.GET("/me", s.auth.requireAnyUser, s.me)
}

// authenticate checks a password sign-in under the rate limits, and
// returns the user and what the signing-in device says of itself. A wrong
// username or password is recorded as a failed sign-in made via.
func (s *accounts) authenticate(c *gin.Context, via string) (store.User, devices.Info, bool) {
	u, req, ok := s.checkPassword(c, via)
	info := devices.Info{
		Name:     cleanField(req.DeviceName, maxDeviceField),
		Platform: cleanField(req.Platform, maxDeviceField),
		AppName:  cleanField(req.AppName, maxDeviceField),
	}
	return u, info, ok
}

func (s *accounts) checkPassword(c *gin.Context, via string) (store.User, api.LoginRequest, bool) {
	var req api.LoginRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.writeError(c, err)
		return store.User{}, req, false
	}
	if req.Username == "" || req.Password == "" {
		s.writeError(c, errorf(api.ErrInvalidRequest, "Username and password are required."))
		return store.User{}, req, false
	}
	if !s.allow(c, s.limits.Login, clientKey(c)) {
		return store.User{}, req, false
	}
	// The username's limit counts failures only: signing in often is fine.
	done := func(bool) {}
	if l := s.limits.LoginUser; l != nil {
		var ok bool
		var retry time.Duration
		if ok, retry, done = l.Hold(strings.ToLower(req.Username)); !ok {
			s.writeError(c, rateLimited(retry))
			return store.User{}, req, false
		}
	}
	u, err := s.acct.Authenticate(c.Request.Context(), req.Username, req.Password)
	done(err != nil)
	switch {
	case err == nil:
		s.metrics.SignIn(true)
	case errors.Is(err, account.ErrInvalidCredentials):
		s.metrics.SignIn(false)
		s.recordFailure(c, req.Username, via)
	}
	if err != nil {
		s.writeError(c, err)
		return store.User{}, req, false
	}
	return u, req, true
}

// recordFailure records a failed password sign-in as username (cut to a
// username's length) and, if there is such a user, their id. Never the
// password.
func (s *accounts) recordFailure(c *gin.Context, username, via string) {
	e := audit.Entry{Time: s.now(), Event: audit.PasswordSignInFailed, Username: cleanField(username, account.MaxUsername),
		IP: c.ClientIP(), Detail: map[string]string{"via": via, "reason": "unknown_user"}}
	if u, err := s.store.UserByUsername(c.Request.Context(), username); err == nil {
		e.UserID, e.Username, e.Detail["reason"] = u.ID, u.Username, "wrong_password"
	}
	s.audit.Record(c.Request.Context(), e)
}

// recordSignIn records u's password sign-in via, the sign-in familyID
// from the device info.
func (s *accounts) recordSignIn(c *gin.Context, u store.User, familyID string, info devices.Info, via string) {
	e := userEntry(c, s.now(), audit.PasswordSignIn, u)
	e.DeviceID, e.Device, e.Detail = familyID, info.Name, map[string]string{"via": via}
	s.audit.Record(c.Request.Context(), e)
}

func (s *accounts) login(c *gin.Context) {
	u, info, ok := s.authenticate(c, viaAPI)
	if !ok {
		return
	}
	tokens, familyID, err := s.issueTokens(c, u, auth.AMRPassword, info)
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.recordSignIn(c, u, familyID, info, viaAPI)
	c.JSON(http.StatusOK, api.LoginResponse{Tokens: tokens, User: apiUser(u)})
}

// issueTokens signs an access token and stores a new sign-in made with
// method amr by the device info: its device and first refresh token. It
// returns the tokens and the sign-in's id (its refresh family).
func (s *accounts) issueTokens(c *gin.Context, u store.User, amr string, info devices.Info) (api.Tokens, string, error) {
	refresh, rt, err := s.mint.refresh(u.ID, amr)
	if err != nil {
		return api.Tokens{}, "", err
	}
	access, err := s.mint.access(u.ID, amr, rt.FamilyID)
	if err != nil {
		return api.Tokens{}, "", err
	}
	if err := s.store.CreateDevice(c.Request.Context(), devices.Start(rt, info, c.ClientIP()), rt); err != nil {
		return api.Tokens{}, "", fmt.Errorf("store sign-in: %w", err)
	}
	return s.mint.pair(access, refresh), rt.FamilyID, nil
}

func (s *accounts) refresh(c *gin.Context) {
	var req api.RefreshRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > 256 {
		s.writeError(c, errorf(api.ErrInvalidRequest, "refresh_token is required."))
		return
	}
	invalid := errorf(api.ErrUnauthorized, "The refresh token is invalid, expired or revoked; sign in again.")
	ctx := c.Request.Context()
	tok, err := auth.NewToken(refreshTokenBytes)
	if err != nil {
		s.writeError(c, fmt.Errorf("new refresh token: %w", err))
		return
	}
	nextID, nextHash, now := auth.NewID(), auth.HashToken(tok), s.now()
	old, err := s.store.UpdateRefreshToken(ctx, auth.HashToken(req.RefreshToken), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		next, err := s.mint.policy.Rotate(rt, "", nextID, nextHash, now)
		return &next, err
	})
	switch {
	case errors.Is(err, store.ErrTokenReused):
		s.metrics.RefreshReused()
		s.log.WarnContext(ctx, "refresh token reused; its sign-in was revoked",
			"user_id", old.UserID, "client_ip", c.ClientIP())
		recordReuse(c, now, s.audit, s.store, old)
		s.ended.publish(old.UserID) // its desktop learns at once
		s.writeError(c, invalid)
		return
	case errors.Is(err, store.ErrTokenInvalid), errors.Is(err, store.ErrNotFound):
		s.writeError(c, invalid)
		return
	case err != nil:
		s.writeError(c, fmt.Errorf("rotate refresh token: %w", err))
		return
	}
	u, err := s.store.User(ctx, old.UserID)
	if err != nil {
		s.writeError(c, invalid)
		return
	}
	// The new access token says how the chain's sign-in was made, and
	// which it is.
	access, err := s.mint.access(u.ID, old.AMR, old.FamilyID)
	if err != nil {
		s.writeError(c, err)
		return
	}
	// A refresh is the desktop's use of its sign-in; the rotation moved
	// its time, this its address.
	if err := s.store.TouchDevice(ctx, old.FamilyID, c.ClientIP(), now); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WarnContext(ctx, "record device use", "device", old.FamilyID, "err", err)
	}
	c.JSON(http.StatusOK, api.LoginResponse{Tokens: s.mint.pair(access, tok), User: apiUser(u)})
}

func (s *accounts) logout(c *gin.Context) {
	var req api.LogoutRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > 256 {
		s.writeError(c, errorf(api.ErrInvalidRequest, "refresh_token is required."))
		return
	}
	// Only the account's own refresh tokens, checked and revoked in one
	// transaction that ends the sign-in's device too.
	u, now := userOf(c), s.now()
	wasLive := false
	rt, err := s.store.UpdateRefreshToken(c.Request.Context(), auth.HashToken(req.RefreshToken), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		if rt.UserID != u.ID || rt.Kind != refresh.KindRefresh {
			return nil, store.ErrNotFound
		}
		wasLive = rt.RevokedAt.IsZero()
		refresh.Revoke(rt, now)
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, errorf(api.ErrNotFound, "No such refresh token for this account."))
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("revoke refresh token: %w", err))
		return
	}
	if wasLive {
		s.ended.signedOut(c, u, rt.FamilyID, "self")
	}
	c.Status(http.StatusNoContent)
}

// logoutAll signs the user out everywhere: every access token issued so
// far is refused from now on, and every refresh token and phone cookie is
// revoked.
func (s *accounts) logoutAll(c *gin.Context) {
	u := userOf(c)
	if err := s.store.RevokeUserTokens(c.Request.Context(), u.ID, s.now()); err != nil {
		s.writeError(c, fmt.Errorf("sign out everywhere: %w", err))
		return
	}
	s.ended.everywhere(c, u)
	if s.cookie.value(c) != "" {
		s.cookie.clear(c)
	}
	c.Status(http.StatusNoContent)
}

func (s *accounts) cookieLogin(c *gin.Context) {
	u, info, ok := s.authenticate(c, viaPhonePage)
	if !ok {
		return
	}
	tok, rt, err := s.mint.long(refresh.KindPhone, u.ID, auth.AMRPassword)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.store.CreateDevice(c.Request.Context(), devices.Start(rt, info, c.ClientIP()), rt); err != nil {
		s.writeError(c, fmt.Errorf("store phone session: %w", err))
		return
	}
	s.recordSignIn(c, u, rt.FamilyID, info, viaPhonePage)
	s.cookie.set(c, tok, int(rt.ExpiresAt.Sub(rt.CreatedAt).Seconds()))
	c.JSON(http.StatusOK, gin.H{"user": apiUser(u)})
}

func (s *accounts) cookieLogout(c *gin.Context) {
	if ck := s.cookie.value(c); ck != "" {
		now := s.now()
		wasLive := false
		rt, err := s.store.UpdateRefreshToken(c.Request.Context(), auth.HashToken(ck), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
			if rt.Kind != refresh.KindPhone {
				return nil, store.ErrNotFound
			}
			wasLive = rt.RevokedAt.IsZero()
			refresh.Revoke(rt, now)
			return nil, nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeError(c, fmt.Errorf("revoke phone session: %w", err))
			return
		}
		if err == nil && wasLive {
			if u, err := s.store.User(c.Request.Context(), rt.UserID); err == nil {
				s.ended.signedOut(c, u, rt.FamilyID, "self")
			}
		}
	}
	s.cookie.clear(c)
	c.Status(http.StatusNoContent)
}

func (s *accounts) me(c *gin.Context) {
	u := userOf(c)
	c.JSON(http.StatusOK, api.Me{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt.UTC()})
}

func apiUser(u store.User) api.User {
	return api.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName}
}
