package qrcode

import (
	"errors"
	"math/bits"
	"sync"
)

// This file is a QR encoder for error-correction level M that produces
// exactly the module grid of go-qrcode's New(content, Medium).Bitmap(), at
// a fraction of its cost: go-qrcode computes Reed-Solomon codes with
// allocated polynomials and lays out and scores each of the eight mask
// candidates one boxed bit at a time, which made it most of the time of
// creating a login session. Here everything that depends only on the
// version (function patterns, the data path) is built once per version,
// and a candidate mask costs one pass over the path plus the penalty
// scan. The data-mode choice, padding, block interleaving, placement and
// go-qrcode's own penalty arithmetic (quirks included) are reproduced
// step by step; TestGridMatchesGoQRCode checks the grids are identical.

// blockGroup is one row of the block table: n blocks of total codewords,
// data of them data codewords.
type blockGroup struct{ n, total, data int }

type versionInfo struct {
	groups    []blockGroup
	remainder int // bits after the last codeword
}

// mVersions are go-qrcode's block tables of level M, versions 1–40.
var mVersions = [41]versionInfo{
	{},
	{[]blockGroup{{1, 26, 16}}, 0},
	{[]blockGroup{{1, 44, 28}}, 7},
	{[]blockGroup{{1, 70, 44}}, 7},
	{[]blockGroup{{2, 50, 32}}, 7},
	{[]blockGroup{{2, 67, 43}}, 7},
	{[]blockGroup{{4, 43, 27}}, 7},
	{[]blockGroup{{4, 49, 31}}, 0},
	{[]blockGroup{{2, 60, 38}, {2, 61, 39}}, 0},
	{[]blockGroup{{3, 58, 36}, {2, 59, 37}}, 0},
	{[]blockGroup{{4, 69, 43}, {1, 70, 44}}, 0},
	{[]blockGroup{{1, 80, 50}, {4, 81, 51}}, 0},
	{[]blockGroup{{6, 58, 36}, {2, 59, 37}}, 0},
	{[]blockGroup{{8, 59, 37}, {1, 60, 38}}, 0},
	{[]blockGroup{{4, 64, 40}, {5, 65, 41}}, 3},
	{[]blockGroup{{5, 65, 41}, {5, 66, 42}}, 3},
	{[]blockGroup{{7, 73, 45}, {3, 74, 46}}, 3},
	{[]blockGroup{{10, 74, 46}, {1, 75, 47}}, 3},
	{[]blockGroup{{9, 69, 43}, {4, 70, 44}}, 3},
	{[]blockGroup{{3, 70, 44}, {11, 71, 45}}, 3},
	{[]blockGroup{{3, 67, 41}, {13, 68, 42}}, 3},
	{[]blockGroup{{17, 68, 42}}, 4},
	{[]blockGroup{{17, 74, 46}}, 4},
	{[]blockGroup{{4, 75, 47}, {14, 76, 48}}, 4},
	{[]blockGroup{{6, 73, 45}, {14, 74, 46}}, 4},
	{[]blockGroup{{8, 75, 47}, {13, 76, 48}}, 4},
	{[]blockGroup{{19, 74, 46}, {4, 75, 47}}, 4},
	{[]blockGroup{{22, 73, 45}, {3, 74, 46}}, 4},
	{[]blockGroup{{3, 73, 45}, {23, 74, 46}}, 3},
	{[]blockGroup{{21, 73, 45}, {7, 74, 46}}, 3},
	{[]blockGroup{{19, 75, 47}, {10, 76, 48}}, 3},
	{[]blockGroup{{2, 74, 46}, {29, 75, 47}}, 3},
	{[]blockGroup{{10, 74, 46}, {23, 75, 47}}, 3},
	{[]blockGroup{{14, 74, 46}, {21, 75, 47}}, 3},
	{[]blockGroup{{14, 74, 46}, {23, 75, 47}}, 3},
	{[]blockGroup{{12, 75, 47}, {26, 76, 48}}, 0},
	{[]blockGroup{{6, 75, 47}, {34, 76, 48}}, 0},
	{[]blockGroup{{29, 74, 46}, {14, 75, 47}}, 0},
	{[]blockGroup{{13, 74, 46}, {32, 75, 47}}, 0},
	{[]blockGroup{{40, 75, 47}, {7, 76, 48}}, 0},
	{[]blockGroup{{18, 75, 47}, {31, 76, 48}}, 0},
}

