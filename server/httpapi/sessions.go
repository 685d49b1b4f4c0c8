package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/lanaddr"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

const (
	pollTokenBytes = 32  // 256-bit poll tokens
	pollInterval   = 2   // seconds between polls for clients that do not long-poll
	maxDeviceField = 100 // characters kept of each device field
	maxUserAgent   = 300
)

// validID matches ids this server could have issued; anything else is
// answered 404 without a store look-up.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

func (s *Server) mountSessions(r gin.IRouter) {
	r.POST("/login-sessions", s.createSession)
	r.GET("/login-sessions/:id/status", s.sessionStatus)
	r.GET("/login-sessions/:id/events", s.sessionEvents)
	r.GET("/login-sessions/:id/qr.png", s.sessionQR)
	r.DELETE("/login-sessions/:id", s.withdrawSession)

	r.GET("/login-sessions/by-code/:code", s.requireUser, s.sessionByCode)
	r.GET("/login-sessions/:id", s.requireUser, s.sessionInfo)
	r.POST("/login-sessions/:id/scan", s.requireUser, s.phoneTransition(scan))
	r.POST("/login-sessions/:id/confirm", s.requireUser, s.phoneTransition(confirm))
	r.POST("/login-sessions/:id/cancel", s.requireUser, s.phoneTransition(cancel))
}

// cleanField trims s, drops control and format characters and cuts it to
// max characters, so a device name cannot smuggle line breaks into logs or
// bidi tricks onto the phone's screen.
func cleanField(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		if n == max {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

func (s *Server) createSession(c *gin.Context) {
	if !s.allow(c, s.limits.Create, clientKey(c)) {
		return
	}
	var req api.CreateSessionRequest
	if err := decodeJSON(c, &req, true); err != nil {
		s.writeError(c, err)
		return
	}
	pollToken, err := auth.NewToken(pollTokenBytes)
	if err != nil {
		s.writeError(c, fmt.Errorf("new poll token: %w", err))
		return
	}
	now := s.now()
	sess := login.Session{
		PollTokenHash: auth.HashToken(pollToken),
		Status:        login.Pending,
		Device: login.Device{
			Name:      cleanField(req.DeviceName, maxDeviceField),
			Platform:  cleanField(req.Platform, maxDeviceField),
			AppName:   cleanField(req.AppName, maxDeviceField),
			IP:        c.ClientIP(),
			UserAgent: cleanField(c.Request.UserAgent(), maxUserAgent),
		},
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.SessionTTL),
	}
	// Ids and codes are random; a collision is astronomically rare for ids
	// and rare for codes, so a few attempts always suffice.
	for attempt := 0; ; attempt++ {
		sess.ID = auth.NewID()
		if sess.UserCode, err = auth.NewUserCode(); err != nil {
			s.writeError(c, fmt.Errorf("new user code: %w", err))
			return
		}
		err = s.store.CreateSession(c.Request.Context(), sess)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || attempt == 4 {
			s.writeError(c, fmt.Errorf("create login session: %w", err))
			return
		}
	}
	c.JSON(http.StatusCreated, api.CreateSessionResponse{
		ID:        sess.ID,
		PollToken: pollToken,
		VerifyURL: s.verifyURL(sess.ID),
		UserCode:  auth.FormatUserCode(sess.UserCode),
		QRURL:     s.qrURL(sess.ID),
		ExpiresAt: sess.ExpiresAt,
		ExpiresIn: int(s.cfg.SessionTTL / time.Second),
		Interval:  pollInterval,
	})
}

func (s *Server) verifyURL(id string) string { return s.cfg.PublicURL + "/m/" + id }

// desktopSession loads the session named in the path and checks the
// request's poll token against it in constant time.
func (s *Server) desktopSession(c *gin.Context) (login.Session, bool) {
	id := c.Param("id")
	if !validID.MatchString(id) {
		s.writeError(c, errorf(api.ErrNotFound, "No such sign-in request."))
		return login.Session{}, false
	}
	tok := bearer(c)
	if tok == "" {
		s.writeError(c, errorf(api.ErrUnauthorized, "The poll token is required (Authorization: Bearer ...)."))
		return login.Session{}, false
	}
	sess, err := s.store.Session(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, errorf(api.ErrNotFound, "No such sign-in request."))
		return login.Session{}, false
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load login session: %w", err))
		return login.Session{}, false
	}
	if subtle.ConstantTimeCompare(auth.HashToken(tok), sess.PollTokenHash) != 1 {
		s.writeError(c, errorf(api.ErrUnauthorized, "The poll token is wrong."))
		return login.Session{}, false
	}
	return sess, true
}

// publicStatus is a stored status as the API reports it.
func publicStatus(st login.Status) api.Status {
	if st == login.Consumed {
		return api.StatusConfirmed
	}
	return api.Status(st)
}

func statusResponse(sess login.Session, st login.Status) api.SessionStatusResponse {
	r := api.SessionStatusResponse{Status: publicStatus(st), ExpiresAt: sess.ExpiresAt.UTC()}
	if sess.UserID != "" {
		r.ScannedBy = &api.ScannedBy{DisplayName: sess.UserDisplayName}
	}
	return r
}

// sessionStatus answers the desktop's (long-)poll.
func (s *Server) sessionStatus(c *gin.Context) {
	after := api.Status(c.Query("after"))
	if after != "" && !after.Valid() {
		s.writeError(c, errorf(api.ErrInvalidRequest, "after must be one of pending, scanned, confirmed, cancelled, expired."))
		return
	}
	wait := 0
	if w := c.Query("wait"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			s.writeError(c, errorf(api.ErrInvalidRequest, "wait must be a whole number of seconds from 0 to 30."))
			return
		}
		wait = min(n, api.MaxWait)
	}
	if after == "" || wait == 0 {
		sess, ok := s.desktopSession(c)
		if ok {
			s.answerPoll(c, sess)
		}
		return
	}
	s.holdPoll(c, after, time.Now().Add(time.Duration(wait)*time.Second))
}

