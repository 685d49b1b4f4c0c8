// Package mobileweb holds the phone confirm page: the single HTML page a
// phone opens from the desktop's QR code (/m/<id>) or to type a user code
// (/m), and its static CSS, JavaScript and icon.
//
// The files are embedded here because //go:embed cannot reach outside the
// package's folder; the server's HTTP layer serves them. The page talks
// only to its own origin and never sees a token: the phone is
// authenticated by an HttpOnly cookie.
package mobileweb

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/language"
)

// The languages the page is written in, as BCP 47 tags for <html lang>.
const (
	English = "en"
	Chinese = "zh-CN"
)

//go:embed index.html static
var files embed.FS

// Static returns the page's assets (app.css, app.js, icon.svg) at the root
// of the returned file system. The page links them as /m/static/<name>.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(fmt.Sprintf("mobileweb: static assets: %v", err)) // cannot happen: the folder is embedded
	}
	return sub
}

// Index returns the HTML page for lang (English or Chinese; anything else
// gets English). The bytes are rendered once per language and shared:
// callers must not modify them.
func Index(lang string) []byte {
	pages := renderPages()
	if lang == Chinese {
		return pages[Chinese]
	}
	return pages[English]
}

// Version is a short hash of the static assets. The page links them with
// ?v=<Version>, so a response for that URL can be cached indefinitely.
func Version() string { return assetsVersion() }

// renderPages renders index.html once for each language. The asset URLs
// carry a hash of the assets so that a browser caching them never mixes an
// old script with a new page.
var renderPages = sync.OnceValue(func() map[string][]byte {
	tmpl := template.Must(template.ParseFS(files, "index.html"))
	version := Version()
	pages := make(map[string][]byte, 2)
	for _, lang := range []string{English, Chinese} {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, struct{ Lang, Version string }{lang, version}); err != nil {
			panic(fmt.Sprintf("mobileweb: render index.html: %v", err)) // the template is fixed and tested
		}
		pages[lang] = buf.Bytes()
	}
	return pages
})

var assetsVersion = sync.OnceValue(func() string {
	h := sha256.New()
	err := fs.WalkDir(files, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("mobileweb: hash static assets: %v", err))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
})

// maxLanguageRanges bounds the work done on a hostile Accept-Language.
const maxLanguageRanges = 32

// pageLanguages are the languages the matcher chooses among, each with
// the page that serves it. Traditional Chinese readers get the Chinese
// (Simplified) page: they read it far more easily than English, so a
// zh-TW or zh-Hant preference above English still means Chinese.
var pageLanguages = []struct {
	tag  language.Tag
	page string
}{
	{language.English, English}, // first: the matcher's default
	{language.SimplifiedChinese, Chinese},
	{language.TraditionalChinese, Chinese},
}

var matcher = sync.OnceValue(func() language.Matcher {
	tags := make([]language.Tag, len(pageLanguages))
	for i, l := range pageLanguages {
		tags[i] = l.tag
	}
	return language.NewMatcher(tags)
})

// Language picks the page language (English or Chinese) from an
// Accept-Language header value with x/text's matcher: the most preferred
// range (by q, then order) that the page is written in wins, so zh,
// zh-Hans, zh-CN and zh-SG (and zh-TW, zh-Hant) get Chinese unless an
// English range is preferred to them. Each range is parsed on its own, so
// a malformed one (Chromium repeats q when it emulates a language list:
// "zh;q=0.9;q=0.9") is skipped rather than spoiling the header. An empty
// or unmatched header gets English. Only the first 32 ranges are read.
func Language(acceptLanguage string) string {
	type pref struct {
		tag language.Tag
		q   float32
	}
	ranges := strings.SplitN(acceptLanguage, ",", maxLanguageRanges+1)
	ranges = ranges[:min(len(ranges), maxLanguageRanges)]
	var prefs []pref
	for _, r := range ranges {
		tags, qs, err := language.ParseAcceptLanguage(r)
		if err != nil {
			continue
		}
		for j, t := range tags {
			prefs = append(prefs, pref{t, qs[j]})
		}
	}
	if len(prefs) == 0 {
		return English
	}
	// Most preferred first; among equals the first listed.
	slices.SortStableFunc(prefs, func(a, b pref) int { return cmp.Compare(b.q, a.q) })
	tags := make([]language.Tag, len(prefs))
	for i, p := range prefs {
		tags[i] = p.tag
	}
	_, i, _ := matcher().Match(tags...)
	return pageLanguages[i].page
}
