package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/refresh"
	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// DeviceGrantType is the grant_type of RFC 8628 §3.4.
const DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DefaultInterval is the device grant's polling interval (RFC 8628 §3.2).
const DefaultInterval = 5 * time.Second

// Store is what the endpoints need of server/store's Store.
type Store interface {
	Client(ctx context.Context, id string) (store.Client, error)
	User(ctx context.Context, id string) (store.User, error)
	CreateSession(ctx context.Context, s login.Session) error
	SessionByPollToken(ctx context.Context, hash []byte) (login.Session, error)
	UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error)
	DeliverSession(ctx context.Context, id string, d store.Device, rt store.RefreshToken, now time.Time) (login.Session, error)
	UpdateRefreshToken(ctx context.Context, hash []byte, fn func(*store.RefreshToken) (*store.RefreshToken, error)) (store.RefreshToken, error)
	Device(ctx context.Context, id string) (store.Device, error)
}

// Tokens signs and verifies clients' tokens (auth.Issuer, or the server's
// key ring over it).
type Tokens interface {
	SignClient(issuer, clientID, userID, amr, scope, sid string) (string, time.Time, error)
	VerifyClient(token, issuer string) (auth.Claims, error)
	SignIDToken(t auth.IDToken) (string, error)
	TTL() time.Duration
}

// Publisher wakes whoever waits on a login session (notify.Hub).
type Publisher interface {
	Publish(id string)
}

// Limiter is a per-key rate limiter (ratelimit.Limiter).
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// Config holds the endpoints' settings.
type Config struct {
	// PublicURL is the issuer: the base of every endpoint URL, the "iss"
	// of ID tokens and client access tokens.
	PublicURL string
	// SessionTTL is how long a device code lives (a login session's TTL).
	SessionTTL time.Duration
	// Interval is the device grant's polling interval; DefaultInterval
	// when zero.
	Interval time.Duration
	// Refresh is the refresh-token policy, the API's own.
	Refresh refresh.Policy
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Deps are the services the endpoints use.
type Deps struct {
	Store  Store
	Tokens Tokens
	Hub    Publisher
	// Create limits device authorizations per client IP, as new login
	// sessions are limited on the API; nil allows all.
	Create Limiter
	// Log is where internal errors and refresh-token reuse are logged,
	// with the request id (its handler is wrapped with requestid).
	Log *slog.Logger
	// Metrics counts new device authorizations and refresh-token reuse
	// (metrics.Metrics); nil counts nothing.
	Metrics Metrics
	// Audit records deliveries and refresh-token reuse (audit.Recorder);
	// nil records nothing.
	Audit interface {
		Record(ctx context.Context, e audit.Entry)
	}
}

// Metrics receives what the endpoints count.
type Metrics interface {
	SessionCreated()
	RefreshReused()
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) SessionCreated() {}
func (noMetrics) RefreshReused()  {}

// Handler serves the OAuth 2.0 and OpenID Connect endpoints. Create it
// with New and Mount it on the server's router, which supplies request
// logging, panic recovery, the body limit and cross-origin protection.
type Handler struct {
	cfg     Config
	store   Store
	tokens  Tokens
	hub     Publisher
	create  Limiter
	log     *slog.Logger
	metrics Metrics
	audit   interface {
		Record(ctx context.Context, e audit.Entry)
	}
}

// New returns the endpoints over d.
func New(cfg Config, d Deps) *Handler {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	// Lines logged with a request's context carry its request id.
	log := slog.New(requestid.NewHandler(d.Log.Handler()))
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if d.Audit == nil {
		d.Audit = audit.Discard{}
	}
	return &Handler{cfg: cfg, store: d.Store, tokens: d.Tokens, hub: d.Hub, create: d.Create, log: log, metrics: d.Metrics, audit: d.Audit}
}

// The endpoint paths, under the public URL.
const (
	PathDiscovery      = "/.well-known/openid-configuration"
	PathASMetadata     = "/.well-known/oauth-authorization-server"
	PathJWKS           = "/.well-known/jwks.json" // served by the API
	PathDevice         = "/oauth2/device_authorization"
	PathToken          = "/oauth2/token"
	PathUserinfo       = "/oauth2/userinfo"
	PathRevoke         = "/oauth2/revoke"
	pathVerify         = "/m"
	deviceCodeBytes    = 32 // 256-bit device codes, the poll tokens
	refreshTokenBytes  = 32
	maxPresentedSecret = 512 // longer device codes and tokens are not ours
)

// Mount adds the endpoints to r.
func (h *Handler) Mount(r gin.IRouter) {
	r.GET(PathDiscovery, h.discovery)
	r.GET(PathASMetadata, h.discovery)
	o := r.Group("/oauth2", noStore)
	o.POST("/device_authorization", h.deviceAuthorization)
	o.POST("/token", h.token)
	o.POST("/revoke", h.revoke)
	o.GET("/userinfo", h.userinfo)
	o.POST("/userinfo", h.userinfo)
}

// noStore keeps answers (most carry tokens) out of every cache (RFC 6749
// §5.1).
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
}

