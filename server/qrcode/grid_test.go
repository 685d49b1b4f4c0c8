package qrcode_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	qr "github.com/skip2/go-qrcode"

	"github.com/qrlogin/qrlogin/server/qrcode"
)

// checkSameGrid fails unless Grid(content) is go-qrcode's grid, module for
// module, or both refuse content.
func checkSameGrid(t *testing.T, content string) {
	t.Helper()
	got, err := qrcode.Grid(content)
	q, refErr := qr.New(content, qr.Medium)
	if (err != nil) != (refErr != nil) {
		t.Fatalf("content %.60q (%d bytes): Grid error %v, go-qrcode error %v", content, len(content), err, refErr)
	}
	if err != nil {
		return
	}
	want := q.Bitmap()
	if len(got) != len(want) {
		t.Fatalf("content %.60q (%d bytes): %d modules, go-qrcode %d", content, len(content), len(got), len(want))
	}
	for y := range want {
		for x := range want[y] {
			if got[y][x] != want[y][x] {
				t.Fatalf("content %.60q (%d bytes, version %d): module (%d,%d) differs from go-qrcode", content, len(content), q.VersionNumber, x, y)
			}
		}
	}
}

// TestGridMatchesGoQRCode checks the package's own encoder against
// go-qrcode on verify URLs, on every data mode and their mixes, and on
// lengths that reach every version and the encoder-class boundaries.
func TestGridMatchesGoQRCode(t *testing.T) {
	const idChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	rng := rand.New(rand.NewPCG(1, 2))
	randomFrom := func(chars string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = chars[rng.IntN(len(chars))]
		}
		return string(b)
	}
	var contents []string
	for _, base := range []string{"http://192.168.1.23:8080", "http://10.0.0.5:8080", "https://login.example.com", "http://127.0.0.1:41234", "HTTP://QR.EXAMPLE:80"} {
		for range 40 {
			contents = append(contents, base+"/m/"+randomFrom(idChars, 22))
		}
	}
	for n := 1; n <= 400; n += 1 + n/40 {
		contents = append(contents,
			randomFrom("0123456789", n),
			randomFrom(alnum, n),
			randomFrom(idChars+"ü€ :/", n),
			// Alternating runs exercise the segment merging.
			randomFrom("0123456789", n%7+1)+randomFrom(alnum, n%5+1)+randomFrom("abc", n%3+1)+randomFrom("0123456789", n),
		)
	}
	// Long contents reach versions 10–40 and the limits of each class
	// (go-qrcode is slow on them, so a few of each).
	for _, n := range []int{255, 256, 700, 1500, 2331, 2332} {
		contents = append(contents, randomFrom(idChars, n))
	}
	contents = append(contents, randomFrom("0123456789", 3000), randomFrom(alnum, 2000),
		"x", "0", "A", " ", strings.Repeat("1", 7089), strings.Repeat("A", 3400))
	for _, c := range contents {
		checkSameGrid(t, c)
	}
}

func TestGridRefuses(t *testing.T) {
	for _, c := range []string{"", strings.Repeat("x", 5000)} {
		if g, err := qrcode.Grid(c); err == nil {
			t.Errorf("Grid(%d bytes) = %d modules, want an error", len(c), len(g))
		}
	}
}

// TestPNGLargeModules checks every pixel when a module is wider than a
// machine word (MaxSize with the smallest symbol: 141 pixels a module).
func TestPNGLargeModules(t *testing.T) {
	for _, size := range []int{qrcode.MaxSize, 257} {
		grid := reference(t, "x")
		k := qrcode.Scale(len(grid), size)
		checkModules(t, decode(t, mustPNG(t, "x", size)), grid, k)
	}
}
