// Package qrpng draws QR codes as PNG files: skip2/go-qrcode builds the
// module matrix, image/png writes it as a 1-bit paletted image. It owns
// nothing else: which text to encode and who may ask is the caller's
// business.
package qrpng

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"sync"

	"github.com/skip2/go-qrcode"
)

// The image sizes, in pixels, an Encoder accepts.
const (
	MinSize     = 128
	MaxSize     = 1024
	DefaultSize = 256
)

// ErrSize is returned for a size outside MinSize..MaxSize, or one too
// small to give every module of the code at least one pixel.
var ErrSize = errors.New("qrpng: image size out of range")

// palette is black on white; index 0 (white) is the zero value of a new
// image's pixels, so only dark modules are written.
var palette = color.Palette{color.White, color.Black}

// Encoder writes QR codes as PNG files. Its zero value is not usable;
// build it with NewEncoder. It is safe for concurrent use.
type Encoder struct {
	png png.Encoder
}

// NewEncoder returns an Encoder that compresses for speed (the images are
// small and made on request) and reuses its compression buffers.
func NewEncoder() *Encoder {
	return &Encoder{png: png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &bufferPool{}}}
}

// Image draws content's QR code (error correction level M, with the quiet
// zone go-qrcode adds) on a size×size white square: each module is the
// same whole number of pixels, and the code is centred.
func Image(content string, size int) (*image.Paletted, error) {
	if size < MinSize || size > MaxSize {
		return nil, fmt.Errorf("%w: %d is not within %d..%d", ErrSize, size, MinSize, MaxSize)
	}
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("qrpng: encode %d bytes: %w", len(content), err)
	}
	bits := q.Bitmap()
	n := len(bits)
	scale := size / n
	if scale == 0 {
		return nil, fmt.Errorf("%w: %d px cannot hold the code's %d modules", ErrSize, size, n)
	}
	img := image.NewPaletted(image.Rect(0, 0, size, size), palette)
	off := (size - n*scale) / 2
	for y, row := range bits {
		top := (off + y*scale) * img.Stride
		line := img.Pix[top+off : top+off+n*scale]
		for x, dark := range row {
			if dark {
				for i := range scale {
					line[x*scale+i] = 1
				}
			}
		}
		// The module row's other pixel rows are copies of its first.
		for i := 1; i < scale; i++ {
			copy(img.Pix[top+i*img.Stride+off:], line)
		}
	}
	return img, nil
}

// Encode writes img (from Image) to w as a PNG.
func (e *Encoder) Encode(w io.Writer, img *image.Paletted) error {
	if err := e.png.Encode(w, img); err != nil {
		return fmt.Errorf("qrpng: write PNG: %w", err)
	}
	return nil
}

// bufferPool keeps png.Encoder's buffers (a zlib writer and row buffers,
// tens of kilobytes) between images.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() *png.EncoderBuffer {
	if eb, ok := b.p.Get().(*png.EncoderBuffer); ok {
		return eb
	}
	return nil
}

func (b *bufferPool) Put(eb *png.EncoderBuffer) { b.p.Put(eb) }
