package auth_test

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/qrlogin/qrlogin/server/auth"
)

var urlSafe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestNewToken(t *testing.T) {
	tests := []struct {
		bytes   int
		wantLen int
		wantErr bool
	}{
		{bytes: -1, wantErr: true},
		{bytes: 0, wantErr: true},
		{bytes: 15, wantErr: true},
		{bytes: 16, wantLen: 22},
		{bytes: 32, wantLen: 43},
		{bytes: 64, wantLen: 86},
	}
	for _, tt := range tests {
		tok, err := auth.NewToken(tt.bytes)
		if tt.wantErr {
			if err == nil {
				t.Errorf("NewToken(%d) = %q, want error", tt.bytes, tok)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewToken(%d): %v", tt.bytes, err)
		}
		if len(tok) != tt.wantLen || !urlSafe.MatchString(tok) {
			t.Errorf("NewToken(%d) = %q, want %d URL-safe characters", tt.bytes, tok, tt.wantLen)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != tt.bytes {
			t.Errorf("NewToken(%d) decodes to %d bytes, err %v", tt.bytes, len(raw), err)
		}
	}
}

func TestNewTokenUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		tok, err := auth.NewToken(32)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("NewToken repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestHashToken(t *testing.T) {
	// FIPS 180-2 test vector.
	want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := hex.EncodeToString(auth.HashToken("abc")); got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
	if a, b := auth.HashToken("t1"), auth.HashToken("t2"); string(a) == string(b) {
		t.Errorf("different tokens hash equal")
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := auth.NewID()
		if len(id) != 22 || !urlSafe.MatchString(id) {
			t.Fatalf("NewID = %q, want 22 URL-safe characters", id)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) != 16 {
			t.Fatalf("NewID %q decodes to %d bytes, err %v; want 16", id, len(raw), err)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestNewUserCode(t *testing.T) {
	for range 1000 {
		code, err := auth.NewUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 8 {
			t.Fatalf("NewUserCode = %q, want 8 characters", code)
		}
		for _, r := range code {
			if !strings.ContainsRune(auth.UserCodeAlphabet, r) {
				t.Fatalf("NewUserCode = %q, %q not in alphabet", code, r)
			}
		}
		if n, ok := auth.NormalizeUserCode(code); !ok || n != code {
			t.Fatalf("NormalizeUserCode(%q) = %q, %v", code, n, ok)
		}
	}
}

// TestNewUserCodeUniform is a chi-square test of the letter counts. With
// 19 degrees of freedom a statistic above 70 has probability about 1e-7
// for a uniform source; a plain byte%20 (which favours the first 16
// letters by 13:12) scores around 150 on this many samples.
func TestNewUserCodeUniform(t *testing.T) {
	const codes = 20000
	counts := make(map[rune]int)
	for range codes {
		code, err := auth.NewUserCode()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range code {
			counts[r]++
		}
	}
	if len(counts) != len(auth.UserCodeAlphabet) {
		t.Fatalf("saw %d distinct letters, want %d", len(counts), len(auth.UserCodeAlphabet))
	}
	expected := float64(codes*auth.UserCodeLen) / float64(len(auth.UserCodeAlphabet))
	var chi2 float64
	for _, n := range counts {
		d := float64(n) - expected
		chi2 += d * d / expected
	}
	if chi2 > 70 {
		t.Errorf("chi-square = %.1f over %v, letters are not uniform", chi2, counts)
	}
}

func TestFormatUserCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"BCDFGHJK", "BCDF-GHJK"},
		{"ZZZZZZZZ", "ZZZZ-ZZZZ"},
		{"BCD", "BCD"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := auth.FormatUserCode(tt.in); got != tt.want {
			t.Errorf("FormatUserCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeUserCode(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"BCDFGHJK", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{"bCdF gHjK", "BCDFGHJK", true},
		{" BCDF - GHJK ", "BCDFGHJK", true},
		{"B-C-D-F-G-H-J-K", "BCDFGHJK", true},
		{"", "", false},
		{"-", "", false},
		{"BCDF-GHJ", "", false},      // too short
		{"BCDF-GHJKL", "", false},    // too long
		{"BCDF-GHJA", "", false},     // vowel
		{"BCDF-GHJ1", "", false},     // digit
		{"BCDF_GHJK", "", false},     // other separator
		{"BCDF\tGHJK", "", false},    // tab
		{"BCDFGHJ\u212A", "", false}, // Kelvin sign, upper-cases like K elsewhere
		{"ÄCDF-GHJK", "", false},
		{strings.Repeat(" ", 100) + "BCDFGHJK", "", false},
		{strings.Repeat("B", 1000), "", false},
	}
	for _, tt := range tests {
		got, ok := auth.NormalizeUserCode(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
