package mobileweb_test

import (
	"bytes"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"

	mobileweb "github.com/qrlogin/qrlogin/mobile-web"
)

// languageCases are Accept-Language values and the page each gets; they
// also seed FuzzLanguage.
var languageCases = []struct {
	header string
	want   string
}{
	{"", mobileweb.English},
	{"*", mobileweb.English},
	{"en", mobileweb.English},
	{"en-GB", mobileweb.English},
	{"zh", mobileweb.Chinese},
	{"zh-CN", mobileweb.Chinese},
	{"ZH-cn", mobileweb.Chinese},
	{"zh-Hans", mobileweb.Chinese},
	{"zh-Hans-CN", mobileweb.Chinese},
	{"zh-SG", mobileweb.Chinese},
	{"cmn-Hans", mobileweb.Chinese},
	// Traditional Chinese readers get the Chinese page over English.
	{"zh-TW", mobileweb.Chinese},
	{"zh-Hant", mobileweb.Chinese},
	{"zh-HK,en;q=0.9", mobileweb.Chinese},
	{"zh-TW,zh;q=0.9", mobileweb.Chinese},
	{"en;q=0.5,zh-TW;q=0.8", mobileweb.Chinese},
	{"en-US,en;q=0.9,zh-TW;q=0.8", mobileweb.English},
	// q-values, then order.
	{"zh-CN,zh;q=0.9,en;q=0.8", mobileweb.Chinese},
	{"en-US,en;q=0.9,zh-CN;q=0.8", mobileweb.English},
	{"en;q=0.5, zh;q=0.8", mobileweb.Chinese},
	{"fr-FR,fr;q=0.9,zh;q=0.5", mobileweb.Chinese},
	{"ja,zh;q=0.1", mobileweb.Chinese},
	{"fr,en;q=0.1,zh;q=0.05", mobileweb.English},
	{"zh;q=0", mobileweb.English},
	{"zh;q=0,en;q=0.1", mobileweb.English},
	{"zh;q=0.5,en;q=0.5", mobileweb.Chinese}, // equal: first listed wins
	{"en;q=0.5,zh;q=0.5", mobileweb.English},
	{" zh-cn ; q = 0.7 , en ; q=0.6", mobileweb.Chinese},
	// Unsupported languages and garbage.
	{"fr-FR,de;q=0.9", mobileweb.English},
	{"ja", mobileweb.English},
	{"zh-Latn", mobileweb.English},
	{"x-foo", mobileweb.English},
	// A malformed range is skipped; the others still count.
	{"zh;q=abc,en;q=0.1", mobileweb.English},
	{"zh-CN,xx_bad!,en;q=0.5", mobileweb.Chinese},
	{"fr,zh;q=0.9;q=0.9,en;q=0.8;q=0.8", mobileweb.English},
	// What Chromium sends when told "zh-CN,zh;q=0.9,en;q=0.8".
	{"zh-CN,zh;q=0.9;q=0.9,en;q=0.8;q=0.8", mobileweb.Chinese},
	{"en-US,en;q=0.9;q=0.9,zh-CN;q=0.8;q=0.8", mobileweb.English},
	{"zh;level=1", mobileweb.English},
	{"english,zhongwen", mobileweb.English},
	{",,,;;;===", mobileweb.English},
	{"zh\x00CN", mobileweb.English},
	{strings.Repeat("a", 10000), mobileweb.English},
	{strings.Repeat("fr,", 100) + "zh", mobileweb.English}, // only the first ranges are read
	{strings.Repeat("fr,", 31) + "zh", mobileweb.Chinese},  // the 32nd is
}

func TestLanguage(t *testing.T) {
	for _, tt := range languageCases {
		if got := mobileweb.Language(tt.header); got != tt.want {
			t.Errorf("Language(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

// TestLanguageConcurrent: the shared matcher serves concurrent requests.
func TestLanguageConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, tt := range languageCases {
				if got := mobileweb.Language(tt.header); got != tt.want {
					t.Errorf("Language(%q) = %q, want %q", tt.header, got, tt.want)
				}
			}
		})
	}
	wg.Wait()
}

