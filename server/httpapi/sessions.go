package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/qrpng"
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

// desktopSessions is the desktop's side of login sessions: it creates
// them, tells the desktop how they change (status polls, long-polls and
// event streams), draws their QR codes, hands over the tokens once and
// lets the desktop withdraw.
type desktopSessions struct {
	errorWriter
	streamEnds
	log   *slog.Logger
	now   func() time.Time // UTC
	store interface {
		CreateSession(ctx context.Context, s login.Session) error
		Session(ctx context.Context, id string) (login.Session, error)
		UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error)
		DeliverSession(ctx context.Context, id string, d store.Device, rt store.RefreshToken, now time.Time) (login.Session, error)
		User(ctx context.Context, id string) (store.User, error)
	}
	hub     *notify.Hub
	waits   *heldWaits
	closing <-chan struct{} // closed on shutdown: held waits answer now
	mint    minter
	metrics Metrics
	create  Limiter // new sessions per client
	qr      *qrpng.Encoder
	pings   *pingWheel // shared by every stream's pings
	audit   recorder

	publicURL string
	ttl       time.Duration // a session's life
}

// Mount adds the desktop's login-session endpoints.
func (s *desktopSessions) Mount(r gin.IRouter) {
	r.POST("/login-sessions", s.createSession)
	r.GET("/login-sessions/:id/status", s.sessionStatus)
	r.GET("/login-sessions/:id/events", s.sessionEvents)
	r.GET("/login-sessions/:id/qr.png", s.sessionQR)
	r.DELETE("/login-sessions/:id", s.withdrawSession)
}

// cleanField trims s, drops control and format characters and line and
// paragraph separators (U+2028, U+2029) and cuts it to max characters, so
// a device name cannot smuggle line breaks into logs or onto the phone's
// screen, nor bidi tricks.
func cleanField(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
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

func (s *desktopSessions) createSession(c *gin.Context) {
	if !s.allow(c, s.create, clientKey(c)) {
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
		ExpiresAt: now.Add(s.ttl),
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
	s.metrics.SessionCreated()
	c.JSON(http.StatusCreated, api.CreateSessionResponse{
		ID:        sess.ID,
		PollToken: pollToken,
		VerifyURL: s.verifyURL(sess.ID),
		UserCode:  auth.FormatUserCode(sess.UserCode),
		QRURL:     s.qrURL(sess.ID),
		ExpiresAt: sess.ExpiresAt,
		ExpiresIn: int(s.ttl / time.Second),
		Interval:  pollInterval,
	})
}

func (s *desktopSessions) verifyURL(id string) string { return s.publicURL + "/m/" + id }

// desktopSession loads the session named in the path and checks the
// request's poll token against it in constant time.
func (s *desktopSessions) desktopSession(c *gin.Context) (login.Session, bool) {
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

// sessionStatus answers the desktop's (long-)poll. A held poll parks
// under this frame, so the rest is in methods of their own (see wake.go).
func (s *desktopSessions) sessionStatus(c *gin.Context) {
	after, wait, ok := s.pollParams(c)
	if !ok {
		return
	}
	if after == "" || wait == 0 {
		s.answerNow(c)
		return
	}
	s.holdPoll(c, after, time.Now().Add(time.Duration(wait)*time.Second))
}

// pollParams reads a poll's after and wait, answering the request when
// one is not valid.
//
//go:noinline
func (s *desktopSessions) pollParams(c *gin.Context) (after api.Status, wait int, ok bool) {
	after = api.Status(c.Query("after"))
	if after != "" && !after.Valid() {
		s.writeError(c, errorf(api.ErrInvalidRequest, "after must be one of pending, scanned, confirmed, cancelled, expired."))
		return "", 0, false
	}
	if w := c.Query("wait"); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			s.writeError(c, errorf(api.ErrInvalidRequest, "wait must be a whole number of seconds from 0 to 30."))
			return "", 0, false
		}
		wait = min(n, api.MaxWait)
	}
	return after, wait, true
}

// answerNow answers a poll that does not wait.
//
//go:noinline
func (s *desktopSessions) answerNow(c *gin.Context) {
	if sess, ok := s.desktopSession(c); ok {
		s.answerPoll(c, sess)
	}
}

// deliver hands the tokens of a confirmed session to the desktop at ip. The
// status change and the refresh token are saved in one transaction, so of
// any number of concurrent polls exactly one gets tokens.
func (s *desktopSessions) deliver(ctx context.Context, sess login.Session, ip string, now time.Time) (int, any, *audit.Entry, error) {
	u, err := s.store.User(ctx, sess.UserID)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("load confirming user: %w", err)
	}
	refresh, rt, err := s.mint.refresh(u.ID, auth.AMRQR)
	if err != nil {
		return 0, nil, nil, err
	}
	access, err := s.mint.access(u.ID, auth.AMRQR, rt.FamilyID)
	if err != nil {
		return 0, nil, nil, err
	}
	// The desktop's description and address come from the session.
	saved, err := s.store.DeliverSession(ctx, sess.ID, devices.Start(rt, devices.Info{}, ""), rt, now)
	if errors.Is(err, login.ErrExpired) {
		return http.StatusOK, statusResponse(saved, login.Expired), nil, nil
	}
	if err != nil {
		return 0, nil, nil, err
	}
	s.hub.Publish(sess.ID)
	if !saved.ConfirmedAt.IsZero() { // zero for sessions confirmed before it was recorded
		s.metrics.NoticeLatency(now.Sub(saved.ConfirmedAt))
	}
	delivered := &audit.Entry{Time: now, Event: audit.TokensDelivered, UserID: u.ID, Username: u.Username,
		DeviceID: rt.FamilyID, Device: sess.Device.Name, IP: ip, Detail: map[string]string{"session_id": sess.ID}}
	resp := statusResponse(saved, login.Confirmed)
	tokens := s.mint.pair(access, refresh)
	user := apiUser(u)
	resp.Tokens, resp.User = &tokens, &user
	return http.StatusOK, resp, delivered, nil
}

func (s *desktopSessions) withdrawSession(c *gin.Context) {
	sess, ok := s.desktopSession(c)
	if !ok {
		return
	}
	// Withdrawing twice succeeds; only the first cancels.
	var cancelled bool
	if _, err := s.store.UpdateSession(c.Request.Context(), sess.ID, func(ls *login.Session) error {
		cancelled = ls.Status != login.Cancelled
		return login.Withdraw(ls, s.now())
	}); err != nil {
		s.writeError(c, err)
		return
	}
	if cancelled {
		s.metrics.SessionCancelled()
	}
	s.hub.Publish(sess.ID)
	c.JSON(http.StatusOK, api.StatusResponse{Status: api.StatusCancelled})
}
