package qrpng_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io"
	"strconv"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/skip2/go-qrcode"

	"github.com/qrlogin/qrlogin/server/qrpng"
)

const verifyURL = "http://192.168.1.23:8080/m/3q2-7Xb_a1Kd9LmNoPqRsTu"

// decodeQR reads a QR code with an independent decoder (ZXing's port).
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR code: %v", err)
	}
	return res.GetText()
}

// encode draws content and writes it as a PNG, as the server does.
func encode(enc *qrpng.Encoder, w io.Writer, content string, size int) error {
	img, err := qrpng.Image(content, size)
	if err != nil {
		return err
	}
	return enc.Encode(w, img)
}

func TestEncodeDecodes(t *testing.T) {
	enc := qrpng.NewEncoder()
	for _, size := range []int{qrpng.MinSize, qrpng.DefaultSize, 300, 555, qrpng.MaxSize} {
		for _, content := range []string{verifyURL, "https://login.example.com/m/" + string(bytes.Repeat([]byte("x"), 64))} {
			var buf bytes.Buffer
			if err := encode(enc, &buf, content, size); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			raw := buf.Bytes()
			// IHDR: bit depth 1, colour type 3 (palette).
			if len(raw) < 26 || raw[24] != 1 || raw[25] != 3 {
				t.Errorf("size %d: IHDR bit depth %d colour type %d, want a 1-bit paletted PNG", size, raw[24], raw[25])
			}
			img, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
				t.Errorf("size %d: image is %v", size, b)
			}
			if got := decodeQR(t, img); got != content {
				t.Errorf("size %d: decoded %q, want %q", size, got, content)
			}
		}
	}
}

// TestImageIsGoQRCodeMatrix checks the drawing module for module against
// go-qrcode's matrix: whole pixels per module, centred, quiet zone kept.
func TestImageIsGoQRCodeMatrix(t *testing.T) {
	q, err := qrcode.New(verifyURL, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bits := q.Bitmap()
	n := len(bits)
	for _, size := range []int{128, 256, 301, 1024} {
		img, err := qrpng.Image(verifyURL, size)
		if err != nil {
			t.Fatal(err)
		}
		scale := size / n
		off := (size - n*scale) / 2
		for y := range size {
			for x := range size {
				mx, my := (x-off)/scale, (y-off)/scale
				inside := x >= off && y >= off && mx < n && my < n
				want := uint8(0)
				if inside && bits[my][mx] {
					want = 1
				}
				if got := img.ColorIndexAt(x, y); got != want {
					t.Fatalf("size %d: pixel (%d,%d) = %d, want %d (module %d,%d, scale %d, offset %d)", size, x, y, got, want, mx, my, scale, off)
				}
			}
		}
		if len(img.Palette) != 2 {
			t.Errorf("palette has %d colours, want 2", len(img.Palette))
		}
	}
}

func TestSizeOutOfRange(t *testing.T) {
	for _, size := range []int{-1, 0, 127, 1025, 1 << 30} {
		if _, err := qrpng.Image(verifyURL, size); !errors.Is(err, qrpng.ErrSize) {
			t.Errorf("Image(size %d) = %v, want ErrSize", size, err)
		}
	}
	// A code of more modules than pixels cannot be drawn at that size.
	long := string(bytes.Repeat([]byte("a"), 1500))
	if _, err := qrpng.Image(long, qrpng.MinSize); !errors.Is(err, qrpng.ErrSize) {
		t.Errorf("Image(1500 bytes, %d) = %v, want ErrSize", qrpng.MinSize, err)
	}
	if _, err := qrpng.Image(string(bytes.Repeat([]byte("a"), 5000)), qrpng.MaxSize); err == nil || errors.Is(err, qrpng.ErrSize) {
		t.Errorf("Image(5000 bytes) = %v, want go-qrcode's too-long error", err)
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{qrpng.DefaultSize, qrpng.MaxSize} {
		b.Run(strconv.Itoa(size)+"px", func(b *testing.B) {
			enc := qrpng.NewEncoder()
			b.ReportAllocs()
			for b.Loop() {
				if err := encode(enc, io.Discard, verifyURL, size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
