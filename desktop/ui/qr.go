package ui

import (
	"fmt"
	"image"
	"image/color"

	"github.com/skip2/go-qrcode"
)

// QR colours: dark modules on white whatever the theme, since phone
// cameras read that best; dimmed once scanned, so it is plainly used.
var (
	qrLight  = color.NRGBA{0xff, 0xff, 0xff, 0xff}
	qrDark   = color.NRGBA{0x11, 0x18, 0x27, 0xff}
	qrDimmed = color.NRGBA{0xd5, 0xd9, 0xe0, 0xff}
)

// qrModules returns the QR code of content as modules (true is dark),
// with the standard four-module quiet zone around it.
func qrModules(content string) ([][]bool, error) {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("encode QR code: %w", err)
	}
	return q.Bitmap(), nil
}

// drawQR renders modules into a w×h image. Every module gets the same
// whole number of pixels and the code is centred, so it is crisp at any
// size; the left-over margin is background.
func drawQR(modules [][]bool, w, h int, dark color.Color) image.Image {
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{qrLight, dark})
	n := len(modules)
	if n == 0 || w <= 0 || h <= 0 {
		return img
	}
	px := min(w, h) / n
	if px < 1 {
		// Too small for one pixel a module: sample, as a last resort.
		for y := range h {
			for x := range w {
				if modules[y*n/h][x*n/w] {
					img.SetColorIndex(x, y, 1)
				}
			}
		}
		return img
	}
	ox, oy := (w-px*n)/2, (h-px*n)/2
	for my, row := range modules {
		for mx, on := range row {
			if !on {
				continue
			}
			for y := oy + my*px; y < oy+(my+1)*px; y++ {
				i := img.PixOffset(ox+mx*px, y)
				for x := range px {
					img.Pix[i+x] = 1
				}
			}
		}
	}
	return img
}