func (h *Handler) now() time.Time { return h.cfg.Now().UTC() }

// Metadata is the discovery document: OpenID Connect Discovery 1.0 §3 and
// RFC 8414 §2 share it.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
}

// Metadata returns the discovery document.
func (h *Handler) Metadata() Metadata {
	base := h.cfg.PublicURL
	authMethods := []string{"none", "client_secret_basic", "client_secret_post"}
	return Metadata{
		Issuer:                            base,
		DeviceAuthorizationEndpoint:       base + PathDevice,
		TokenEndpoint:                     base + PathToken,
		UserinfoEndpoint:                  base + PathUserinfo,
		JWKSURI:                           base + PathJWKS,
		RevocationEndpoint:                base + PathRevoke,
		GrantTypesSupported:               []string{DeviceGrantType, "refresh_token"},
		ScopesSupported:                   Scopes,
		ResponseTypesSupported:            []string{}, // no authorization endpoint: the device grant only
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{"EdDSA"},
		TokenEndpointAuthMethodsSupported: authMethods,
		RevocationAuthMethodsSupported:    authMethods,
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "amr", "name", "preferred_username"},
	}
}

func (h *Handler) discovery(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, h.Metadata())
}

// DeviceAuthorization is the 200 body of the device authorization
// endpoint (RFC 8628 §3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// deviceAuthorization starts a sign-in: a login session in the same state
// machine as a desktop's, recording the client and scope. Its poll token
// is the device code.
func (h *Handler) deviceAuthorization(c *gin.Context) {
	if h.create != nil {
		if ok, retry := h.create.Allow(c.ClientIP()); !ok {
			h.fail(c, &Error{Status: http.StatusTooManyRequests, Code: errTemporarily,
				Description: "Too many sign-in requests from this address; try again later.", RetryAfter: retry})
			return
		}
	}
	ctx := c.Request.Context()
	form, cl, ok := h.clientRequest(ctx, c)
	if !ok {
		return
	}
	scope, err := parseScope(form.Get("scope"))
	if err != nil {
		h.fail(c, err)
		return
	}
	code, err := auth.NewToken(deviceCodeBytes)
	if err != nil {
		h.fail(c, fmt.Errorf("new device code: %w", err))
		return
	}
	now := h.now()
	sess := login.Session{
		PollTokenHash: auth.HashToken(code),
		Status:        login.Pending,
		// The client reports nothing about the device; the phone shows
		// the client's registered name and what the server saw.
		Device:       login.Device{IP: c.ClientIP()},
		CreatedAt:    now,
		ExpiresAt:    now.Add(h.cfg.SessionTTL),
		ClientID:     cl.ID,
		Scope:        scope,
		PollInterval: h.cfg.Interval,
	}
	// As for the API's sessions: ids never collide, user codes rarely.
	for attempt := 0; ; attempt++ {
		sess.ID = auth.NewID()
		if sess.UserCode, err = auth.NewUserCode(); err != nil {
			h.fail(c, fmt.Errorf("new user code: %w", err))
			return
		}
		err = h.store.CreateSession(ctx, sess)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || attempt == 4 {
			h.fail(c, fmt.Errorf("create login session: %w", err))
			return
		}
	}
	h.metrics.SessionCreated()
	c.JSON(http.StatusOK, DeviceAuthorization{
		DeviceCode:              code,
		UserCode:                auth.FormatUserCode(sess.UserCode),
		VerificationURI:         h.cfg.PublicURL + pathVerify,
		VerificationURIComplete: h.cfg.PublicURL + pathVerify + "/" + sess.ID,
		ExpiresIn:               int(h.cfg.SessionTTL / time.Second),
		Interval:                int(h.cfg.Interval / time.Second),
	})
}