// dataBits is the data capacity of version v in bits.
func (vi *versionInfo) dataBits() int {
	n := 0
	for _, g := range vi.groups {
		n += 8 * g.n * g.data
	}
	return n
}

// formatBits are the 15-bit format words of level M, by mask.
var formatBits = [8]uint32{0x5412, 0x5125, 0x5e7c, 0x5b4b, 0x45f9, 0x40ce, 0x4f97, 0x4aa0}

// versionBits is the 18-bit version word of v >= 7: v and its BCH(18,6)
// remainder under the generator 0x1f25.
func versionBits(v int) uint32 {
	rem := uint32(v) << 12
	for i := 17; i >= 12; i-- {
		if rem&(1<<i) != 0 {
			rem ^= 0x1f25 << (i - 12)
		}
	}
	return uint32(v)<<12 | rem
}

var alignmentCenters = [41][]int{
	{}, {},
	{6, 18}, {6, 22}, {6, 26}, {6, 30}, {6, 34},
	{6, 22, 38}, {6, 24, 42}, {6, 26, 46}, {6, 28, 50}, {6, 30, 54}, {6, 32, 58}, {6, 34, 62},
	{6, 26, 46, 66}, {6, 26, 48, 70}, {6, 26, 50, 74}, {6, 30, 54, 78}, {6, 30, 56, 82}, {6, 30, 58, 86}, {6, 34, 62, 90},
	{6, 28, 50, 72, 94}, {6, 26, 50, 74, 98}, {6, 30, 54, 78, 102}, {6, 28, 54, 80, 106}, {6, 32, 58, 84, 110}, {6, 30, 58, 86, 114}, {6, 34, 62, 90, 118},
	{6, 26, 50, 74, 98, 122}, {6, 30, 54, 78, 102, 126}, {6, 26, 52, 78, 104, 130}, {6, 30, 56, 82, 108, 134}, {6, 34, 60, 86, 112, 138}, {6, 30, 58, 86, 114, 142}, {6, 34, 62, 90, 118, 146},
	{6, 30, 54, 78, 102, 126, 150}, {6, 24, 50, 76, 102, 128, 154}, {6, 28, 54, 80, 106, 132, 158}, {6, 32, 58, 84, 110, 136, 162}, {6, 26, 54, 82, 110, 138, 166}, {6, 30, 58, 86, 114, 142, 170},
}

// --- data encoding (go-qrcode encoder.go) ---

type dataMode uint8

const (
	modeNone dataMode = 1 << iota
	modeNumeric
	modeAlphanumeric
	modeByte
)

// encoderType is one of go-qrcode's three character-count-size classes.
type encoderType struct {
	minVersion, maxVersion           int
	numericBits, alnumBits, byteBits int
}

var encoderTypes = [3]encoderType{
	{1, 9, 10, 9, 8},
	{10, 26, 12, 11, 16},
	{27, 40, 14, 13, 16},
}

func (e *encoderType) countBits(m dataMode) int {
	switch m {
	case modeNumeric:
		return e.numericBits
	case modeAlphanumeric:
		return e.alnumBits
	}
	return e.byteBits
}

var errLength = errors.New("length too long to be represented")

// encodedLength is the bits n characters take in mode m, header included.
func (e *encoderType) encodedLength(m dataMode, n int) (int, error) {
	cb := e.countBits(m)
	if n > 1<<cb-1 {
		return 0, errLength
	}
	l := 4 + cb
	switch m {
	case modeNumeric:
		l += 10 * (n / 3)
		if n%3 != 0 {
			l += 1 + 3*(n%3)
		}
	case modeAlphanumeric:
		l += 11*(n/2) + 6*(n%2)
	default:
		l += 8 * n
	}
	return l, nil
}

