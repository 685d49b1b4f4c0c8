package httpapi

import (
	"bytes"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	mobileweb "github.com/qrlogin/qrlogin/mobile-web"
	"github.com/qrlogin/qrlogin/shared/api"
)

// PageCSP is the Content-Security-Policy of the phone page: its own
// scripts, styles and API only, no inline code, never framed.
const PageCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// pages serves the phone's web page (package mobileweb): the page at /m
// (type a user code) and /m/<id> (the QR code's verify URL), and its
// assets under /m/static/.
type pages struct{ errorWriter }

// Mount adds /m and its assets.
func (s pages) Mount(r gin.IRouter) {
	m := r.Group("/m", pageHeaders)
	m.GET("", page)
	m.GET("/", page)
	m.GET("/:id", page)
	m.GET("/static/*name", s.pageAsset)
}

// pageHeaders sets the security headers of every page response.
func pageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", PageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Next()
}

// page answers the HTML page in the language the browser prefers. The
// page reads the session id from its own URL.
func page(c *gin.Context) {
	lang := mobileweb.Language(c.GetHeader("Accept-Language"))
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Language")
	h.Set("Content-Language", lang)
	c.Data(http.StatusOK, "text/html; charset=utf-8", mobileweb.Index(lang))
}

// pageAsset serves one embedded asset. The page links assets with their
// version (?v=), so an answer for the current version may be cached for
// good; any other URL is revalidated.
func (s pages) pageAsset(c *gin.Context) {
	name := strings.TrimPrefix(path.Clean(c.Param("name")), "/")
	data, err := fs.ReadFile(mobileweb.Static(), name)
	if err != nil {
		s.writeError(c, errorf(api.ErrNotFound, "No such file."))
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h := c.Writer.Header()
	h.Set("Content-Type", ctype)
	if c.Query("v") == mobileweb.Version() {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(c.Writer, c.Request, name, time.Time{}, bytes.NewReader(data))
}