// TokenResponse is the 200 body of the token endpoint (RFC 6749 §5.1,
// OpenID Connect Core §3.1.3.3).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (h *Handler) token(c *gin.Context) {
	ctx := c.Request.Context()
	form, cl, ok := h.clientRequest(ctx, c)
	if !ok {
		return
	}
	var (
		resp TokenResponse
		err  error
	)
	switch gt := form.Get("grant_type"); gt {
	case DeviceGrantType:
		resp, err = h.deviceToken(ctx, cl, form, c.ClientIP())
	case "refresh_token":
		resp, err = h.refreshToken(ctx, c, cl, form)
	case "":
		err = badRequest(errInvalidRequest, "grant_type is required.")
	default:
		err = badRequest(errUnsupportedGrantType, "Supported grant types: "+DeviceGrantType+" and refresh_token.")
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// errMoved: the session left the waiting states between the read and the
// locked update; look again.
var errMoved = errors.New("login session changed meanwhile")

// deviceToken answers a device-grant poll. Final answers come first, so no
// slow_down ever hides them, and a confirmed session delivers at once,
// however soon after the last poll: a client told by the event stream or
// a long-poll that the phone confirmed must not be made to wait.
func (h *Handler) deviceToken(ctx context.Context, cl store.Client, form url.Values, ip string) (TokenResponse, error) {
	code := form.Get("device_code")
	if code == "" {
		return TokenResponse{}, badRequest(errInvalidRequest, "device_code is required.")
	}
	unknown := badRequest(errInvalidGrant, "Unknown device code.")
	if len(code) > maxPresentedSecret {
		return TokenResponse{}, unknown
	}
	hash := auth.HashToken(code)
	for range 3 {
		now := h.now()
		sess, err := h.store.SessionByPollToken(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return TokenResponse{}, unknown
		}
		if err != nil {
			return TokenResponse{}, fmt.Errorf("load device code: %w", err)
		}
		// Another client's code (or a desktop's poll token) is unknown
		// to this client: the same answer as for a code never issued.
		if sess.ClientID != cl.ID {
			return TokenResponse{}, unknown
		}
		switch sess.StatusAt(now) {
		case login.Expired:
			return TokenResponse{}, badRequest(errExpiredToken, "The sign-in request expired; start a new one.")
		case login.Cancelled:
			return TokenResponse{}, badRequest(errAccessDenied, "The sign-in was refused on the phone.")
		case login.Consumed:
			return TokenResponse{}, badRequest(errInvalidGrant, "The device code was already used.")
		case login.Confirmed:
			return h.deliver(ctx, cl, sess, ip, now)
		}
		var verdict error
		_, err = h.store.UpdateSession(ctx, sess.ID, func(s *login.Session) error {
			if st := s.StatusAt(now); st != login.Pending && st != login.Scanned {
				return errMoved
			}
			verdict = login.NotePoll(s, now)
			return nil
		})
		switch {
		case errors.Is(err, errMoved):
			continue
		case err != nil:
			return TokenResponse{}, fmt.Errorf("record device poll: %w", err)
		case errors.Is(verdict, login.ErrSlowDown):
			return TokenResponse{}, badRequest(errSlowDown, "Polled too often; wait 5 seconds more between polls from now on.")
		}
		return TokenResponse{}, badRequest(errAuthorizationPending, "Waiting for the phone to confirm.")
	}
	return TokenResponse{}, errors.New("device code kept changing state")
}

// deliver hands out the tokens of a confirmed session to the client at
// ip, exactly once: the session's move to consumed and the refresh token
// are stored in one transaction (store.DeliverSession).
func (h *Handler) deliver(ctx context.Context, cl store.Client, sess login.Session, ip string, now time.Time) (TokenResponse, error) {
	u, err := h.store.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return TokenResponse{}, badRequest(errAccessDenied, "The account that confirmed no longer exists.")
	}
	if err != nil {
		return TokenResponse{}, fmt.Errorf("load confirming user: %w", err)
	}
	var rt store.RefreshToken
	var refreshTok string
	// The sign-in's device: its refresh chain's family, or, without a
	// refresh token, a device of its own that lasts as its access token.
	dev := store.Device{ID: auth.NewID(), Kind: api.DeviceApp, ClientID: cl.ID, AppName: cl.Name,
		CreatedAt: now.UTC(), LastUsedAt: now.UTC(), ExpiresAt: now.UTC().Add(h.tokens.TTL())}
	if hasScope(sess.Scope, ScopeOfflineAccess) {
		if refreshTok, err = auth.NewToken(refreshTokenBytes); err != nil {
			return TokenResponse{}, fmt.Errorf("new refresh token: %w", err)
		}
		rt = h.cfg.Refresh.Start(refresh.KindRefresh, u.ID, auth.AMRQR, auth.NewID(), auth.NewID(), auth.HashToken(refreshTok), now)
		rt.ClientID, rt.Scope = cl.ID, sess.Scope
		dev = devices.Start(rt, devices.Info{AppName: cl.Name}, "")
	}
	// Signed before the delivery, so a signing failure cannot lose tokens
	// that the session already counts as delivered.
	resp, err := h.issue(cl, u, sess.Scope, dev.ID, now)
	if err != nil {
		return TokenResponse{}, err
	}
	_, err = h.store.DeliverSession(ctx, sess.ID, dev, rt, now)
	switch {
	case errors.Is(err, login.ErrConsumed):
		return TokenResponse{}, badRequest(errInvalidGrant, "The device code was already used.")
	case errors.Is(err, login.ErrExpired):
		return TokenResponse{}, badRequest(errExpiredToken, "The sign-in request expired; start a new one.")
	case errors.Is(err, login.ErrInvalidState):
		return TokenResponse{}, badRequest(errAccessDenied, "The sign-in was withdrawn.")
	case err != nil:
		return TokenResponse{}, fmt.Errorf("deliver tokens: %w", err)
	}
	if h.hub != nil {
		h.hub.Publish(sess.ID)
	}
	// The sign-in is the device stored with it (its tokens' sid). An
	// app's device reports no name: the app's registered name stands in.
	name := sess.Device.Name
	if name == "" {
		name = cl.Name
	}
	h.audit.Record(ctx, audit.Entry{Time: now, Event: audit.TokensDelivered, UserID: u.ID, Username: u.Username,
		DeviceID: dev.ID, Device: name, IP: ip,
		Detail: map[string]string{"client_id": cl.ID, "scope": sess.Scope, "session_id": sess.ID}})
	resp.RefreshToken = refreshTok
	return resp, nil
}

