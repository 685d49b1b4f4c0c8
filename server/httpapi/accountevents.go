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
func (s *signedInDevices) events(c *gin.Context) {
	claims, ok := s.auth.verifyBearer(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	key := devices.EventKey(claims.UserID)
	// Subscribe before the first read, as the session stream does.
	changed, unsubscribe := s.hub.Subscribe(key)
	defer func() { unsubscribe() }()
	reason, err := s.revokedReason(ctx, claims)
	if err != nil {
		s.writeError(c, err)
		return
	}
	var w *heldWait
	if reason == "" {
		// One stream per sign-in: a newer one displaces the older.
		// Tokens from before devices existed go by their own id.
		waitKey := "sid:" + claims.SID
		if claims.SID == "" {
			waitKey = "jti:" + claims.ID
		}
		if w, ok = s.waits.hold(waitKey, waitUserStream); !ok {
			s.writeError(c, errTooManyWaits)
			return
		}
		defer s.waits.release(w)
	}

	defer s.abortOnPanic(c)

	ev := beginEventStream(c)
	if reason != "" {
		if err := ev.send(api.EventRevoked, api.Revoked{Reason: reason}); err != nil {
			s.streamGone(c, err)
		}
		return
	}
	// Headers out now, so the client knows the stream is held.
	if err := ev.rc.Flush(); err != nil {
		s.streamGone(c, err)
		return
	}
	// The wheel writes the pings from here on: every write of the
	// handler's goes through pd.
	pd := s.pings.startTicking(ev, s.ping, recheckPings)
	defer pd.stop()

	expiry := time.NewTimer(max(claims.ExpiresAt.Sub(s.now()), 0))
	defer expiry.Stop()
	for {
		select {
		case <-changed:
			unsubscribe()
			changed, unsubscribe = s.hub.Subscribe(key)
		case <-pd.tick:
		case <-pd.failed:
			s.streamGone(c, pd.err)
			return
		case <-expiry.C:
			return // the client connects again with its refreshed token
		case <-s.closing:
			return // the client connects again, to another server
		case <-w.displaced:
			return // a newer stream of this sign-in took over
		case <-ctx.Done():
			lineOf(c).status = 499
			return
		}
		reason, err := s.revokedReason(ctx, claims)
		if err != nil {
			if ctx.Err() != nil {
				s.streamGone(c, err)
				return
			}
			// A store failure: the client connects again later.
			s.streamEnds.log.WarnContext(ctx, "account event stream: check sign-in", "err", err)
			return
		}
		if reason != "" {
			if err := pd.send(api.EventRevoked, api.Revoked{Reason: reason}); err != nil {
				s.streamGone(c, err)
			}
			return
		}
	}
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
