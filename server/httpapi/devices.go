package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/devices"
	"github.com/qrlogin/qrlogin/server/notify"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// signedInDevices lets a signed-in phone list the account's sign-ins and
// end any of them (GET and DELETE /devices), and lets every sign-in learn
// at once that it was ended (GET /me/events).
type signedInDevices struct {
	errorWriter
	streamEnds
	now   func() time.Time // UTC
	store interface {
		User(ctx context.Context, id string) (store.User, error)
		Device(ctx context.Context, id string) (store.Device, error)
		Devices(ctx context.Context, userID string, now time.Time) ([]store.Device, error)
		EndDevice(ctx context.Context, userID, id, reason string, now time.Time) (store.Device, error)
	}
	hub     *notify.Hub
	auth    *authenticator
	cookie  phoneCookie
	ended   signInsEnded
	waits   *heldWaits
	closing <-chan struct{} // closed on shutdown: streams end now
	pings   *pingWheel
}

// Mount adds the device list and the account's event stream.
func (s *signedInDevices) Mount(r gin.IRouter) {
	r.GET("/devices", s.auth.requireUser, s.list)
	r.DELETE("/devices/:id", s.auth.requireUser, s.end)
	r.GET("/me/events", s.events)
}

func (s *signedInDevices) list(c *gin.Context) {
	u, now := userOf(c), s.now()
	ds, err := s.store.Devices(c.Request.Context(), u.ID, now)
	if err != nil {
		s.writeError(c, fmt.Errorf("list devices: %w", err))
		return
	}
	current := deviceOf(c)
	resp := api.DevicesResponse{Devices: make([]api.SignedInDevice, 0, len(ds))}
	for _, d := range ds {
		resp.Devices = append(resp.Devices, api.SignedInDevice{
			ID:         d.ID,
			Kind:       d.Kind,
			Name:       d.Name,
			Platform:   d.Platform,
			AppName:    d.AppName,
			IP:         d.IP,
			CreatedAt:  d.CreatedAt.UTC().Truncate(time.Second),
			LastUsedAt: d.LastUsedAt.UTC().Truncate(time.Second),
			LastIP:     d.LastIP,
			Current:    current != "" && d.ID == current,
			New:        d.New(now),
		})
	}
	c.JSON(http.StatusOK, resp)
}

// end signs one of the account's sign-ins out: its refresh chain or phone
// cookie is revoked, its access tokens are refused and its event stream
// told, at once. Another account's device is answered like an unknown
// one.
func (s *signedInDevices) end(c *gin.Context) {
	id := c.Param("id")
	notFound := errorf(api.ErrNotFound, "No such signed-in device.")
	if !validID.MatchString(id) {
		s.writeError(c, notFound)
		return
	}
	u := userOf(c)
	d, err := s.store.EndDevice(c.Request.Context(), u.ID, id, api.ReasonSignedOut, s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, notFound)
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("end device: %w", err))
		return
	}
	s.ended.signedOutDevice(c, u, d, "phone")
	// The phone signed itself out: its cookie is revoked, drop it too.
	if id == deviceOf(c) && s.cookie.value(c) != "" {
		s.cookie.clear(c)
	}
	c.Status(http.StatusNoContent)
}

// signInsEnded is what follows a committed end of sign-ins: the account's
// event streams on this server are woken (with PostgreSQL the store's
// NOTIFY wakes those on other servers, and this one a second time, which
// only costs a read), and the event is recorded in the audit log.
type signInsEnded struct {
	hub   *notify.Hub
	audit interface {
		Record(context.Context, audit.Entry)
	}
	store interface {
		Device(ctx context.Context, id string) (store.Device, error)
	}
	now func() time.Time
}

// publish wakes the event streams of userID's sign-ins.
func (e signInsEnded) publish(userID string) { e.hub.Publish(devices.EventKey(userID)) }

// signedOut follows the end of u's sign-in deviceID, by "phone" (from the
// device list) or "self" (its own sign-out).
func (e signInsEnded) signedOut(c *gin.Context, u store.User, deviceID, by string) {
	d, err := e.store.Device(c.Request.Context(), deviceID)
	if err != nil {
		d = store.Device{ID: deviceID} // recorded by id only
	}
	e.signedOutDevice(c, u, d, by)
}

func (e signInsEnded) signedOutDevice(c *gin.Context, u store.User, d store.Device, by string) {
	e.publish(u.ID)
	e.audit.Record(c.Request.Context(), audit.Entry{
		Time: e.now(), Event: audit.DeviceSignedOut, UserID: u.ID, Username: u.Username,
		DeviceID: d.ID, Device: deviceLabel(d), IP: c.ClientIP(),
		Detail: map[string]string{"reason": api.ReasonSignedOut, "by": by, "kind": d.Kind},
	})
}

// everywhere follows the end of every sign-in of u.
func (e signInsEnded) everywhere(c *gin.Context, u store.User) {
	e.publish(u.ID)
	e.audit.Record(c.Request.Context(), audit.Entry{
		Time: e.now(), Event: audit.SignedOutEverywhere, UserID: u.ID, Username: u.Username,
		DeviceID: deviceOf(c), IP: c.ClientIP(),
		Detail: map[string]string{"reason": api.ReasonLogoutAll},
	})
}

// deviceLabel names a device as it reported itself.
func deviceLabel(d store.Device) string {
	switch {
	case d.Name != "" && d.AppName != "":
		return d.Name + " (" + d.AppName + ")"
	case d.Name != "":
		return d.Name
	default:
		return d.AppName
	}
}
