// Package appicon draws the qrlogin app icon: a rounded indigo square with
// a stylised QR code whose corner holds a phone showing a check mark.
//
// The icon is drawn in code so it can be regenerated at any size; the
// committed desktop/Icon.png is its 512×512 rendering, kept in step by
// this package's test (go test ./desktop/appicon -update rewrites it).
package appicon

import (
	"image"
	"image/color"
	"math"
)

// Geometry of the 512-unit design space.
const (
	design    = 512.0
	corner    = 112.0 // radius of the rounded square
	gridStart = 96.0  // the QR grid spans 96..416
	module    = 16.0  // 20 modules
	modules   = 20
)

var (
	topLeft     = color.NRGBA{0x63, 0x66, 0xf1, 0xff} // indigo
	bottomRight = color.NRGBA{0x6d, 0x28, 0xd9, 0xff} // violet
	white       = color.NRGBA{0xff, 0xff, 0xff, 0xff}
)

// shape reports whether a point of the design space is inside a shape.
type shape func(x, y float64) bool

// layer paints a shape with a colour that may vary over the icon.
type layer struct {
	in    shape
	color func(x, y float64) color.NRGBA
}

// Draw renders the icon at size×size pixels, anti-aliased by 4×4
// supersampling.
func Draw(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	layers := design0()
	const ss = 4
	scale := design / float64(size)
	for py := range size {
		for px := range size {
			var r, g, b, a float64
			for sy := range ss {
				for sx := range ss {
					x := (float64(px) + (float64(sx)+0.5)/ss) * scale
					y := (float64(py) + (float64(sy)+0.5)/ss) * scale
					c, ok := sample(layers, x, y)
					if !ok {
						continue
					}
					// Premultiply so transparent samples do not darken edges.
					fa := float64(c.A) / 255
					r += float64(c.R) * fa
					g += float64(c.G) * fa
					b += float64(c.B) * fa
					a += fa
				}
			}
			if a == 0 {
				continue
			}
			img.SetNRGBA(px, py, color.NRGBA{
				R: uint8(math.Round(r / a)),
				G: uint8(math.Round(g / a)),
				B: uint8(math.Round(b / a)),
				A: uint8(math.Round(a / (ss * ss) * 255)),
			})
		}
	}
	return img
}

// sample is the colour of the topmost layer containing (x, y).
func sample(layers []layer, x, y float64) (color.NRGBA, bool) {
	for i := len(layers) - 1; i >= 0; i-- {
		if layers[i].in(x, y) {
			return layers[i].color(x, y), true
		}
	}
	return color.NRGBA{}, false
}

func design0() []layer {
	bg := func(x, y float64) color.NRGBA {
		t := (x + y) / (2 * design)
		return lerp(topLeft, bottomRight, t)
	}
	solid := func(c color.NRGBA) func(x, y float64) color.NRGBA {
		return func(float64, float64) color.NRGBA { return c }
	}

	var qr []shape
	// Finder patterns: a ring of 7×7 modules around a 3×3 block.
	for _, f := range [][2]int{{0, 0}, {modules - 7, 0}, {0, modules - 7}} {
		x0, y0 := gridStart+float64(f[0])*module, gridStart+float64(f[1])*module
		qr = append(qr,
			ring(x0, y0, 7*module, module, 0.45*module),
			roundRect(x0+2*module, y0+2*module, 3*module, 3*module, 0.4*module),
		)
	}
	// Data modules: a fixed scatter, kept clear of the finders, their
	// separators and the corner where the phone sits. Each point looks
	// only at the module it falls in.
	const inset = 0.08 * module
	qr = append(qr, func(x, y float64) bool {
		mx := int(math.Floor((x - gridStart) / module))
		my := int(math.Floor((y - gridStart) / module))
		if mx < 0 || my < 0 || mx >= modules || my >= modules || reserved(mx, my) || !dataBit(mx, my) {
			return false
		}
		return roundRect(
			gridStart+float64(mx)*module+inset, gridStart+float64(my)*module+inset,
			module-2*inset, module-2*inset, 0.3*module)(x, y)
	})

	// The phone, in the bottom-right corner of the code.
	px, py, pw, ph := 300.0, 262.0, 104.0, 162.0
	phone := roundRect(px, py, pw, ph, 20)
	screen := roundRect(px+10, py+22, pw-20, ph-44, 8)
	speaker := roundRect(px+pw/2-14, py+9, 28, 5, 2.5)
	cx, cy := px+pw/2, py+ph/2
	check := polyline(9, [][2]float64{{cx - 22, cy + 1}, {cx - 6, cy + 17}, {cx + 23, cy - 16}})

	layers := []layer{
		{roundRect(0, 0, design, design, corner), bg},
		{union(qr...), solid(white)},
		{phone, solid(white)},
		{union(screen), bg},
		{union(speaker, check), solid(white)},
	}
	return layers
}

// reserved reports whether module (mx, my) belongs to a finder, its
// one-module separator, or the phone's corner.
func reserved(mx, my int) bool {
	inFinder := func(fx, fy int) bool {
		return mx >= fx-1 && mx <= fx+7 && my >= fy-1 && my <= fy+7
	}
	return inFinder(0, 0) || inFinder(modules-7, 0) || inFinder(0, modules-7) ||
		(mx >= 12 && my >= 10)
}

// dataBit is a fixed pseudo-random pattern (splitmix64 of the module
// index) with about half the modules dark.
func dataBit(mx, my int) bool {
	z := uint64(my*modules+mx) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return z%100 < 55
}

func lerp(a, b color.NRGBA, t float64) color.NRGBA {
	t = max(0, min(1, t))
	mix := func(p, q uint8) uint8 { return uint8(math.Round(float64(p) + (float64(q)-float64(p))*t)) }
	return color.NRGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), mix(a.A, b.A)}
}

func union(ss ...shape) shape {
	return func(x, y float64) bool {
		for _, s := range ss {
			if s(x, y) {
				return true
			}
		}
		return false
	}
}

// roundRect is a rectangle at (x0, y0) of size w×h with corner radius r.
func roundRect(x0, y0, w, h, r float64) shape {
	return func(x, y float64) bool {
		if x < x0 || y < y0 || x >= x0+w || y >= y0+h {
			return false
		}
		// Distance from the nearest corner's centre, for the corners only.
		dx := max(x0+r-x, x-(x0+w-r), 0)
		dy := max(y0+r-y, y-(y0+h-r), 0)
		return dx*dx+dy*dy <= r*r
	}
}

// ring is a rounded square outline of thickness t.
func ring(x0, y0, size, t, r float64) shape {
	outer := roundRect(x0, y0, size, size, r)
	inner := roundRect(x0+t, y0+t, size-2*t, size-2*t, max(r-t, 0.2*t))
	return func(x, y float64) bool { return outer(x, y) && !inner(x, y) }
}

// polyline is a stroke of width w with round joins and caps.
func polyline(w float64, pts [][2]float64) shape {
	return func(x, y float64) bool {
		for i := 1; i < len(pts); i++ {
			if segDist(x, y, pts[i-1], pts[i]) <= w/2 {
				return true
			}
		}
		return false
	}
}

func segDist(x, y float64, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := ((x-a[0])*dx + (y-a[1])*dy) / (dx*dx + dy*dy)
	t = max(0, min(1, t))
	return math.Hypot(x-(a[0]+t*dx), y-(a[1]+t*dy))
}
