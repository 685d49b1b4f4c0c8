package appicon_test

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"os"
	"testing"

	"github.com/qrlogin/qrlogin/desktop/appicon"
)

var update = flag.Bool("update", false, "rewrite ../Icon.png from appicon.Draw")

const committed = "../Icon.png"

// TestCommittedIconIsCurrent keeps desktop/Icon.png (used by the app and
// FyneApp.toml) equal to what Draw renders.
func TestCommittedIconIsCurrent(t *testing.T) {
	img := appicon.Draw(512)
	if *update {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(committed, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(committed)
	if err != nil {
		t.Fatalf("%v (run go test ./desktop/appicon -update)", err)
	}
	defer f.Close()
	got, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds() != img.Bounds() {
		t.Fatalf("Icon.png is %v, want %v", got.Bounds(), img.Bounds())
	}
	for y := range 512 {
		for x := range 512 {
			r1, g1, b1, a1 := got.At(x, y).RGBA()
			r2, g2, b2, a2 := img.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				t.Fatalf("Icon.png differs from Draw at (%d,%d); run go test ./desktop/appicon -update", x, y)
			}
		}
	}
}

func TestShape(t *testing.T) {
	img := appicon.Draw(128)
	tests := []struct {
		name   string
		x, y   int
		opaque bool
	}{
		{"corner outside the rounded square", 1, 1, false},
		{"edge middle", 64, 1, true},
		{"centre", 64, 64, true},
	}
	for _, tt := range tests {
		_, _, _, a := img.At(tt.x, tt.y).RGBA()
		if (a == 0xffff) != tt.opaque {
			t.Errorf("%s: alpha %#x, want opaque %v", tt.name, a, tt.opaque)
		}
	}
	// The top-left finder pattern's ring is white.
	if c := img.NRGBAAt(24+2, 24+8); c.R != 0xff || c.G != 0xff || c.B != 0xff {
		t.Errorf("finder ring pixel = %v, want white", c)
	}
	var _ image.Image = img
}
