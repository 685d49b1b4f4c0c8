package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/lanaddr"
	"github.com/qrlogin/qrlogin/server/login"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// phoneSessions is the phone's side of login sessions: a signed-in phone
// looks a session up (by the QR code's id or the typed user code), scans,
// confirms or cancels it.
type phoneSessions struct {
	errorWriter
	now   func() time.Time // UTC
	store interface {
		Session(ctx context.Context, id string) (login.Session, error)
		SessionByUserCode(ctx context.Context, code string) (login.Session, error)
		UpdateSession(ctx context.Context, id string, fn func(*login.Session) error) (login.Session, error)
		Client(ctx context.Context, id string) (store.Client, error)
	}
	hub     *notify.Hub
	auth    *authenticator
	metrics Metrics
	net     proxies // to tell where phone and desktop are
	lookup  Limiter // user-code look-ups per client
	audit   recorder
}

// Mount adds the phone's login-session endpoints.
func (s *phoneSessions) Mount(r gin.IRouter) {
	r.GET("/login-sessions/by-code/:code", s.auth.requireUser, s.sessionByCode)
	r.GET("/login-sessions/:id", s.auth.requireUser, s.sessionInfo)
	r.POST("/login-sessions/:id/scan", s.auth.requireUser, s.phoneTransition(scan))
	r.POST("/login-sessions/:id/confirm", s.auth.requireUser, s.phoneTransition(confirm))
	r.POST("/login-sessions/:id/cancel", s.auth.requireUser, s.phoneTransition(cancel))
}

// phoneView is what the phone is shown of a session, with the name under
// which an OAuth client that started it is registered.
func (s *phoneSessions) phoneView(c *gin.Context, sess login.Session) (api.SessionInfo, error) {
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
		Network: string(lanaddr.Network(s.net.desktopSeen(sess.Device.IP), s.net.seen(c))),
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
func (s *phoneSessions) writePhoneView(c *gin.Context, sess login.Session) {
	info, err := s.phoneView(c, sess)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, info)
}

func (s *phoneSessions) sessionInfo(c *gin.Context) {
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

func (s *phoneSessions) sessionByCode(c *gin.Context) {
	if !s.allow(c, s.lookup, clientKey(c)) {
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
func (s *phoneSessions) phoneTransition(a phoneAction) gin.HandlerFunc {
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
		// Each succeeds once per session: the stored status changes.
		switch a {
		case confirm:
			s.metrics.SessionConfirmed()
		case cancel:
			s.metrics.SessionCancelled()
		}
		// Recorded before the desktop wakes, so that the log has the
		// confirm before the delivery it allows.
		if a != scan {
			s.record(c, a, u, saved)
		}
		s.hub.Publish(id)
		if a == scan {
			s.writePhoneView(c, saved)
			return
		}
		c.JSON(http.StatusOK, api.StatusResponse{Status: publicStatus(saved.Status)})
	}
}

// record records the phone's confirm or cancel of sess by u.
func (s *phoneSessions) record(c *gin.Context, a phoneAction, u store.User, sess login.Session) {
	ev := audit.SessionConfirmed
	if a == cancel {
		ev = audit.SessionCancelled
	}
	e := userEntry(c, s.now(), ev, u)
	e.DeviceID, e.Device = sess.ID, sess.Device.Name
	e.Detail = map[string]string{"desktop_ip": sess.Device.IP}
	if sess.ClientID != "" {
		e.Detail["client_id"] = sess.ClientID
	}
	s.audit.Record(c.Request.Context(), e)
}