// issue signs an access token for cl in the sign-in (device) sid and, with
// scope openid, an ID token for a sign-in made at authTime.
func (h *Handler) issue(cl store.Client, u store.User, scope, sid string, authTime time.Time) (TokenResponse, error) {
	access, _, err := h.tokens.SignClient(h.cfg.PublicURL, cl.ID, u.ID, auth.AMRQR, scope, sid)
	if err != nil {
		return TokenResponse{}, fmt.Errorf("sign access token: %w", err)
	}
	resp := TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(h.tokens.TTL() / time.Second), Scope: scope}
	if hasScope(scope, ScopeOpenID) {
		t := auth.IDToken{Issuer: h.cfg.PublicURL, Subject: u.ID, Audience: cl.ID, AuthTime: authTime}
		if hasScope(scope, ScopeProfile) {
			t.Name, t.PreferredUsername = u.DisplayName, u.Username
		}
		if resp.IDToken, err = h.tokens.SignIDToken(t); err != nil {
			return TokenResponse{}, fmt.Errorf("sign ID token: %w", err)
		}
	}
	return resp, nil
}

// errScope: a refresh asked for more than the sign-in granted.
var errScope = errors.New("scope exceeds the grant")

// refreshToken rotates a client's refresh token under the API's rules
// (server/refresh): a token of another client is refused and left alone;
// a used one revokes its whole chain.
func (h *Handler) refreshToken(ctx context.Context, c *gin.Context, cl store.Client, form url.Values) (TokenResponse, error) {
	tok := form.Get("refresh_token")
	if tok == "" {
		return TokenResponse{}, badRequest(errInvalidRequest, "refresh_token is required.")
	}
	invalid := badRequest(errInvalidGrant, "The refresh token is invalid, expired or revoked; sign in again.")
	if len(tok) > maxPresentedSecret {
		return TokenResponse{}, invalid
	}
	asked, err := parseScope(form.Get("scope"))
	if err != nil {
		return TokenResponse{}, err
	}
	next, err := auth.NewToken(refreshTokenBytes)
	if err != nil {
		return TokenResponse{}, fmt.Errorf("new refresh token: %w", err)
	}
	nextID, nextHash, now := auth.NewID(), auth.HashToken(next), h.now()
	old, err := h.store.UpdateRefreshToken(ctx, auth.HashToken(tok), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		if rt.ClientID == cl.ID && asked != "" && !subScope(asked, rt.Scope) {
			return nil, errScope
		}
		n, err := h.cfg.Refresh.Rotate(rt, cl.ID, nextID, nextHash, now)
		return &n, err
	})
	switch {
	case errors.Is(err, errScope):
		return TokenResponse{}, badRequest(errInvalidScope, "The scope asked for exceeds what the sign-in granted.")
	case errors.Is(err, store.ErrTokenReused):
		h.metrics.RefreshReused()
		h.log.WarnContext(ctx, "refresh token reused; its sign-in was revoked",
			"user_id", old.UserID, "client_id", cl.ID, "client_ip", c.ClientIP())
		h.recordReuse(ctx, c.ClientIP(), cl, old)
		return TokenResponse{}, invalid
	case errors.Is(err, store.ErrTokenInvalid), errors.Is(err, store.ErrNotFound):
		return TokenResponse{}, invalid
	case err != nil:
		return TokenResponse{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	u, err := h.store.User(ctx, old.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return TokenResponse{}, invalid
	}
	if err != nil {
		return TokenResponse{}, fmt.Errorf("load user of refresh token: %w", err)
	}
	scope := old.Scope
	if asked != "" {
		scope = asked
	}
	resp, err := h.issue(cl, u, scope, old.FamilyID, old.AuthTime)
	if err != nil {
		return TokenResponse{}, err
	}
	resp.RefreshToken = next
	return resp, nil
}

// recordReuse records that client cl at ip presented old, a refresh
// token already rotated, and that its sign-in was ended for it.
func (h *Handler) recordReuse(ctx context.Context, ip string, cl store.Client, old store.RefreshToken) {
	e := audit.Entry{Time: h.now(), Event: audit.RefreshReuse, UserID: old.UserID, DeviceID: old.FamilyID, IP: ip,
		Detail: map[string]string{"kind": string(old.Kind), "client_id": cl.ID}}
	if u, err := h.store.User(ctx, old.UserID); err == nil {
		e.Username = u.Username
	}
	h.audit.Record(ctx, e)
}

// revoke is RFC 7009. A refresh token of the calling client is revoked
// with its whole chain. Any other token — unknown, expired, another
// client's, one of the API's own — is answered 200 as well and left
// alone: §2.2 answers invalid tokens so, and a different answer for
// another client's token would tell a caller that its guess is a live
// token. An access token of the calling client answers
// unsupported_token_type: it is a signed JWT that lapses by itself within
// the access-token lifetime, and claiming to have revoked it would be
// false.
func (h *Handler) revoke(c *gin.Context) {
	ctx := c.Request.Context()
	form, cl, ok := h.clientRequest(ctx, c)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		h.fail(c, badRequest(errInvalidRequest, "token is required."))
		return
	}
	if len(tok) > 4096 {
		c.Status(http.StatusOK)
		return
	}
	now := h.now()
	wasLive := false
	rt, err := h.store.UpdateRefreshToken(ctx, auth.HashToken(tok), func(rt *store.RefreshToken) (*store.RefreshToken, error) {
		if rt.ClientID != cl.ID || rt.Kind != refresh.KindRefresh {
			return nil, store.ErrNotFound
		}
		wasLive = rt.RevokedAt.IsZero()
		refresh.Revoke(rt, now)
		return nil, nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.fail(c, fmt.Errorf("revoke refresh token: %w", err))
		return
	}
	if err == nil && wasLive {
		// The chain's revocation ended the app's sign-in (its device).
		e := audit.Entry{Time: now, Event: audit.DeviceSignedOut, UserID: rt.UserID, DeviceID: rt.FamilyID, Device: cl.Name,
			IP: c.ClientIP(), Detail: map[string]string{"by": "app", "client_id": cl.ID, "reason": api.ReasonSignedOut}}
		if u, err := h.store.User(ctx, rt.UserID); err == nil {
			e.Username = u.Username
		}
		h.audit.Record(ctx, e)
	}
	if errors.Is(err, store.ErrNotFound) {
		if claims, verr := h.tokens.VerifyClient(tok, h.cfg.PublicURL); verr == nil && claims.ClientID == cl.ID {
			h.fail(c, badRequest(errUnsupportedTokenType, fmt.Sprintf(
				"Access tokens cannot be revoked; they expire within %v. Revoke the refresh token.", h.tokens.TTL())))
			return
		}
	}
	c.Status(http.StatusOK)
}

// UserInfo is the 200 body of the userinfo endpoint (OpenID Connect Core
// §5.3.2).
type UserInfo struct {
	Subject           string `json:"sub"`
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
}

// userinfo answers with the signed-in user's claims, for a client's
// access token with scope openid (RFC 6750 errors).
func (h *Handler) userinfo(c *gin.Context) {
	ctx := c.Request.Context()
	header := c.GetHeader("Authorization")
	if header == "" {
		h.fail(c, &Error{Status: http.StatusUnauthorized, Code: errInvalidToken,
			Description: "An access token is required (Authorization: Bearer ...).", Challenge: `Bearer realm="qrlogin"`})
		return
	}
	tok, ok := bearerToken(header)
	invalid := func(desc string) *Error {
		return &Error{Status: http.StatusUnauthorized, Code: errInvalidToken, Description: desc,
			Challenge: `Bearer realm="qrlogin", error="invalid_token", error_description="` + desc + `"`}
	}
	if !ok {
		h.fail(c, invalid("The access token is invalid or expired."))
		return
	}
	claims, err := h.tokens.VerifyClient(tok, h.cfg.PublicURL)
	if err != nil {
		h.fail(c, invalid("The access token is invalid or expired."))
		return
	}
	cl, err := h.store.Client(ctx, claims.ClientID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && auth.Revoked(claims.IssuedAt, cl.CreatedAt)) {
		h.fail(c, invalid("The access token's client is no longer registered."))
		return
	}
	if err != nil {
		h.fail(c, fmt.Errorf("load client: %w", err))
		return
	}
	u, err := h.store.User(ctx, claims.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && auth.Revoked(claims.IssuedAt, u.TokensValidAfter)) {
		h.fail(c, invalid("The access token was revoked; sign in again."))
		return
	}
	if err != nil {
		h.fail(c, fmt.Errorf("load user: %w", err))
		return
	}
	// A sign-in this database does not know (a deleted client's went with
	// it, refused above) is no revocation; an ended one is.
	if claims.SID != "" {
		d, err := h.store.Device(ctx, claims.SID)
		if err == nil && (d.Ended() || d.UserID != u.ID) {
			h.fail(c, invalid("This sign-in was ended; sign in again."))
			return
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			h.fail(c, fmt.Errorf("load device: %w", err))
			return
		}
	}
	if !hasScope(claims.Scope, ScopeOpenID) {
		h.fail(c, &Error{Status: http.StatusForbidden, Code: errInsufficientScope,
			Description: "The access token lacks the openid scope.",
			Challenge:   `Bearer realm="qrlogin", error="insufficient_scope", scope="openid"`})
		return
	}
	info := UserInfo{Subject: u.ID}
	if hasScope(claims.Scope, ScopeProfile) {
		info.Name, info.PreferredUsername = u.DisplayName, u.Username
	}
	c.JSON(http.StatusOK, info)
}

// bearerToken is the token of an "Authorization: Bearer ..." header.
func bearerToken(h string) (string, bool) {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if t := strings.TrimSpace(h[7:]); t != "" {
			return t, true
		}
	}
	return "", false
}

// clientRequest reads the request's form and authenticates the client it
// names, answering the error itself when either fails.
func (h *Handler) clientRequest(ctx context.Context, c *gin.Context) (url.Values, store.Client, bool) {
	form, err := readForm(c)
	if err != nil {
		h.fail(c, err)
		return nil, store.Client{}, false
	}
	cl, err := h.authenticateClient(ctx, c, form)
	if err != nil {
		h.fail(c, err)
		return nil, store.Client{}, false
	}
	return form, cl, true
}
