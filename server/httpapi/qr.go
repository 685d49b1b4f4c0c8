package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/qrpng"
	"github.com/qrlogin/qrlogin/server/store"
	"github.com/qrlogin/qrlogin/shared/api"
)

// qrURL is the absolute URL of session id's QR image, at the default size.
func (s *desktopSessions) qrURL(id string) string {
	return s.publicURL + "/api/v1/login-sessions/" + id + "/qr.png"
}

// qrSize reads the size parameter of a QR image request: absent means
// the default; anything but one run of decimal digits within the range
// is refused.
func qrSize(c *gin.Context) (int, error) {
	vals, ok := c.GetQueryArray("size")
	if !ok {
		return qrpng.DefaultSize, nil
	}
	bad := errorf(api.ErrInvalidRequest, fmt.Sprintf("size must be a whole number of pixels from %d to %d.", qrpng.MinSize, qrpng.MaxSize))
	if len(vals) != 1 || len(vals[0]) == 0 || len(vals[0]) > 4 {
		return 0, bad
	}
	for _, r := range vals[0] {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < qrpng.MinSize || n > qrpng.MaxSize {
		return 0, bad
	}
	return n, nil
}

// sessionQR draws a live session's QR code as a PNG. It needs no token:
// the image holds only the verify URL, which anyone who sees the screen
// can read. An ended session has no image, so an old URL shows nothing
// usable.
func (s *desktopSessions) sessionQR(c *gin.Context) {
	size, err := qrSize(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	id := c.Param("id")
	if !validID.MatchString(id) {
		s.writeError(c, errorf(api.ErrNotFound, "No such sign-in request."))
		return
	}
	sess, err := s.store.Session(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(c, errorf(api.ErrNotFound, "No such sign-in request."))
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("load login session: %w", err))
		return
	}
	now := s.now()
	if !sess.StatusAt(now).Live() {
		s.writeError(c, errorf(api.ErrNotFound, "The sign-in request has ended."))
		return
	}
	img, err := qrpng.Image(s.verifyURL(id), size)
	if errors.Is(err, qrpng.ErrSize) {
		s.writeError(c, errorf(api.ErrInvalidRequest, "The QR code does not fit in "+strconv.Itoa(size)+" pixels; ask for a larger size."))
		return
	}
	if err != nil {
		s.writeError(c, fmt.Errorf("draw QR code: %w", err))
		return
	}
	h := c.Writer.Header()
	// Replaces the group's no-store: the image holds no secret and stays
	// right until the session expires. private: it is one user's.
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(int64(sess.ExpiresAt.Sub(now)/time.Second), 10))
	h.Set("Content-Type", "image/png")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
	if err := s.qr.Encode(c.Writer, img); err != nil {
		// Headers are sent: the client went away mid-image.
		s.log.DebugContext(c.Request.Context(), "QR image not sent", slog.Any("err", err))
	}
}
