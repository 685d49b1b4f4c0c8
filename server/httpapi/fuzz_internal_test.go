package httpapi

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCleanField: whatever a computer reports as its name, platform or
// app, what is kept is valid UTF-8, trimmed, at most max characters, free
// of control and format characters and line breaks, and cleaning it again
// changes nothing.
func FuzzCleanField(f *testing.F) {
	for _, s := range []string{
		"", " ", "Work laptop", "  padded\t", "a\r\nb", "a\u2028b\u2029c", "\u202eevil\u202c", "\u200b\u200d\ufeff",
		"\xff\xfeab\xc3", "a\x00b\x7f\u0085c", "é\u0301", strings.Repeat("x", 150), strings.Repeat("日本", 80),
		" \u00a0x\u00a0 ", "a\u3000", "\xe2\x80", "\xe2\xff\x82\xac", "\U0001F600\U000E0001",
	} {
		f.Add(s, uint16(maxDeviceField))
		f.Add(s, uint16(3))
	}
	f.Fuzz(func(t *testing.T, s string, max uint16) {
		m := int(max % 400)
		out := cleanField(s, m)
		if !utf8.ValidString(out) {
			t.Fatalf("cleanField(%q, %d) = %q: not valid UTF-8", s, m, out)
		}
		if n := utf8.RuneCountInString(out); n > m {
			t.Fatalf("cleanField(%q, %d) = %q: %d characters", s, m, out, n)
		}
		if strings.TrimSpace(out) != out {
			t.Fatalf("cleanField(%q, %d) = %q: not trimmed", s, m, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
				t.Fatalf("cleanField(%q, %d) = %q: holds %U", s, m, out, r)
			}
		}
		if again := cleanField(out, m); again != out {
			t.Fatalf("cleanField(%q, %d) = %q, cleaned again %q", s, m, out, again)
		}
		if m >= utf8.RuneCountInString(s) && utf8.ValidString(s) {
			// Nothing is cut: every character kept is in s, in order.
			rest := s
			for _, r := range out {
				i := strings.IndexRune(rest, r)
				if i < 0 {
					t.Fatalf("cleanField(%q, %d) = %q: %U is not from the input", s, m, out, r)
				}
				rest = rest[i+utf8.RuneLen(r):]
			}
		}
	})
}
