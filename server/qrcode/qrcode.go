// Package qrcode renders the QR codes of login sessions as small PNGs.
//
// It is on the hot path of session creation, and go-qrcode's own
// New+Bitmap+Encode cost about 1.4 ms and 1 MB of garbage per code, so
// the package does both halves itself. encode.go builds the module grid
// at error-correction level M, identical to go-qrcode's (a test compares
// them), but lays out and scores the eight mask candidates with word
// operations on bit rows. The PNG is a 1-bit greyscale image at a whole
// number of pixels per module (sharp edges for phone cameras) whose zlib
// stream is written directly (deflate.go): each module row's scanline as
// literals and its repeats as back-references, which a general compressor
// would have to search for. Together this is about 20 times cheaper than
// go-qrcode's Encode.
package qrcode

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// MaxSize is the largest image PNG draws, in pixels per side.
const MaxSize = 4096

// QuietZone is the width of the white border around the code, in modules;
// the QR standard asks for four.
const QuietZone = 4

// DataURLPrefix starts every DataURL.
const DataURLPrefix = "data:image/png;base64,"

// Grid returns the modules of the QR code of content at medium error
// correction, including the quiet zone: grid[y][x] is true for a dark
// module.
func Grid(content string) ([][]bool, error) {
	grid, err := encodeM(content)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	return grid, nil
}

// Scale returns the pixels per module PNG uses for a grid of n modules
// and a requested size: the largest whole number that keeps the image
// within size pixels, and at least 1.
func Scale(n, size int) int {
	return max(1, size/n)
}

// PNG returns the QR code of content (medium error correction, a quiet
// zone of four modules) as a black-on-white PNG of Scale(n, size) pixels
// per module, so at most size pixels wide unless size is below the number
// of modules n.
func PNG(content string, size int) ([]byte, error) {
	if size <= 0 || size > MaxSize {
		return nil, fmt.Errorf("qr code: size %d out of range 1..%d", size, MaxSize)
	}
	grid, err := Grid(content)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := writePNG(&buf, grid, Scale(len(grid), size)); err != nil {
		return nil, fmt.Errorf("qr code: encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// DataURL returns PNG(content, size) as a data:image/png;base64 URL, the
// form the API sends so a client can show it without another request.
func DataURL(content string, size int) (string, error) {
	b, err := PNG(content, size)
	if err != nil {
		return "", err
	}
	out := make([]byte, len(DataURLPrefix)+base64.StdEncoding.EncodedLen(len(b)))
	copy(out, DataURLPrefix)
	base64.StdEncoding.Encode(out[len(DataURLPrefix):], b)
	return string(out), nil
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// writePNG writes grid as a 1-bit greyscale PNG (bit 0 black, 1 white),
// each module k×k pixels.
func writePNG(buf *bytes.Buffer, grid [][]bool, k int) error {
	w := len(grid) * k
	rowBytes := (w + 7) / 8
	buf.Grow(1024)
	buf.Write(pngSignature)

	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(w))
	ihdr[8] = 1 // bit depth
	ihdr[9] = 0 // colour type: greyscale
	// compression, filter and interlace methods are all 0
	writeChunk(buf, "IHDR", ihdr[:])

	// IDAT: the chunk header is written with a placeholder length, the
	// zlib stream straight into buf after it, and the length patched.
	start := buf.Len()
	buf.Write([]byte{0, 0, 0, 0, 'I', 'D', 'A', 'T'})
	// Each scanline is a filter byte (0, none) and the packed pixels; a
	// module row gives k identical scanlines.
	line := make([]byte, 1+rowBytes)
	zlibScanlines(buf, func(yield func([]byte)) {
		for _, modules := range grid {
			// Pixels are shifted into acc up to 32 at a time, most
			// significant first, and leave it a byte at a time.
			var acc uint64
			n, i := 0, 1
			for _, dark := range modules {
				for left := k; left > 0; {
					c := min(left, 32)
					acc <<= c
					if !dark {
						acc |= 1<<c - 1 // white pixels
					}
					left -= c
					for n += c; n >= 8; n -= 8 {
						line[i] = byte(acc >> (n - 8))
						i++
					}
				}
			}
			if n > 0 {
				line[i] = byte(acc << (8 - n))
			}
			yield(line)
		}
	}, k)
	b := buf.Bytes()
	n := len(b) - start - 8
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	writeCRC(buf, b[start+4:])

	writeChunk(buf, "IEND", nil)
	return nil
}

// writeChunk writes one PNG chunk: length, type, data, CRC of type+data.
func writeChunk(buf *bytes.Buffer, typ string, data []byte) {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
	copy(hdr[4:], typ)
	buf.Write(hdr[:])
	buf.Write(data)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(data)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	buf.Write(sum[:])
}

// writeCRC appends the CRC of typeAndData, which is already in buf.
func writeCRC(buf *bytes.Buffer, typeAndData []byte) {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(typeAndData))
	buf.Write(sum[:])
}
