package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// phoneFamilyPrefix marks the token families of phone cookies.
const phoneFamilyPrefix = "phone-"

// refreshTokenBytes is the size of refresh and phone tokens (256 bits).
const refreshTokenBytes = 32

const userKey = "user"

func (s *Server) mountAuth(r gin.IRouter) {
	r.POST("/auth/login", s.login)
	r.POST("/auth/refresh", s.refresh)
	r.POST("/auth/logout", s.requireBearer, s.logout)
	r.POST("/auth/cookie", s.cookieLogin)
	r.DELETE("/auth/cookie", s.cookieLogout)
	r.GET("/me", s.requireUser, s.me)
}

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

// requireBearer authenticates the request by its access token.
func (s *Server) requireBearer(c *gin.Context) {
	tok := bearer(c)
	if tok == "" {
		s.writeError(c, errorf(api.ErrUnauthorized, "An access token is required (Authorization: Bearer ...)."))
		return
	}
	claims, err := s.tokens.Verify(tok)
	if err != nil {
		s.writeError(c, errorf(api.ErrUnauthorized, "The access token is invalid or expired."))
		return
	}
	u, err := s.store.User(c.Request.Context(), claims.UserID)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, errorf(api.ErrUnauthorized, "The account no longer exists."))
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load user of access token: %w", err))
		return
	}
	c.Set(userKey, u)
	c.Next()
}

// requireUser authenticates a phone: by access token when the request has
// one, otherwise by the phone cookie.
func (s *Server) requireUser(c *gin.Context) {
	if bearer(c) != "" {
		s.requireBearer(c)
		return
	}
	ck, err := c.Cookie(s.PhoneCookie())
	if err != nil || ck == "" {
		s.writeError(c, errorf(api.ErrUnauthorized, "Sign in first."))
		return
	}
	rt, err := s.store.RefreshToken(c.Request.Context(), auth.HashToken(ck))
	now := s.now()
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!strings.HasPrefix(rt.FamilyID, phoneFamilyPrefix) ||
		!rt.RevokedAt.IsZero() || !now.Before(rt.ExpiresAt))) {
		s.clearCookie(c)
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
	c.Set(userKey, u)
	c.Next()
}

// authenticate checks a password sign-in under the rate limits.
func (s *Server) authenticate(c *gin.Context) (store.User, bool) {
	var req api.LoginRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.writeError(c, err)
		return store.User{}, false
	}
	if req.Username == "" || req.Password == "" {
		s.writeError(c, errorf(api.ErrInvalidRequest, "Username and password are required."))
		return store.User{}, false
	}
	if !s.allow(c, s.limits.Login, clientKey(c)) {
		return store.User{}, false
	}
	// The username's limit counts failures only: signing in often is fine.
	done := func(bool) {}
	if l := s.limits.LoginUser; l != nil {
		var ok bool
		var retry time.Duration
		if ok, retry, done = l.Hold(strings.ToLower(req.Username)); !ok {
			s.writeError(c, rateLimited(retry))
			return store.User{}, false
		}
	}
	u, err := s.acct.Authenticate(c.Request.Context(), req.Username, req.Password)
	done(err != nil)
	if err != nil {
		s.writeError(c, err)
		return store.User{}, false
	}
	return u, true
}

func (s *Server) login(c *gin.Context) {
	u, ok := s.authenticate(c)
	if !ok {
		return
	}
	tokens, err := s.issueTokens(c, u, auth.NewID())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, api.LoginResponse{Tokens: tokens, User: apiUser(u)})
}

// issueTokens signs an access token and stores a new refresh token in
// family.
func (s *Server) issueTokens(c *gin.Context, u store.User, family string) (api.Tokens, error) {
	access, _, err := s.tokens.Sign(u.ID)
	if err != nil {
		return api.Tokens{}, fmt.Errorf("sign access token: %w", err)
	}
	refresh, rt, err := s.newRefreshToken()
	if err != nil {
		return api.Tokens{}, err
	}
	rt.UserID, rt.FamilyID = u.ID, family
	if err := s.store.CreateRefreshToken(c.Request.Context(), rt); err != nil {
		return api.Tokens{}, fmt.Errorf("store refresh token: %w", err)
	}
	return s.tokenPair(access, refresh), nil
}

