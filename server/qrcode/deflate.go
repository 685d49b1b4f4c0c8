package qrcode

import (
	"bytes"
	"hash/adler32"
	"math/bits"
)

// The PNG's image data is k identical scanlines per module row. A general
// compressor spends most of its time searching for those repeats; here
// they are known, so the zlib stream is written directly: each distinct
// scanline once as literals, its repeats as back-references one scanline
// back, all with the fixed Huffman codes of RFC 1951 section 3.2.6.

// Fixed literal/length codes, bit-reversed for LSB-first output.
var litCode [288]uint16
var litBits [288]uint8

// Distance codes are five bits, also bit-reversed.
var distCode [30]uint16

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func init() {
	rev := func(code uint16, n uint8) uint16 { return bits.Reverse16(code) >> (16 - n) }
	for s := range 288 {
		var code uint16
		var n uint8
		switch {
		case s < 144:
			code, n = uint16(0x30+s), 8
		case s < 256:
			code, n = uint16(0x190+s-144), 9
		case s < 280:
			code, n = uint16(s-256), 7
		default:
			code, n = uint16(0xc0+s-280), 8
		}
		litCode[s], litBits[s] = rev(code, n), n
	}
	for d := range 30 {
		distCode[d] = rev(uint16(d), 5)
	}
}

// bitSink writes a deflate bit stream, least significant bit first.
type bitSink struct {
	buf *bytes.Buffer
	acc uint64
	n   uint
}

func (b *bitSink) put(v uint64, n uint) {
	b.acc |= v << b.n
	b.n += n
	for b.n >= 8 {
		b.buf.WriteByte(byte(b.acc))
		b.acc >>= 8
		b.n -= 8
	}
}

func (b *bitSink) flush() {
	if b.n > 0 {
		b.buf.WriteByte(byte(b.acc))
	}
	b.acc, b.n = 0, 0
}

func (b *bitSink) literal(c byte) { b.put(uint64(litCode[c]), uint(litBits[c])) }

// match writes a back-reference of length 3..258 at distance 1..32768.
func (b *bitSink) match(length, dist int) {
	i := len(lengthBase) - 1
	for int(lengthBase[i]) > length {
		i--
	}
	b.put(uint64(litCode[257+i]), uint(litBits[257+i]))
	b.put(uint64(length-int(lengthBase[i])), uint(lengthExtra[i]))
	j := len(distBase) - 1
	for int(distBase[j]) > dist {
		j--
	}
	b.put(uint64(distCode[j]), 5)
	b.put(uint64(dist-int(distBase[j])), uint(distExtra[j]))
}

// repeat writes n bytes that repeat the data dist bytes back, as matches
// of at most 258 bytes (a match may overlap the bytes it produces).
func (b *bitSink) repeat(n, dist int, last []byte) {
	for n > 0 {
		l := min(n, 258)
		if r := n - l; r > 0 && r < 3 {
			l = n - 3 // leave a remainder a match can carry
		}
		if l < 3 { // only for n < 3: too short for a match
			for i := range n {
				b.literal(last[len(last)-dist+i%dist])
			}
			return
		}
		b.match(l, dist)
		n -= l
	}
}

// zlibScanlines writes the zlib stream of lines, each repeated k times.
// Equal consecutive lines are written once.
func zlibScanlines(buf *bytes.Buffer, lines func(yield func(line []byte)), k int) {
	buf.Write([]byte{0x78, 0x01}) // deflate, 32 KiB window, no dictionary
	out := bitSink{buf: buf}
	out.put(1, 1) // final block
	out.put(1, 2) // fixed Huffman codes
	sum := adler32.New()
	var prev []byte
	lines(func(line []byte) {
		for range k {
			sum.Write(line)
		}
		if prev != nil && bytes.Equal(line, prev) {
			out.repeat(k*len(line), len(line), prev)
			return
		}
		for _, c := range line {
			out.literal(c)
		}
		out.repeat((k-1)*len(line), len(line), line)
		prev = append(prev[:0], line...)
	})
	out.put(uint64(litCode[256]), uint(litBits[256])) // end of block
	out.flush()
	buf.Write(sum.Sum(nil))
}
