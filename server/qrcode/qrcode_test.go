package qrcode_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync"
	"testing"

	qr "github.com/skip2/go-qrcode"

	"github.com/qrlogin/qrlogin/server/qrcode"
)

// decode parses b as a PNG and returns it as greyscale, failing on any
// pixel that is not pure black or pure white.
func decode(tb testing.TB, b []byte) *image.Gray {
	tb.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("png.Decode: %v", err)
	}
	bounds := img.Bounds()
	gray := image.NewGray(bounds)
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			switch {
			case a != 0xffff:
				tb.Fatalf("pixel (%d,%d) is not opaque", x, y)
			case r == 0 && g == 0 && bl == 0:
				gray.SetGray(x, y, color.Gray{0})
			case r == 0xffff && g == 0xffff && bl == 0xffff:
				gray.SetGray(x, y, color.Gray{0xff})
			default:
				tb.Fatalf("pixel (%d,%d) = %v, neither black nor white", x, y, img.At(x, y))
			}
		}
	}
	return gray
}

// reference is go-qrcode's own module grid for content, with the border.
func reference(tb testing.TB, content string) [][]bool {
	tb.Helper()
	q, err := qr.New(content, qr.Medium)
	if err != nil {
		tb.Fatalf("qr.New: %v", err)
	}
	return q.Bitmap()
}

// checkModules checks that img shows grid at k pixels per module: every
// pixel of every module, not only its centre, has the module's colour.
func checkModules(tb testing.TB, img *image.Gray, grid [][]bool, k int) {
	tb.Helper()
	n := len(grid)
	if got := img.Bounds(); got != image.Rect(0, 0, n*k, n*k) {
		tb.Fatalf("image is %v, want %d×%d (%d modules × %d px)", got, n*k, n*k, n, k)
	}
	for my := range n {
		for mx := range n {
			want := uint8(0xff)
			if grid[my][mx] {
				want = 0
			}
			if c := img.GrayAt(mx*k+k/2, my*k+k/2).Y; c != want {
				tb.Fatalf("module (%d,%d) centre = %d, want %d", mx, my, c, want)
			}
			for y := my * k; y < my*k+k; y++ {
				for x := mx * k; x < mx*k+k; x++ {
					if img.GrayAt(x, y).Y != want {
						tb.Fatalf("pixel (%d,%d) of module (%d,%d) = %d, want %d", x, y, mx, my, img.GrayAt(x, y).Y, want)
					}
				}
			}
		}
	}
}

func TestPNG(t *testing.T) {
	url := "http://192.168.1.23:8080/m/Xq3v9bT0kLm2Pz7YwA1cRd"
	tests := []struct {
		name    string
		content string
		size    int
	}{
		{"verify url 256", url, 256},
		{"verify url 512", url, 512},
		{"size not a multiple", url, 300},
		{"size equals modules", url, len(reference(t, url))},
		{"size below modules", url, 10},
		{"size 1", url, 1},
		{"large", url, 1024},
		{"short", "x", 200},
		{"https with long id", "https://login.example.com:8443/m/" + strings.Repeat("A1b2", 20), 256},
		{"unicode", "Anmeldung bestätigen ✓", 256},
		{"long", strings.Repeat("0123456789abcdef", 60), 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := qrcode.PNG(tt.content, tt.size)
			if err != nil {
				t.Fatalf("PNG: %v", err)
			}
			grid := reference(t, tt.content)
			n := len(grid)
			k := max(1, tt.size/n)
			if got := qrcode.Scale(n, tt.size); got != k {
				t.Errorf("Scale(%d, %d) = %d, want %d", n, tt.size, got, k)
			}
			img := decode(t, b)
			checkModules(t, img, grid, k)
			if w := img.Bounds().Dx(); w > tt.size && k > 1 {
				t.Errorf("width %d exceeds requested %d", w, tt.size)
			}
			if w := img.Bounds().Dx(); w <= tt.size-n {
				t.Errorf("width %d: a larger scale would still fit in %d", w, tt.size)
			}
		})
	}
}