func (s *Server) tokenPair(access, refresh string) api.Tokens {
	return api.Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.tokens.TTL() / time.Second), RefreshToken: refresh}
}

// newRefreshToken makes a random token and its record (without user and
// family).
func (s *Server) newRefreshToken() (string, store.RefreshToken, error) {
	tok, err := auth.NewToken(refreshTokenBytes)
	if err != nil {
		return "", store.RefreshToken{}, fmt.Errorf("new refresh token: %w", err)
	}
	now := s.now()
	return tok, store.RefreshToken{
		ID:        auth.NewID(),
		Hash:      auth.HashToken(tok),
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.RefreshTTL),
	}, nil
}

func (s *Server) refresh(c *gin.Context) {
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
	old, err := s.store.RefreshToken(ctx, auth.HashToken(req.RefreshToken))
	if errors.Is(err, store.ErrNotFound) || (err == nil && strings.HasPrefix(old.FamilyID, phoneFamilyPrefix)) {
		s.writeError(c, invalid)
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load refresh token: %w", err))
		return
	}
	refresh, next, err := s.newRefreshToken()
	if err != nil {
		s.writeError(c, err)
		return
	}
	old, err = s.store.RotateRefreshToken(ctx, auth.HashToken(req.RefreshToken), next, s.now())
	switch {
	case errors.Is(err, store.ErrTokenReused):
		s.log.WarnContext(ctx, "refresh token reused; its sign-in was revoked",
			"request_id", requestID(c), "user_id", old.UserID, "client_ip", c.ClientIP())
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
	access, _, err := s.tokens.Sign(u.ID)
	if err != nil {
		s.writeError(c, fmt.Errorf("sign access token: %w", err))
		return
	}
	c.JSON(http.StatusOK, api.LoginResponse{Tokens: s.tokenPair(access, refresh), User: apiUser(u)})
}

func (s *Server) logout(c *gin.Context) {
	var req api.LogoutRequest
	if err := decodeJSON(c, &req, false); err != nil {
		s.writeError(c, err)
		return
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > 256 {
		s.writeError(c, errorf(api.ErrInvalidRequest, "refresh_token is required."))
		return
	}
	ctx := c.Request.Context()
	hash := auth.HashToken(req.RefreshToken)
	rt, err := s.store.RefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rt.UserID != userOf(c).ID) {
		s.writeError(c, errorf(api.ErrNotFound, "No such refresh token for this account."))
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load refresh token: %w", err))
		return
	}
	if _, err := s.store.RevokeRefreshToken(ctx, hash, s.now()); err != nil {
		s.writeError(c, fmt.Errorf("revoke refresh token: %w", err))
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) cookieLogin(c *gin.Context) {
	u, ok := s.authenticate(c)
	if !ok {
		return
	}
	tok, rt, err := s.newRefreshToken()
	if err != nil {
		s.writeError(c, err)
		return
	}
	rt.UserID, rt.FamilyID = u.ID, phoneFamilyPrefix+auth.NewID()
	if err := s.store.CreateRefreshToken(c.Request.Context(), rt); err != nil {
		s.writeError(c, fmt.Errorf("store phone session: %w", err))
		return
	}
	s.setCookie(c, tok, int(s.cfg.RefreshTTL.Seconds()))
	c.JSON(http.StatusOK, gin.H{"user": apiUser(u)})
}

func (s *Server) cookieLogout(c *gin.Context) {
	if ck, err := c.Cookie(s.PhoneCookie()); err == nil && ck != "" {
		_, err := s.store.RevokeRefreshToken(c.Request.Context(), auth.HashToken(ck), s.now())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeError(c, fmt.Errorf("revoke phone session: %w", err))
			return
		}
	}
	s.clearCookie(c)
	c.Status(http.StatusNoContent)
}

func (s *Server) setCookie(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     s.PhoneCookie(),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.https,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearCookie(c *gin.Context) { s.setCookie(c, "", -1) }

func (s *Server) me(c *gin.Context) {
	u := userOf(c)
	c.JSON(http.StatusOK, api.Me{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, CreatedAt: u.CreatedAt.UTC()})
}

func apiUser(u store.User) api.User {
	return api.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName}
}