// FuzzLanguage: any header value picks one of the page's languages,
// without panicking.
func FuzzLanguage(f *testing.F) {
	for _, tt := range languageCases {
		f.Add(tt.header)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if got := mobileweb.Language(header); got != mobileweb.English && got != mobileweb.Chinese {
			t.Fatalf("Language(%q) = %q, not a language of the page", header, got)
		}
	})
}

func TestIndex(t *testing.T) {
	tests := []struct {
		lang, wantTag string
	}{
		{mobileweb.English, `<html lang="en">`},
		{mobileweb.Chinese, `<html lang="zh-CN">`},
		{"fr", `<html lang="en">`},
		{"", `<html lang="en">`},
	}
	for _, tt := range tests {
		page := mobileweb.Index(tt.lang)
		if !bytes.Contains(page, []byte(tt.wantTag)) {
			t.Errorf("Index(%q) lacks %s", tt.lang, tt.wantTag)
		}
		if bytes.Contains(page, []byte("{{")) {
			t.Errorf("Index(%q) has an unrendered template action", tt.lang)
		}
	}
	if &mobileweb.Index(mobileweb.Chinese)[0] != &mobileweb.Index(mobileweb.Chinese)[0] {
		t.Error("Index renders the page again on every call; want it cached")
	}
}

// TestIndexAssets checks that every asset the page links is embedded and
// carries the version query that busts caches.
func TestIndexAssets(t *testing.T) {
	page := string(mobileweb.Index(mobileweb.English))
	links := regexp.MustCompile(`(?:src|href)="/m/static/([^"?]+)\?v=([0-9a-f]{12})"`).FindAllStringSubmatch(page, -1)
	want := map[string]bool{"app.css": false, "app.js": false, "icon.svg": false}
	for _, l := range links {
		if _, err := fs.Stat(mobileweb.Static(), l[1]); err != nil {
			t.Errorf("page links /m/static/%s, which is not embedded: %v", l[1], err)
		}
		want[l[1]] = true
	}
	for name, linked := range want {
		if !linked {
			t.Errorf("page does not link %s with a version", name)
		}
	}
}

// TestIndexNoInlineCode guards the Content-Security-Policy, which allows no
// inline script, inline style or event-handler attribute.
func TestIndexNoInlineCode(t *testing.T) {
	page := string(mobileweb.Index(mobileweb.English))
	bad := map[string]*regexp.Regexp{
		"inline script":      regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`),
		"script without src": regexp.MustCompile(`<script(?:\s(?:[^>s]|s[^r]|sr[^c])*)?>`),
		"style element":      regexp.MustCompile(`<style`),
		"style attribute":    regexp.MustCompile(`\sstyle=`),
		"event handler":      regexp.MustCompile(`\son[a-z]+=`),
		"external URL":       regexp.MustCompile(`(?:src|href|action)="(?:https?:)?//`),
	}
	for what, re := range bad {
		if m := re.FindString(page); m != "" {
			t.Errorf("index.html has an %s: %q", what, m)
		}
	}
}

// TestSizeBudget keeps the whole page (HTML and every asset) under 48 KB
// uncompressed (about 15 KB gzipped). It was 30 KB until the confirm
// screen gained the registered OAuth app (about 1.5 KB in two languages),
// then 32 KB until the signed-in devices screen and its confirm step
// (about 15 KB: 11 KB of script with both languages' text, 2 KB of HTML,
// 1.5 KB of CSS).
func TestSizeBudget(t *testing.T) {
	const budget = 48 * 1024
	total := len(mobileweb.Index(mobileweb.Chinese))
	err := fs.WalkDir(mobileweb.Static(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(mobileweb.Static(), path)
		t.Logf("%-10s %6d bytes", path, len(b))
		total += len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("total      %6d bytes (budget %d)", total, budget)
	if total >= budget {
		t.Errorf("page weighs %d bytes, over the %d-byte budget", total, budget)
	}
}
