package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// refreshTokenBytes is the size of refresh and phone tokens (256 bits).
const refreshTokenBytes = 32

const userKey = "user"

func (s *Server) mountAuth(r gin.IRouter) {
	r.POST("/auth/login", s.login)
	r.POST("/auth/refresh", s.refresh)
	r.POST("/auth/logout", s.requireBearer, s.logout)
	r.POST("/auth/logout-all", s.requireUser, s.logoutAll)
	r.POST("/auth/cookie", s.cookieLogin)
	r.DELETE("/auth/cookie", s.cookieLogout)
	r.GET("/me", s.requireAnyUser, s.me)
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

// requireBearer authenticates the request by its access token, whatever
// the way its user signed in.
func (s *Server) requireBearer(c *gin.Context) {
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
func (s *Server) requireUser(c *gin.Context) {
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
func (s *Server) requireAnyUser(c *gin.Context) {
	if bearer(c) != "" {
		s.requireBearer(c)
		return
	}
	s.requireCookie(c)
}

// verifyBearer checks the request's access token (401 if missing or bad).
func (s *Server) verifyBearer(c *gin.Context) (auth.Claims, bool) {
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
func (s *Server) setBearerUser(c *gin.Context, claims auth.Claims) bool {
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
	c.Set(userKey, u)
	return true
}

// requireCookie authenticates a phone by its cookie.
func (s *Server) requireCookie(c *gin.Context) {
	ck, err := c.Cookie(s.PhoneCookie())
	if err != nil || ck == "" {
		s.writeError(c, errorf(api.ErrUnauthorized, "Sign in first."))
		return
	}
	rt, err := s.store.RefreshToken(c.Request.Context(), auth.HashToken(ck))
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.policy().Live(rt, refresh.KindPhone, s.now()) != nil) {
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
	tokens, err := s.issueTokens(c, u, auth.AMRPassword)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, api.LoginResponse{Tokens: tokens, User: apiUser(u)})
}

// issueTokens signs an access token and stores the first refresh token of
// a new sign-in made with method amr.
func (s *Server) issueTokens(c *gin.Context, u store.User, amr string) (api.Tokens, error) {
	access, _, err := s.tokens.Sign(u.ID, amr)
	if err != nil {
		return api.Tokens{}, fmt.Errorf("sign access token: %w", err)
	}
	refresh, rt, err := s.newRefreshToken(u.ID, amr)
	if err != nil {
		return api.Tokens{}, err
	}
	if err := s.store.CreateRefreshToken(c.Request.Context(), rt); err != nil {
		return api.Tokens{}, fmt.Errorf("store refresh token: %w", err)
	}
	return s.tokenPair(access, refresh), nil
}

func (s *Server) tokenPair(access, refresh string) api.Tokens {
	return api.Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.tokens.TTL() / time.Second), RefreshToken: refresh}
}

// policy is the refresh-token rules with the configured lifetimes.
func (s *Server) policy() refresh.Policy {
	return refresh.Policy{TTL: s.cfg.RefreshTTL, MaxAge: s.cfg.RefreshMaxAge}
}

// newRefreshToken makes a random refresh token and its record, the first
// of a new sign-in of userID made with method amr.
func (s *Server) newRefreshToken(userID, amr string) (string, store.RefreshToken, error) {
	return s.newLongToken(refresh.KindRefresh, userID, amr)
}

// newLongToken makes a random token of kind and its record, the first of
// a new family.
func (s *Server) newLongToken(kind refresh.Kind, userID, amr string) (string, store.RefreshToken, error) {
	tok, err := auth.NewToken(refreshTokenBytes)
	if err != nil {
		return "", store.RefreshToken{}, fmt.Errorf("new refresh token: %w", err)
	}
	return tok, s.policy().Start(kind, userID, amr, auth.NewID(), auth.NewID(), auth.HashToken(tok), s.now()), nil
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
	tok, err := auth.NewToken(refreshTokenBytes)
	if err != nil {
		s.writeError(c, fmt.Errorf("new refresh token: %w", err))
		return
	}
	nextID, nextHash, now := auth.NewID(), auth.HashToken(tok), s.now()
	old, err := s.store.UpdateRefreshToken(ctx, auth.HashToken(req.RefreshToken), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		next, err := s.policy().Rotate(rt, "", nextID, nextHash, now)
		return &next, err
	})
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
	// The new access token says how the chain's sign-in was made.
	access, _, err := s.tokens.Sign(u.ID, old.AMR)
	if err != nil {
		s.writeError(c, fmt.Errorf("sign access token: %w", err))
		return
	}
	c.JSON(http.StatusOK, api.LoginResponse{Tokens: s.tokenPair(access, tok), User: apiUser(u)})
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
	// Only the account's own refresh tokens, checked and revoked in one
	// transaction.
	user, now := userOf(c).ID, s.now()
	_, err := s.store.UpdateRefreshToken(c.Request.Context(), auth.HashToken(req.RefreshToken), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		if rt.UserID != user || rt.Kind != refresh.KindRefresh {
			return nil, store.ErrNotFound
		}
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
	c.Status(http.StatusNoContent)
}

// logoutAll signs the user out everywhere: every access token issued so
// far is refused from now on, and every refresh token and phone cookie is
// revoked.
func (s *Server) logoutAll(c *gin.Context) {
	u := userOf(c)
	if err := s.store.RevokeUserTokens(c.Request.Context(), u.ID, s.now()); err != nil {
		s.writeError(c, fmt.Errorf("sign out everywhere: %w", err))
		return
	}
	if ck, err := c.Cookie(s.PhoneCookie()); err == nil && ck != "" {
		s.clearCookie(c)
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) cookieLogin(c *gin.Context) {
	u, ok := s.authenticate(c)
	if !ok {
		return
	}
	tok, rt, err := s.newLongToken(refresh.KindPhone, u.ID, auth.AMRPassword)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if err := s.store.CreateRefreshToken(c.Request.Context(), rt); err != nil {
		s.writeError(c, fmt.Errorf("store phone session: %w", err))
		return
	}
	s.setCookie(c, tok, int(rt.ExpiresAt.Sub(rt.CreatedAt).Seconds()))
	c.JSON(http.StatusOK, gin.H{"user": apiUser(u)})
}

func (s *Server) cookieLogout(c *gin.Context) {
	if ck, err := c.Cookie(s.PhoneCookie()); err == nil && ck != "" {
		now := s.now()
		_, err := s.store.UpdateRefreshToken(c.Request.Context(), auth.HashToken(ck), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
			if rt.Kind != refresh.KindPhone {
				return nil, store.ErrNotFound
			}
			refresh.Revoke(rt, now)
			return nil, nil
		})
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
