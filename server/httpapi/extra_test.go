package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/server/requestid"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/testclock"
)

// echoFeature is another feature package's handler: it answers with the
// request id it finds in its context and the size of the body it could
// read.
type echoFeature struct{}

func (echoFeature) Mount(r gin.IRouter) {
	r.POST("/extra/echo", func(c *gin.Context) {
		n, err := io.Copy(io.Discard, c.Request.Body)
		c.JSON(http.StatusOK, gin.H{"request_id": requestid.FromContext(c.Request.Context()), "n": n, "cut": err != nil})
	})
	r.GET("/extra/panic", func(*gin.Context) { panic("extra exploded") })
}

// A feature mounted through Deps.Extra runs behind the API's middleware:
// the request id in its context, the body limit, panic recovery, HSTS
// over HTTPS, and cross-origin protection.
func TestExtraFeatureGetsTheMiddleware(t *testing.T) {
	var buf syncBuffer
	e := newEnvDeps(t, &buf, func(d *httpapi.Deps) { d.Extra = append(d.Extra, echoFeature{}) },
		func(c *httpapi.Config, _ *httpapi.Limits, _ *testclock.Clock) { c.SecureCookies = true })

	w := e.do(req{method: "POST", path: "/extra/echo", body: `{}`, header: map[string]string{"X-Request-ID": "extra-1"}})
	expect(t, w, 200, "")
	if got := decode[map[string]any](t, w); got["request_id"] != "extra-1" || got["cut"] != false {
		t.Errorf("answer %v, want the request id extra-1 in the feature's context", got)
	}
	if w.Header().Get("X-Request-ID") != "extra-1" || w.Header().Get("Strict-Transport-Security") == "" {
		t.Errorf("headers %v, want X-Request-ID and HSTS", w.Header())
	}

	big := `"` + strings.Repeat("x", httpapi.MaxBody) + `"`
	if got := decode[map[string]any](t, e.do(req{method: "POST", path: "/extra/echo", body: big})); got["cut"] != true {
		t.Errorf("a body over MaxBody read in full: %v", got)
	}

	w = e.do(req{method: "GET", path: "/extra/panic", header: map[string]string{"X-Request-ID": "extra-2"}})
	expect(t, w, 500, api.ErrInternal)
	if l := logLines(buf.String(), "extra exploded"); len(l) != 1 || !strings.Contains(l[0], "request_id=extra-2") {
		t.Errorf("panic lines %q, want one with request_id=extra-2", l)
	}

	w = e.do(req{method: "POST", path: "/extra/echo", body: `{}`, header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
	expect(t, w, 403, api.ErrForbidden)
}
