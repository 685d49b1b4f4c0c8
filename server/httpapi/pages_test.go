package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	mobileweb "github.com/qrlogin/qrlogin/mobile-web"
	"github.com/qrlogin/qrlogin/server/httpapi"
	"github.com/qrlogin/qrlogin/shared/api"
)

// pagesHandler is the real router; the page routes need none of the
// server's services.
func pagesHandler(t *testing.T) http.Handler {
	t.Helper()
	srv, err := httpapi.New(httpapi.Config{PublicURL: "http://192.0.2.10:8080"}, httpapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

func get(t *testing.T, h http.Handler, path string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// securityHeaders are on every response under /m.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
	"X-Content-Type-Options": "nosniff",
}

func TestPage(t *testing.T) {
	h := pagesHandler(t)
	tests := []struct {
		path, acceptLanguage, wantLang string
	}{
		{"/m", "", "en"},
		{"/m/", "en-US,en;q=0.9", "en"},
		{"/m/abcdefghijklmnopqrstuv", "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"},
		{"/m/abcdefghijklmnopqrstuv", "en;q=0.5,zh-TW;q=0.8", "zh-CN"},
		{"/m/not-a-real-id", "fr", "en"}, // the page itself says "not found"
	}
	for _, tt := range tests {
		w := get(t, h, tt.path, map[string]string{"Accept-Language": tt.acceptLanguage})
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", tt.path, w.Code)
			continue
		}
		for k, v := range securityHeaders {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", tt.path, k, got, v)
			}
		}
		for k, v := range map[string]string{
			"Content-Type":     "text/html; charset=utf-8",
			"Cache-Control":    "no-store",
			"Vary":             "Accept-Language",
			"Content-Language": tt.wantLang,
		} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s (%q): %s = %q, want %q", tt.path, tt.acceptLanguage, k, got, v)
			}
		}
		if want := `<html lang="` + tt.wantLang + `">`; !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET %s (%q): page lacks %s", tt.path, tt.acceptLanguage, want)
		}
		if w.Body.String() != string(mobileweb.Index(tt.wantLang)) {
			t.Errorf("GET %s: body is not mobileweb.Index(%q)", tt.path, tt.wantLang)
		}
	}
}

func TestPageAssets(t *testing.T) {
	h := pagesHandler(t)
	v := mobileweb.Version()
	tests := []struct {
		path      string
		wantType  string
		wantCache string
	}{
		{"/m/static/app.js?v=" + v, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/m/static/app.css?v=" + v, "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/m/static/icon.svg?v=" + v, "image/svg+xml", "public, max-age=31536000, immutable"},
		{"/m/static/app.js", "text/javascript; charset=utf-8", "no-cache"},                // unversioned
		{"/m/static/app.js?v=0123456789ab", "text/javascript; charset=utf-8", "no-cache"}, // another version
	}
	for _, tt := range tests {
		w := get(t, h, tt.path, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", tt.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tt.wantType {
			t.Errorf("GET %s: Content-Type %q, want %q", tt.path, got, tt.wantType)
		}
		if got := w.Header().Get("Cache-Control"); got != tt.wantCache {
			t.Errorf("GET %s: Cache-Control %q, want %q", tt.path, got, tt.wantCache)
		}
		for k, v := range securityHeaders {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", tt.path, k, got, v)
			}
		}
		if w.Body.Len() == 0 {
			t.Errorf("GET %s: empty body", tt.path)
		}
	}
}

func TestPageAssetNotFound(t *testing.T) {
	h := pagesHandler(t)
	for _, path := range []string{
		"/m/static/nope.js",
		"/m/static/",
		"/m/static/../web.go",
		"/m/static/%2e%2e/index.html",
		"/m/static/../../go.mod",
		"/m/static/app.js/x",
	} {
		w := get(t, h, path, nil)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
			continue
		}
		var e api.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != api.ErrNotFound {
			t.Errorf("GET %s: body %q, want a not_found error", path, w.Body.String())
		}
	}
}

// TestPageMethods: the page is read-only.
func TestPageMethods(t *testing.T) {
	h := pagesHandler(t)
	for _, path := range []string{"/m", "/m/abcdefghijklmnopqrstuv", "/m/static/app.js"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", path, w.Code)
		}
	}
}