// TestQuietZone checks the four white modules around the symbol, and that
// the symbol inside is go-qrcode's borderless one.
func TestQuietZone(t *testing.T) {
	const content = "http://10.0.0.5:8080/m/abc"
	q, err := qr.New(content, qr.Medium)
	if err != nil {
		t.Fatal(err)
	}
	q.DisableBorder = true
	inner := q.Bitmap()
	grid, err := qrcode.Grid(content)
	if err != nil {
		t.Fatal(err)
	}
	if len(grid) != len(inner)+2*qrcode.QuietZone {
		t.Fatalf("grid is %d modules, symbol %d: want a %d-module border", len(grid), len(inner), qrcode.QuietZone)
	}
	for y, row := range grid {
		for x, dark := range row {
			in := x >= qrcode.QuietZone && y >= qrcode.QuietZone && x < len(grid)-qrcode.QuietZone && y < len(grid)-qrcode.QuietZone
			if !in && dark {
				t.Fatalf("module (%d,%d) in the quiet zone is dark", x, y)
			}
			if in && dark != inner[y-qrcode.QuietZone][x-qrcode.QuietZone] {
				t.Fatalf("module (%d,%d) differs from the symbol", x, y)
			}
		}
	}
	img := decode(t, mustPNG(t, content, 200))
	checkModules(t, img, grid, qrcode.Scale(len(grid), 200))
}

func mustPNG(tb testing.TB, content string, size int) []byte {
	tb.Helper()
	b, err := qrcode.PNG(content, size)
	if err != nil {
		tb.Fatalf("PNG: %v", err)
	}
	return b
}

func TestPNGMaxSize(t *testing.T) {
	b := mustPNG(t, "x", qrcode.MaxSize)
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n := len(reference(t, "x"))
	if w := n * (qrcode.MaxSize / n); cfg.Width != w || cfg.Height != w {
		t.Errorf("MaxSize image is %d×%d, want %d×%d", cfg.Width, cfg.Height, w, w)
	}
}

func TestPNGErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		size    int
	}{
		{"zero size", "x", 0},
		{"negative size", "x", -4},
		{"too large", "x", qrcode.MaxSize + 1},
		{"content too long for any QR code", strings.Repeat("x", 5000), 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := qrcode.PNG(tt.content, tt.size); err == nil {
				t.Errorf("PNG returned %d bytes, want error", len(b))
			}
			if s, err := qrcode.DataURL(tt.content, tt.size); err == nil || s != "" {
				t.Errorf("DataURL = %.40q, %v; want error", s, err)
			}
		})
	}
}

func TestDataURL(t *testing.T) {
	const content = "http://192.168.1.23:8080/m/Xq3v9bT0kLm2Pz7YwA1cRd"
	s, err := qrcode.DataURL(content, 256)
	if err != nil {
		t.Fatal(err)
	}
	payload, ok := strings.CutPrefix(s, "data:image/png;base64,")
	if !ok {
		t.Fatalf("DataURL = %.40q..., want data:image/png;base64, prefix", s)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(payload)
	if err != nil {
		t.Fatalf("payload is not standard base64: %v", err)
	}
	if !bytes.Equal(b, mustPNG(t, content, 256)) {
		t.Errorf("DataURL payload differs from PNG")
	}
	grid := reference(t, content)
	checkModules(t, decode(t, b), grid, qrcode.Scale(len(grid), 256))
	if len(s) > 4000 {
		t.Errorf("DataURL is %d bytes; a 1-bit QR code should be far smaller", len(s))
	}
	t.Logf("DataURL of a typical verify URL at 256 px: %d bytes", len(s))
}

// TestConcurrent runs PNG from many goroutines (with -race) and checks
// that the pooled compressors never mix outputs.
func TestConcurrent(t *testing.T) {
	contents := []string{"http://a/m/1", "http://b/m/22", "http://c/m/333", "http://d/m/4444"}
	want := make(map[string][]byte)
	for _, c := range contents {
		want[c] = mustPNG(t, c, 128)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				c := contents[(g+i)%len(contents)]
				got, err := qrcode.PNG(c, 128)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, want[c]) {
					t.Errorf("PNG(%q) differs between calls", c)
					return
				}
			}
		})
	}
	wg.Wait()
}
