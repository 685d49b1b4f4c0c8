package httpapi_test

import (
	"image"
	"image/png"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/qrlogin/qrlogin/shared/api"
)

// qrPath is the path and query of s's qr_url, after checking that the URL
// lies under the public URL.
func qrPath(t *testing.T, s api.CreateSessionResponse, query string) string {
	t.Helper()
	u, err := url.Parse(s.QRURL)
	if err != nil || u.Scheme+"://"+u.Host != "http://192.0.2.10:8080" || u.RawQuery != "" {
		t.Fatalf("qr_url %q: want an absolute URL under the public URL, without a query", s.QRURL)
	}
	return u.Path + query
}

// decodeQR decodes a PNG response with an independent QR decoder.
func decodeQR(t *testing.T, w *httptest.ResponseRecorder) (image.Image, string) {
	t.Helper()
	img, err := png.Decode(w.Body)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR code: %v", err)
	}
	return img, res.GetText()
}

func TestQRImage(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	tests := []struct {
		query string
		size  int
	}{
		{"", 256},
		{"?size=128", 128},
		{"?size=256", 256},
		{"?size=300", 300},
		{"?size=1024", 1024},
		{"?size=0999", 999},
	}
	for _, tt := range tests {
		// Public: no token, no cookie.
		w := e.do(req{method: "GET", path: qrPath(t, s, tt.query)})
		if w.Code != 200 {
			t.Fatalf("GET qr.png%s: %d %s", tt.query, w.Code, w.Body)
		}
		for k, v := range map[string]string{
			"Content-Type":           "image/png",
			"Cache-Control":          "private, max-age=120",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("qr.png%s: %s = %q, want %q", tt.query, k, got, v)
			}
		}
		img, text := decodeQR(t, w)
		if text != s.VerifyURL {
			t.Errorf("qr.png%s decodes to %q, want verify_url %q", tt.query, text, s.VerifyURL)
		}
		if b := img.Bounds(); b.Dx() != tt.size || b.Dy() != tt.size {
			t.Errorf("qr.png%s is %dx%d, want %dx%d", tt.query, b.Dx(), b.Dy(), tt.size, tt.size)
		}
	}
	// Each session's image is its own.
	s2 := e.create()
	if _, text := decodeQR(t, e.do(req{method: "GET", path: qrPath(t, s2, "")})); text != s2.VerifyURL || text == s.VerifyURL {
		t.Errorf("second session's image decodes to %q, want %q", text, s2.VerifyURL)
	}
}

func TestQRImageBadSize(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	for _, q := range []string{
		"size=", "size=0", "size=127", "size=1025", "size=99999", "size=-256",
		"size=+256", "size=%20256", "size=256.0", "size=1e3", "size=0x100",
		"size=abc", "size=256px", "size=256&size=300", "size=" + strings.Repeat("9", 40),
	} {
		w := e.do(req{method: "GET", path: qrPath(t, s, "?"+q)})
		expect(t, w, 400, api.ErrInvalidRequest)
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("?%s: Cache-Control %q on an error, want no-store", q, cc)
		}
	}
}

func TestQRImageOnlyForLiveSessions(t *testing.T) {
	e := newEnv(t)
	phone := e.login("alice", alicePass).AccessToken
	notFound := func(t *testing.T, path string) {
		t.Helper()
		w := e.do(req{method: "GET", path: path})
		expect(t, w, 404, api.ErrNotFound)
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q on 404, want no-store", cc)
		}
	}
	ok := func(t *testing.T, s api.CreateSessionResponse) {
		t.Helper()
		if w := e.do(req{method: "GET", path: qrPath(t, s, "")}); w.Code != 200 {
			t.Fatalf("live session: %d %s", w.Code, w.Body)
		}
	}

	t.Run("unknown", func(t *testing.T) {
		notFound(t, "/api/v1/login-sessions/AAAAAAAAAAAAAAAAAAAAAA/qr.png")
		notFound(t, "/api/v1/login-sessions/not%20an%20id/qr.png?size=300")
	})
	t.Run("withdrawn by the desktop", func(t *testing.T) {
		s := e.create()
		ok(t, s)
		expect(t, e.do(req{method: "DELETE", path: "/api/v1/login-sessions/" + s.ID, bearer: s.PollToken}), 200, "")
		notFound(t, qrPath(t, s, ""))
	})
	t.Run("cancelled by the phone", func(t *testing.T) {
		s := e.create()
		expect(t, e.phone("scan", s.ID, phone), 200, "")
		ok(t, s) // scanned is still live
		expect(t, e.phone("cancel", s.ID, phone), 200, "")
		notFound(t, qrPath(t, s, ""))
	})
	t.Run("consumed", func(t *testing.T) {
		s := e.create()
		expect(t, e.phone("scan", s.ID, phone), 200, "")
		expect(t, e.phone("confirm", s.ID, phone), 200, "")
		ok(t, s) // confirmed, tokens not yet fetched
		if st := decode[api.SessionStatusResponse](t, e.status(s, "")); st.Tokens == nil {
			t.Fatal("no tokens delivered")
		}
		notFound(t, qrPath(t, s, ""))
	})
	t.Run("expired", func(t *testing.T) {
		s := e.create()
		e.clock.Advance(2 * time.Minute)
		notFound(t, qrPath(t, s, ""))
	})
}

// TestQRImageMaxAge: the image may be cached for as long as the session
// lives, in whole seconds, and no longer.
func TestQRImageMaxAge(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	for _, tt := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "private, max-age=120"},
		{50*time.Second + 500*time.Millisecond, "private, max-age=69"},
		{69 * time.Second, "private, max-age=0"}, // half a second left
	} {
		e.clock.Advance(tt.advance)
		w := e.do(req{method: "GET", path: qrPath(t, s, "?size=128")})
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if got := w.Header().Get("Cache-Control"); got != tt.want {
			t.Errorf("after %v more: Cache-Control %q, want %q", tt.advance, got, tt.want)
		}
	}
	e.clock.Advance(time.Second)
	expect(t, e.do(req{method: "GET", path: qrPath(t, s, "")}), 404, api.ErrNotFound)
}

func TestQRImageMethods(t *testing.T) {
	e := newEnv(t)
	s := e.create()
	expect(t, e.do(req{method: "POST", path: qrPath(t, s, "")}), 405, api.ErrMethodNotAllowed)
}