func classify(c byte) dataMode {
	switch {
	case c >= '0' && c <= '9':
		return modeNumeric
	case c == ' ' || c == '$' || c == '%' || c == '*' || c == '+' || c == '-' || c == '.' || c == '/' || c == ':' || (c >= 'A' && c <= 'Z'):
		return modeAlphanumeric
	}
	return modeByte
}

type segment struct {
	mode       dataMode
	start, end int
}

// segments classifies and coalesces data exactly as go-qrcode's
// classifyDataModes and optimiseDataModes do, including its final check
// whether one segment of the widest mode is shorter.
func (e *encoderType) segments(data []byte, buf []segment) ([]segment, error) {
	actual := buf[:0]
	mode, highest := modeNone, modeNone
	start := 0
	for i, c := range data {
		m := classify(c)
		if m != mode {
			if i > 0 {
				actual = append(actual, segment{mode, start, i})
				start = i
			}
			mode = m
		}
		highest = max(highest, m)
	}
	actual = append(actual, segment{mode, start, len(data)})

	// Coalesce in place: out never overtakes the segment being read.
	out := actual[:0:len(actual)]
	optimised := 0
	for i := 0; i < len(actual); {
		m, n := actual[i].mode, actual[i].end-actual[i].start
		start := actual[i].start
		j := i + 1
		for j < len(actual) {
			nm, nn := actual[j].mode, actual[j].end-actual[j].start
			if nm > m {
				break
			}
			joined, err := e.encodedLength(m, n+nn)
			if err != nil {
				return nil, err
			}
			a, err := e.encodedLength(m, n)
			if err != nil {
				return nil, err
			}
			b, err := e.encodedLength(nm, nn)
			if err != nil {
				return nil, err
			}
			if joined >= a+b {
				break
			}
			j++
			n += nn
		}
		l, err := e.encodedLength(m, n)
		if err != nil {
			return nil, err
		}
		optimised += l
		out = append(out, segment{m, start, start + n})
		i = j
	}
	single, err := e.encodedLength(highest, len(data))
	if err != nil {
		return nil, err
	}
	if single <= optimised {
		out = append(out[:0], segment{highest, 0, len(data)})
	}
	return out, nil
}

// bitWriter appends bits most significant first.
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) write(v uint32, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v&(1<<i) != 0 {
			w.b[w.n/8] |= 0x80 >> (w.n % 8)
		}
		w.n++
	}
}

func alnumValue(c byte) uint32 {
	switch {
	case c >= '0' && c <= '9':
		return uint32(c - '0')
	case c >= 'A' && c <= 'Z':
		return uint32(c-'A') + 10
	}
	switch c {
	case ' ':
		return 36
	case '$':
		return 37
	case '%':
		return 38
	case '*':
		return 39
	case '+':
		return 40
	case '-':
		return 41
	case '.':
		return 42
	case '/':
		return 43
	}
	return 44 // ':'
}

func (e *encoderType) encodeSegment(w *bitWriter, data []byte, m dataMode) {
	switch m {
	case modeNumeric:
		w.write(1, 4)
	case modeAlphanumeric:
		w.write(2, 4)
	default:
		w.write(4, 4)
	}
	w.write(uint32(len(data)), e.countBits(m))
	switch m {
	case modeNumeric:
		for i := 0; i < len(data); i += 3 {
			var v uint32
			bits := 1
			for j := 0; j < len(data)-i && j < 3; j++ {
				v = v*10 + uint32(data[i+j]-'0')
				bits += 3
			}
			w.write(v, bits)
		}
	case modeAlphanumeric:
		for i := 0; i < len(data); i += 2 {
			v := alnumValue(data[i])
			bits := 6
			if len(data)-i > 1 {
				v = v*45 + alnumValue(data[i+1])
				bits = 11
			}
			w.write(v, bits)
		}
	default:
		for _, c := range data {
			w.write(uint32(c), 8)
		}
	}
}

