package httpapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// events is the account event stream of one sign-in: a "revoked" event
// with the reason as soon as the sign-in of the request's access token is
// ended, then the end of the stream. A sign-in ended already is told at
// once, so a desktop that was off learns why. The stream also ends,
// without an event, when the access token expires (the client connects
// again with its refreshed one), when a newer stream of the same sign-in
// takes over, or on shutdown.
//
// It wakes on the hub key devices.EventKey(user), which every end of the
// user's sign-ins publishes (and, with PostgreSQL, every server's
// listener), and checks again every recheckPings pings (a minute), so an
// end made by another process on the same SQLite file (qrlogin-server
// user passwd) is seen within a minute; idle, it costs a ping every 15 s
// and a read a minute.
//
// Its goroutine waits with a small stack (see wake.go): the work is
// accountStream's.
func (s *signedInDevices) events(c *gin.Context) {
	defer s.abortOnPanic(c)
	serveHeld(&accountStream{s: s, c: c})
}

// accountStream is one sign-in's held account event stream.
type accountStream struct {
	s       *signedInDevices
	c       *gin.Context
	holding // on the hub key of the user's sign-in ends; alarm is the token's expiry

	claims auth.Claims
}

// open checks the access token and either tells an ended sign-in why at
// once or starts the stream; it reports whether the stream waits.
//
//go:noinline
func (st *accountStream) open() bool {
	s, c := st.s, st.c
	var ok bool
	offStack(func() { st.claims, ok = s.auth.verifyBearer(c) })
	if !ok {
		return false
	}
	// Subscribe before the first read, as the session stream does.
	st.subscribe(s.hub, devices.EventKey(st.claims.UserID))
	var reason string
	var err error
	offStack(func() { reason, err = s.revokedReason(c.Request.Context(), st.claims) })
	if err != nil {
		s.writeError(c, err)
		return false
	}
	if reason == "" {
		// One stream per sign-in: a newer one displaces the older.
		// Tokens from before devices existed go by their own id.
		waitKey := "sid:" + st.claims.SID
		if st.claims.SID == "" {
			waitKey = "jti:" + st.claims.ID
		}
		st.waits = s.waits
		if st.w, ok = s.waits.hold(waitKey, waitUserStream, st.bell); !ok {
			s.writeError(c, errTooManyWaits)
			return false
		}
	}
	ev := beginEventStream(c)
	if reason != "" {
		defer ev.finish()
		if err := ev.send(api.EventRevoked, api.Revoked{Reason: reason}); err != nil {
			s.streamGone(c, err)
		}
		return false
	}
	// Headers out now, so the client knows the stream is held.
	if err := ev.rc.Flush(); err != nil {
		ev.finish()
		s.streamGone(c, err)
		return false
	}
	// The wheel writes the pings from here on: every write of the
	// stream's goes through pd.
	st.pd = s.pings.startTicking(ev, st.bell, recheckPings)
	st.alarm = time.NewTimer(max(st.claims.ExpiresAt.Sub(s.now()), 0))
	st.timer, st.closing, st.gone = st.alarm.C, s.closing, c.Request.Context().Done()
	return true
}

// next acts on what woke the stream and reports whether it goes on.
//
//go:noinline
func (st *accountStream) next(why wake) bool {
	s, c := st.s, st.c
	ctx := c.Request.Context()
	switch why {
	case wokeFailed:
		s.streamGone(c, st.pd.err)
		return false
	case wokeTimer:
		return false // the client connects again with its refreshed token
	case wokeClosing:
		return false // the client connects again, to another server
	case wokeDisplaced:
		return false // a newer stream of this sign-in took over
	case wokeGone:
		lineOf(c).status = 499
		return false
	case wokeChanged:
		st.resubscribe()
	}
	var reason string
	var err error
	offStack(func() { reason, err = s.revokedReason(ctx, st.claims) })
	if err != nil {
		if ctx.Err() != nil {
			s.streamGone(c, err)
			return false
		}
		// A store failure: the client connects again later.
		s.streamEnds.log.WarnContext(ctx, "account event stream: check sign-in", "err", err)
		return false
	}
	if reason != "" {
		if err := st.pd.send(api.EventRevoked, api.Revoked{Reason: reason}); err != nil {
			s.streamGone(c, err)
		}
		return false
	}
	return true
}

// recheckPings is how many pings of an account event stream pass between
// checks of its sign-in made without a wake-up (a minute at 15 s).
const recheckPings = 4

// revokedReason is why the sign-in of claims has ended (one of the
// api.Reason* values), or "" while it is live.
func (s *signedInDevices) revokedReason(ctx context.Context, claims auth.Claims) (string, error) {
	u, err := s.store.User(ctx, claims.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return api.ReasonUserDeleted, nil
	}
	if err != nil {
		return "", fmt.Errorf("load user of access token: %w", err)
	}
	// A sign-in this database does not know goes by the user's revocation
	// time alone, as the authenticator does.
	if claims.SID != "" {
		d, err := s.store.Device(ctx, claims.SID)
		switch {
		case err == nil && d.UserID != u.ID:
			return api.ReasonSignedOut, nil
		case err == nil && d.Ended():
			return d.EndReason, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return "", fmt.Errorf("load device of access token: %w", err)
		}
	}
	if auth.Revoked(claims.IssuedAt, u.TokensValidAfter) {
		// A token without a known device: signed out everywhere, or
		// the password changed; the first is the likelier.
		return api.ReasonLogoutAll, nil
	}
	return "", nil
}
