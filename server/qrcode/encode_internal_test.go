package qrcode

import (
	"math/rand/v2"
	"testing"
)

// registerPenalty3 is go-qrcode's penalty3 for one line, verbatim: the
// reference for finderPenalty.
func registerPenalty3(line uint64, size int) int {
	p := 0
	var buf int16
	for i := range size {
		buf <<= 1
		if line&(1<<(size-1-i)) != 0 {
			buf |= 1
		}
		p += finderLike(&buf, i == size-1)
	}
	return p
}

// scanPenalty1 is go-qrcode's penalty1 for one line, verbatim.
func scanPenalty1(line uint64, size int) int {
	at := func(i int) bool { return line&(1<<(size-1-i)) != 0 }
	p, last, count := 0, at(0), 1
	for i := 1; i < size; i++ {
		if v := at(i); v != last {
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
	return p
}

// TestFinderPenalty compares the word-operation penalties with go-qrcode's
// scans on random lines and on lines dense in finder-like patterns, where
// the register's resets matter.
func TestFinderPenalty(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []uint64{0x5d, 0x5d0, 0x05d, 0x2e8, 0xba, 0x1d, 0x0, 0x7ff, 0x1, 0x3}
	for _, size := range []int{21, 25, 29, 33, 37, 45, 57, 61, 64} {
		all := uint64(1)<<size - 1
		if size == 64 {
			all = ^uint64(0)
		}
		for range 20000 {
			var line uint64
			if rng.IntN(2) == 0 {
				line = rng.Uint64()
			} else {
				for n := 0; n < size; {
					p := pieces[rng.IntN(len(pieces))]
					w := 3 + rng.IntN(9)
					line = line<<w | p&(1<<w-1)
					n += w
				}
			}
			line &= all
			if got, want := finderPenalty(line, size), registerPenalty3(line, size); got != want {
				t.Fatalf("size %d line %0*b: finderPenalty %d, go-qrcode's %d", size, size, line, got, want)
			}
			pairs := uint64(1)<<(size-1) - 1
			if got, want := runPenalty(line, pairs), scanPenalty1(line, size); got != want {
				t.Fatalf("size %d line %0*b: runPenalty %d, go-qrcode's %d", size, size, line, got, want)
			}
		}
	}
}