// --- Reed-Solomon over GF(256), primitive polynomial 0x11d ---

var gfExp [512]byte
var gfLog [256]byte

// rsGenerators[n] is the generator polynomial of degree n, highest term
// (always 1) dropped, coefficients from x^(n-1) down to x^0.
var rsGenerators [69][]byte

func init() {
	x := 1
	for i := range 255 {
		gfExp[i] = byte(x)
		gfLog[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	for i := 255; i < len(gfExp); i++ {
		gfExp[i] = gfExp[i-255]
	}
	for _, vi := range mVersions {
		for _, g := range vi.groups {
			if n := g.total - g.data; rsGenerators[n] == nil {
				rsGenerators[n] = rsGenerator(n)
			}
		}
	}
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// rsGenerator returns (x+α^0)(x+α^1)…(x+α^(n-1)) without its leading 1.
func rsGenerator(n int) []byte {
	g := []byte{1} // highest degree first
	for i := range n {
		next := make([]byte, len(g)+1)
		for j, c := range g {
			next[j] ^= c
			next[j+1] ^= gfMul(c, gfExp[i])
		}
		g = next
	}
	return g[1:]
}

// rsECC writes the n error-correction codewords of data into ecc.
func rsECC(data, ecc []byte) {
	gen := rsGenerators[len(ecc)]
	clear(ecc)
	for _, d := range data {
		f := d ^ ecc[0]
		copy(ecc, ecc[1:])
		ecc[len(ecc)-1] = 0
		if f == 0 {
			continue
		}
		lf := int(gfLog[f])
		for i, g := range gen {
			if g != 0 {
				ecc[i] ^= gfExp[lf+int(gfLog[g])]
			}
		}
	}
}

// --- symbol layout (go-qrcode regular_symbol.go), built once per version ---

// layout is what every symbol of one version shares.
type layout struct {
	size int
	// base holds the function patterns and dark module; format and
	// version areas are reserved (their bits depend on the mask).
	base []bool
	// path is the data modules in placement order, as y*size+x.
	path []int32
	// maskBits[m][i] is mask m's value at path[i].
	maskBits [8][]bool

	// For size <= 64 the symbol is also kept as bit rows and columns
	// (bit size-1-i is module i of the line), so a mask candidate is
	// scored with word operations: base holds the function patterns,
	// mask[m] mask m on the data modules, format[m] the format bits.
	packed                 bool
	baseRows, baseCols     []uint64
	maskRows, maskCols     [8][]uint64
	formatRows, formatCols [8][]uint64
}

// setBit sets module (x, y) in bit rows and columns.
func setBit(rows, cols []uint64, size, x, y int) {
	rows[y] |= 1 << (size - 1 - x)
	cols[x] |= 1 << (size - 1 - y)
}

var layouts [41]struct {
	once sync.Once
	l    *layout
}

func layoutOf(v int) *layout {
	e := &layouts[v]
	e.once.Do(func() { e.l = newLayout(v) })
	return e.l
}

func newLayout(v int) *layout {
	size := 21 + (v-1)*4
	l := &layout{size: size, base: make([]bool, size*size)}
	used := make([]bool, size*size)
	set := func(x, y int, val bool) {
		l.base[y*size+x] = val
		used[y*size+x] = true
	}
	finder := func(x0, y0 int) {
		for y := range 7 {
			for x := range 7 {
				ring := x == 0 || x == 6 || y == 0 || y == 6
				core := x >= 2 && x <= 4 && y >= 2 && y <= 4
				set(x0+x, y0+y, ring || core)
			}
		}
	}
	finder(0, 0)
	for i := range 8 {
		set(i, 7, false)
	}
	for i := range 8 {
		set(7, i, false)
	}
	finder(size-7, 0)
	for i := range 8 {
		set(size-8+i, 7, false)
	}
	for i := range 8 {
		set(size-8, i, false)
	}
	finder(0, size-7)
	for i := range 8 {
		set(i, size-8, false)
	}
	for i := range 8 {
		set(7, size-8+i, false)
	}
	for _, cx := range alignmentCenters[v] {
		for _, cy := range alignmentCenters[v] {
			if used[cy*size+cx] {
				continue
			}
			for y := range 5 {
				for x := range 5 {
					set(cx-2+x, cy-2+y, x == 0 || x == 4 || y == 0 || y == 4 || (x == 2 && y == 2))
				}
			}
		}
	}
	val := true
	for i := 8; i < size-7; i++ {
		set(i, 6, val)
		set(6, i, val)
		val = !val
	}
	// Format areas: reserved now, written per mask by placeFormat.
	for _, p := range formatPositions(size) {
		set(p[0], p[1], false)
	}
	set(8, size-8, true) // the dark module
	if v >= 7 {
		vb := versionBits(v)
		for i := range 18 {
			bit := vb&(1<<i) != 0
			set(i/3, size-11+i%3, bit)
			set(size-11+i%3, i/3, bit)
		}
	}

	// The data path, exactly as go-qrcode's addData walks it.
	x, y, xOff, up := size-2, size-1, 1, true
	for {
		l.path = append(l.path, int32(y*size+x+xOff))
		for {
			if xOff == 1 {
				xOff = 0
			} else {
				xOff = 1
				if up {
					if y > 0 {
						y--
					} else {
						up = false
						x -= 2
					}
				} else {
					if y < size-1 {
						y++
					} else {
						up = true
						x -= 2
					}
				}
			}
			if x == 5 {
				x--
			}
			if x+xOff < 0 {
				goto done
			}
			if !used[y*size+x+xOff] {
				break
			}
		}
	}
done:
	for m := range 8 {
		bits := make([]bool, len(l.path))
		for i, p := range l.path {
			bits[i] = maskAt(m, int(p)%size, int(p)/size)
		}
		l.maskBits[m] = bits
	}
	if size <= 64 {
		l.packed = true
		l.baseRows, l.baseCols = make([]uint64, size), make([]uint64, size)
		for i, dark := range l.base {
			if dark {
				setBit(l.baseRows, l.baseCols, size, i%size, i/size)
			}
		}
		fpos := formatPositions(size)
		for m := range 8 {
			l.maskRows[m], l.maskCols[m] = make([]uint64, size), make([]uint64, size)
			for i, p := range l.path {
				if l.maskBits[m][i] {
					setBit(l.maskRows[m], l.maskCols[m], size, int(p)%size, int(p)/size)
				}
			}
			l.formatRows[m], l.formatCols[m] = make([]uint64, size), make([]uint64, size)
			for k, pos := range fpos {
				if formatBits[m]&(1<<formatBitIndex[k]) != 0 {
					setBit(l.formatRows[m], l.formatCols[m], size, pos[0], pos[1])
				}
			}
		}
	}
	return l
}

// maskAt is mask pattern m at column x, row y.
func maskAt(m, x, y int) bool {
	switch m {
	case 0:
		return (y+x)%2 == 0
	case 1:
		return y%2 == 0
	case 2:
		return x%3 == 0
	case 3:
		return (y+x)%3 == 0
	case 4:
		return (y/2+x/3)%2 == 0
	case 5:
		return (y*x)%2+(y*x)%3 == 0
	case 6:
		return ((y*x)%2+(y*x)%3)%2 == 0
	}
	return ((y+x)%2+(y*x)%3)%2 == 0
}

// formatPositions lists, for format bit i (least significant first), the
// two modules it is written to; go-qrcode writes them in this order.
func formatPositions(size int) [30][2]int {
	var p [30][2]int
	k := 0
	add := func(x, y int) { p[k] = [2]int{x, y}; k++ }
	for i := 0; i <= 7; i++ {
		add(size-i-1, 8)
	}
	for i := 0; i <= 5; i++ {
		add(8, i)
	}
	add(8, 7)
	add(8, 8)
	add(7, 8)
	for i := 9; i <= 14; i++ {
		add(14-i, 8)
	}
	for i := 8; i <= 14; i++ {
		add(8, size-7+i-8)
	}
	return p
}

// formatBitIndex is the format bit each entry of formatPositions carries.
var formatBitIndex = [30]int{0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 8, 9, 10, 11, 12, 13, 14}

// --- penalties (go-qrcode symbol.go), on a size×size grid ---

func penalty(g []bool, size int) int {
	return penalty1(g, size) + penalty2(g, size) + penalty3(g, size) + penalty4(g, size)
}

func penalty1(g []bool, size int) int {
	p := 0
	for x := range size {
		last, count := g[x], 1
		for y := 1; y < size; y++ {
			if v := g[y*size+x]; v != last {
				count, last = 1, v
			} else {
				count++
				if count == 6 {
					p += 4
				} else if count > 6 {
					p++
				}
			}
		}
	}
	for y := range size {
		row := g[y*size : y*size+size]
		last, count := row[0], 1
		for _, v := range row[1:] {
			if v != last {
				count, last = 1, v
			} else {
				count++
				if count == 6 {
					p += 4
				} else if count > 6 {
					p++
				}
			}
		}
	}
	return p
}

func penalty2(g []bool, size int) int {
	p := 0
	for y := 1; y < size; y++ {
		above, row := g[(y-1)*size:y*size], g[y*size:(y+1)*size]
		for x := 1; x < size; x++ {
			c := row[x]
			if c == row[x-1] && c == above[x] && c == above[x-1] {
				p++
			}
		}
	}
	return p * 3
}

func penalty3(g []bool, size int) int {
	p := 0
	for y := range size {
		row := g[y*size : (y+1)*size]
		var buf int16
		for i, v := range row {
			buf <<= 1
			if v {
				buf |= 1
			}
			p += finderLike(&buf, i == size-1)
		}
	}
	for x := range size {
		var buf int16
		for i := range size {
			buf <<= 1
			if g[i*size+x] {
				buf |= 1
			}
			p += finderLike(&buf, i == size-1)
		}
	}
	return p
}

// finderLike is go-qrcode's test for a finder-like run at the end of buf,
// which it resets after a match.
func finderLike(buf *int16, last bool) int {
	switch *buf & 0x7ff {
	case 0x05d, 0x5d0:
		*buf = 0xff
		return 40
	}
	if last && *buf&0x7f == 0x5d {
		*buf = 0xff
		return 40
	}
	return 0
}

func penalty4(g []bool, size int) int {
	n := size * size
	dark := 0
	for _, v := range g {
		if v {
			dark++
		}
	}
	dev := n/2 - dark
	if dev < 0 {
		dev = -dev
	}
	return 10 * (dev / (n / 20))
}

// packedPenalty is penalty for a symbol held as bit rows and columns.
func packedPenalty(rows, cols []uint64, size int) int {
	p := 0
	dark := 0
	pairs := uint64(1)<<(size-1) - 1 // bits 0..size-2: a module and its predecessor
	for y, r := range rows {
		p += runPenalty(r, pairs) + finderPenalty(r, size)
		dark += bits.OnesCount64(r)
		if y > 0 {
			// 2×2 blocks: the two rows agree at a module and at its
			// predecessor, and the row agrees with itself across them.
			a := rows[y-1]
			same := ^(a ^ r)
			p += 3 * bits.OnesCount64(same&(same>>1)&^(r^(r>>1))&pairs)
		}
	}
	for _, c := range cols {
		p += runPenalty(c, pairs) + finderPenalty(c, size)
	}
	n := size * size
	dev := n/2 - dark
	if dev < 0 {
		dev = -dev
	}
	return p + 10*(dev/(n/20))
}

// runPenalty is go-qrcode's penalty1 for one line: a run of L >= 6 equal
// modules costs L-2. With e marking modules equal to their predecessor,
// m5 marks the modules that end five such equalities in a row: a run of
// L holds L-5 of them in one chain, so the cost is the count of m5 plus 3
// for each chain.
func runPenalty(line, pairs uint64) int {
	e := ^(line ^ (line >> 1)) & pairs
	m5 := e & (e >> 1) & (e >> 2) & (e >> 3) & (e >> 4)
	return bits.OnesCount64(m5) + 3*bits.OnesCount64(m5&^(m5>>1))
}

// finderPenalty is go-qrcode's penalty3 for one line: 40 for each
// 11-module window reading 00001011101 or 10111010000, where its shift
// register is set to 0xff after each match, plus 40 if the line ends in
// 1011101 without a match there. The matches of the real data are found
// with word operations; the scan then visits only them and the places
// where a reset can change the outcome. After a reset at x the window at
// x+t (t <= 10) holds t real modules under fake ones: no match is possible
// for t < 10, at t == 10 only 10111010000 with a fake leading 1, and the
// end check sees a fake 1 at t == 6. TestFinderPenalty compares this with
// the register itself.
func finderPenalty(line uint64, size int) int {
	const p1, p2 = 0x05d, 0x5d0
	m1, m2 := ^uint64(0), ^uint64(0)
	for j := range 11 {
		sh := line >> j
		if p1&(1<<j) != 0 {
			m1 &= sh
		} else {
			m1 &^= sh
		}
		if p2&(1<<j) != 0 {
			m2 &= sh
		} else {
			m2 &^= sh
		}
	}
	found := (m1 | m2) & (uint64(1)<<size - 1) // bit size-1-x: a match at x
	endReal := line&0x7f == 0x5d
	if found == 0 && !endReal {
		return 0
	}
	window := func(x int) uint64 { return line >> (size - 1 - x) & 0x7ff }
	p, reset, last := 0, -100, -1 // last: position of the last match
	for x := -1; ; {
		xr := size // next real match after x
		if below := found & (uint64(1)<<(size-1-x) - 1); x+1 < size && below != 0 {
			xr = size - bits.Len64(below)
		}
		xf := reset + 10 // where a fake leading 1 may complete a match
		if xf <= x || xf >= size {
			xf = size
		}
		switch {
		case xf < size && xf <= xr:
			x = xf
			if 0x400|window(x)&0x3ff == p2 {
				p += 40
				reset, last = x, x
			}
		case xr < size:
			x = xr
			if x-reset >= 11 {
				p += 40
				reset, last = x, x
			}
		default:
			if last != size-1 {
				switch t := size - 1 - reset; {
				case t >= 7 && endReal, t == 6 && line&0x3f == 0x1d:
					p += 40
				}
			}
			return p
		}
	}
}

// --- putting it together ---

// encodeM returns the module grid of content at level M with a quiet zone
// of QuietZone modules, identical to go-qrcode's New(content,
// Medium).Bitmap().
func encodeM(content string) ([][]bool, error) {
	data := []byte(content)
	if len(data) == 0 {
		return nil, errors.New("no data to encode")
	}
	var segBuf [16]segment
	var w bitWriter
	version := 0
	var err error
	for i := range encoderTypes {
		e := &encoderTypes[i]
		var segs []segment
		segs, err = e.segments(data, segBuf[:0])
		if err != nil {
			continue
		}
		w = bitWriter{b: make([]byte, 0, len(data)+8)}
		for _, s := range segs {
			e.encodeSegment(&w, data[s.start:s.end], s.mode)
		}
		for v := e.minVersion; v <= e.maxVersion; v++ {
			if mVersions[v].dataBits() >= w.n {
				version = v
				break
			}
		}
		if version != 0 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if version == 0 {
		return nil, errors.New("content too long to encode")
	}
	vi := &mVersions[version]
	capacity := vi.dataBits()

	// Terminator, padding to a whole codeword, then pad codewords.
	w.write(0, min(4, capacity-w.n))
	if w.n != capacity {
		w.write(0, (8-w.n%8)%8)
	}
	pad := [2]uint32{0xec, 0x11}
	for i := 0; capacity-w.n >= 8; i = 1 - i {
		w.write(pad[i], 8)
	}

	// Split into blocks, add error correction and interleave.
	type block struct{ data, ecc []byte }
	var blocksBuf [81]block
	blocks := blocksBuf[:0]
	off := 0
	for _, g := range vi.groups {
		for range g.n {
			b := block{data: w.b[off : off+g.data], ecc: make([]byte, g.total-g.data)}
			rsECC(b.data, b.ecc)
			blocks = append(blocks, b)
			off += g.data
		}
	}
	stream := make([]byte, 0, capacity/8+len(blocks)*len(blocks[0].ecc))
	for i := 0; ; i++ {
		any := false
		for _, b := range blocks {
			if i < len(b.data) {
				stream = append(stream, b.data[i])
				any = true
			}
		}
		if !any {
			break
		}
	}
	for i := range blocks[0].ecc {
		for _, b := range blocks {
			stream = append(stream, b.ecc[i])
		}
	}
	nbits := len(stream)*8 + vi.remainder

	// Lay the data out under each mask and keep the first with the
	// lowest penalty.
	l := layoutOf(version)
	size := l.size
	if nbits != len(l.path) {
		return nil, errors.New("qr code: internal error: data does not fill the symbol")
	}
	payload := make([]bool, nbits)
	for i := range len(stream) * 8 {
		payload[i] = stream[i/8]&(0x80>>(i%8)) != 0
	}
	if l.packed {
		return packedSymbol(l, payload), nil
	}
	fpos := formatPositions(size)
	grid := make([]bool, size*size)
	best := make([]bool, size*size)
	bestPenalty := -1
	for m := range 8 {
		copy(grid, l.base)
		mb := l.maskBits[m]
		for i, p := range l.path {
			grid[p] = mb[i] != payload[i]
		}
		f := formatBits[m]
		for k, pos := range fpos {
			grid[pos[1]*size+pos[0]] = f&(1<<formatBitIndex[k]) != 0
		}
		if p := penalty(grid, size); bestPenalty < 0 || p < bestPenalty {
			bestPenalty = p
			grid, best = best, grid
		}
	}

	return withQuietZone(size, func(x, y int) bool { return best[y*size+x] }), nil
}

// packedSymbol lays bits out under each mask as bit rows and columns,
// scores them and returns the first with the lowest penalty.
func packedSymbol(l *layout, data []bool) [][]bool {
	size := l.size
	dataRows, dataCols := make([]uint64, size), make([]uint64, size)
	for i, p := range l.path {
		if data[i] {
			setBit(dataRows, dataCols, size, int(p)%size, int(p)/size)
		}
	}
	rows, cols := make([]uint64, size), make([]uint64, size)
	best := make([]uint64, size)
	bestPenalty := -1
	for m := range 8 {
		for i := range size {
			rows[i] = l.baseRows[i] | l.formatRows[m][i] | dataRows[i] ^ l.maskRows[m][i]
			cols[i] = l.baseCols[i] | l.formatCols[m][i] | dataCols[i] ^ l.maskCols[m][i]
		}
		if p := packedPenalty(rows, cols, size); bestPenalty < 0 || p < bestPenalty {
			bestPenalty = p
			copy(best, rows)
		}
	}
	return withQuietZone(size, func(x, y int) bool { return best[y]&(1<<(size-1-x)) != 0 })
}

// withQuietZone returns the size×size symbol whose module (x, y) is
// dark(x, y) inside a quiet zone; all rows share one allocation.
func withQuietZone(size int, dark func(x, y int) bool) [][]bool {
	n := size + 2*QuietZone
	cells := make([]bool, n*n)
	out := make([][]bool, n)
	for y := range n {
		out[y] = cells[y*n : (y+1)*n]
		if y >= QuietZone && y < QuietZone+size {
			for x := range size {
				out[y][QuietZone+x] = dark(x, y-QuietZone)
			}
		}
	}
	return out
}
