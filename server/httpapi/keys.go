package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/auth"
	"github.com/qrlogin/qrlogin/shared/api"
)

// keys publishes the public keys that verify access tokens.
type keys struct {
	tokens interface{ JWKS() auth.JWKS }
}

// Mount adds GET /.well-known/jwks.json.
func (k keys) Mount(r gin.IRouter) {
	r.GET("/.well-known/jwks.json", k.jwks)
}

func (k keys) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, k.tokens.JWKS())
}

// health answers load balancers: ok while the store answers.
type health struct {
	errorWriter
	store interface {
		Ping(ctx context.Context) error
	}
}

// Mount adds GET /healthz.
func (h health) Mount(r gin.IRouter) {
	r.GET("/healthz", h.health)
}

func (h health) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		h.log.WarnContext(ctx, "health check failed", slog.Any("err", err))
		h.writeError(c, errorf(api.ErrUnavailable, "The store is not reachable."))
		return
	}
	c.JSON(http.StatusOK, api.Health{Status: "ok"})
}
