package qrcode_test

import (
	"testing"

	qr "github.com/skip2/go-qrcode"

	"github.com/qrlogin/qrlogin/server/qrcode"
)

const benchURL = "http://192.168.1.23:8080/m/Xq3v9bT0kLm2Pz7YwA1cRd"

func BenchmarkPNG(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrcode.PNG(benchURL, 256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDataURL(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrcode.DataURL(benchURL, 256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGrid is the package's own encoder: the module grid that
// BenchmarkBitmap computes with go-qrcode, identical module for module.
func BenchmarkGrid(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrcode.Grid(benchURL); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBitmap is go-qrcode's own grid computation, which Grid
// replaces.
func BenchmarkBitmap(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		q, err := qr.New(benchURL, qr.Medium)
		if err != nil {
			b.Fatal(err)
		}
		q.Bitmap()
	}
}

// BenchmarkSkip2Encode is the baseline: go-qrcode's own PNG output.
func BenchmarkSkip2Encode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qr.Encode(benchURL, qr.Medium, 256); err != nil {
			b.Fatal(err)
		}
	}
}
