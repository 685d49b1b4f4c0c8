package httpapi

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/audit"
	"github.com/qrlogin/qrlogin/server/store"
)

// recorder records security events (audit.Recorder).
type recorder interface {
	Record(ctx context.Context, e audit.Entry)
}

// Sign-in methods named in the detail of password sign-in entries.
const (
	viaAPI       = "api"        // POST /api/v1/auth/login
	viaPhonePage = "phone_page" // POST /api/v1/auth/cookie
)

// userEntry is an entry of event about u, made at now by the client of c.
func userEntry(c *gin.Context, now time.Time, event audit.Event, u store.User) audit.Entry {
	return audit.Entry{Time: now, Event: event, UserID: u.ID, Username: u.Username, IP: c.ClientIP()}
}

// recordReuse records that the refresh token old came back after it was
// rotated, and that its sign-in was ended for it.
func recordReuse(c *gin.Context, now time.Time, rec recorder, users interface {
	User(ctx context.Context, id string) (store.User, error)
}, old store.RefreshToken) {
	e := audit.Entry{Time: now, Event: audit.RefreshReuse, UserID: old.UserID, DeviceID: old.FamilyID, IP: c.ClientIP(),
		Detail: map[string]string{"kind": string(old.Kind)}}
	if old.ClientID != "" {
		e.Detail["client_id"] = old.ClientID
	}
	if u, err := users.User(c.Request.Context(), old.UserID); err == nil {
		e.Username = u.Username
	}
	rec.Record(c.Request.Context(), e)
}