// deliver hands the tokens of a confirmed session to the desktop. The
// status change and the refresh token are saved in one transaction, so of
// any number of concurrent polls exactly one gets tokens.
func (s *Server) deliver(ctx context.Context, sess login.Session, now time.Time) (int, any, error) {
	u, err := s.store.User(ctx, sess.UserID)
	if err != nil {
		return 0, nil, fmt.Errorf("load confirming user: %w", err)
	}
	access, _, err := s.tokens.Sign(u.ID, auth.AMRQR)
	if err != nil {
		return 0, nil, fmt.Errorf("sign access token: %w", err)
	}
	refresh, rt, err := s.newRefreshToken(u.ID, auth.AMRQR)
	if err != nil {
		return 0, nil, err
	}
	saved, err := s.store.DeliverSession(ctx, sess.ID, rt, now)
	if errors.Is(err, login.ErrExpired) {
		return http.StatusOK, statusResponse(saved, login.Expired), nil
	}
	if err != nil {
		return 0, nil, err
	}
	s.hub.Publish(sess.ID)
	resp := statusResponse(saved, login.Confirmed)
	tokens := s.tokenPair(access, refresh)
	user := apiUser(u)
	resp.Tokens, resp.User = &tokens, &user
	return http.StatusOK, resp, nil
}

func (s *Server) withdrawSession(c *gin.Context) {
	sess, ok := s.desktopSession(c)
	if !ok {
		return
	}
	if _, err := s.store.UpdateSession(c.Request.Context(), sess.ID, func(ls *login.Session) error {
		return login.Withdraw(ls, s.now())
	}); err != nil {
		s.writeError(c, err)
		return
	}
	s.hub.Publish(sess.ID)
	c.JSON(http.StatusOK, api.StatusResponse{Status: api.StatusCancelled})
}

// phoneView is what the phone is shown of a session, with the name under
// which an OAuth client that started it is registered.
func (s *Server) phoneView(c *gin.Context, sess login.Session) (api.SessionInfo, error) {
	info := api.SessionInfo{
		ID:        sess.ID,
		Status:    publicStatus(sess.StatusAt(s.now())),
		ExpiresAt: sess.ExpiresAt.UTC(),
		Device: api.Device{
			Name:      sess.Device.Name,
			Platform:  sess.Device.Platform,
			AppName:   sess.Device.AppName,
			IP:        sess.Device.IP,
			UserAgent: sess.Device.UserAgent,
			CreatedAt: sess.CreatedAt.UTC(),
		},
		Network: string(lanaddr.Network(s.desktopSeen(sess.Device.IP), s.seen(c))),
	}
	if sess.ClientID != "" {
		info.Client = &api.Client{ID: sess.ClientID}
		cl, err := s.store.Client(c.Request.Context(), sess.ClientID)
		switch {
		case err == nil:
			info.Client.Name = cl.Name
		case !errors.Is(err, store.ErrNotFound): // a removed client keeps its id only
			return api.SessionInfo{}, fmt.Errorf("load client of login session: %w", err)
		}
	}
	return info, nil
}

// writePhoneView answers with the phone's view of sess.
func (s *Server) writePhoneView(c *gin.Context, sess login.Session) {
	info, err := s.phoneView(c, sess)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, info)
}

func (s *Server) sessionInfo(c *gin.Context) {
	id := c.Param("id")
	if !validID.MatchString(id) {
		s.writeError(c, errorf(api.ErrNotFound, "No such sign-in request."))
		return
	}
	sess, err := s.store.Session(c.Request.Context(), id)
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.writePhoneView(c, sess)
}

func (s *Server) sessionByCode(c *gin.Context) {
	if !s.allow(c, s.limits.Lookup, clientKey(c)) {
		return
	}
	raw := c.Param("code")
	code, ok := auth.NormalizeUserCode(raw)
	if !ok || utf8.RuneCountInString(raw) > 20 {
		s.writeError(c, errorf(api.ErrNotFound, "No sign-in request has that code."))
		return
	}
	sess, err := s.store.SessionByUserCode(c.Request.Context(), code)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, errorf(api.ErrNotFound, "No sign-in request has that code."))
		return
	}
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.writePhoneView(c, sess)
}

// phoneAction is one of the phone's state changes.
type phoneAction int

const (
	scan phoneAction = iota
	confirm
	cancel
)

// phoneTransition runs a phone action on the session in one transaction
// and wakes the desktop's long-poll.
func (s *Server) phoneTransition(a phoneAction) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if !validID.MatchString(id) {
			s.writeError(c, errorf(api.ErrNotFound, "No such sign-in request."))
			return
		}
		u := userOf(c)
		saved, err := s.store.UpdateSession(c.Request.Context(), id, func(ls *login.Session) error {
			now := s.now()
			switch a {
			case scan:
				return login.Scan(ls, u.ID, u.DisplayName, now)
			case confirm:
				return login.Confirm(ls, u.ID, now)
			default:
				return login.Cancel(ls, u.ID, now)
			}
		})
		if err != nil {
			s.writeError(c, err)
			return
		}
		s.hub.Publish(id)
		if a == scan {
			s.writePhoneView(c, saved)
			return
		}
		c.JSON(http.StatusOK, api.StatusResponse{Status: publicStatus(saved.Status)})
	}
}
