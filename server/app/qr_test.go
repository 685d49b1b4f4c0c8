package app_test

import (
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/qrlogin/qrlogin/server/app/apptest"
	"github.com/qrlogin/qrlogin/shared/api"
	"github.com/qrlogin/qrlogin/shared/client"
)

// TestQRImageEndToEnd: the qr_url a desktop is given, fetched from the
// real server over TCP, is a PNG that decodes to the session's
// verify_url. The server listens on loopback, so its public URL is its
// own address.
func TestQRImageEndToEnd(t *testing.T) {
	srv := apptest.Start(t)
	sess, err := client.New(srv.URL).CreateSession(t.Context(), api.CreateSessionRequest{DeviceName: "Laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if sess.QRURL != srv.URL+"/api/v1/login-sessions/"+sess.ID+"/qr.png" {
		t.Fatalf("qr_url %q is not the session's image under %s", sess.QRURL, srv.URL)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, sess.QRURL+"?size=300", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET qr.png: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 300 || b.Dy() != 300 {
		t.Errorf("image is %v, want 300x300", b)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR code: %v", err)
	}
	if res.GetText() != sess.VerifyURL || !strings.HasPrefix(sess.VerifyURL, srv.URL+"/m/") {
		t.Errorf("qr.png decodes to %q, want verify_url %q", res.GetText(), sess.VerifyURL)
	}
}
