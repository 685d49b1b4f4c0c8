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
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"strconv"
	"strings"
	"sync"
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

// Language picks the page language from an Accept-Language header value:
// Chinese if a "zh" range (any region or script) has a higher preference
// than any English range, English otherwise. Among equal preferences the
// first listed wins; "*" and unsupported languages are ignored.
func Language(acceptLanguage string) string {
	best, bestQ := English, 0.0
	for i, part := range strings.Split(acceptLanguage, ",") {
		if i >= maxLanguageRanges {
			break
		}
		tag, params, _ := strings.Cut(part, ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		q, ok := quality(params)
		if !ok || q <= 0 {
			continue
		}
		primary, _, _ := strings.Cut(tag, "-")
		var lang string
		switch primary {
		case "zh":
			lang = Chinese
		case "en":
			lang = English
		default:
			continue
		}
		if q > bestQ { // strictly greater: the first of equals wins
			best, bestQ = lang, q
		}
	}
	return best
}

// quality parses the parameters after a language range (e.g. " q=0.8").
// A range without q has quality 1; a malformed q is reported as not ok.
func quality(params string) (float64, bool) {
	params = strings.TrimSpace(params)
	if params == "" {
		return 1, true
	}
	name, value, found := strings.Cut(params, "=")
	if !found || strings.ToLower(strings.TrimSpace(name)) != "q" {
		return 0, false
	}
	q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || q < 0 || q > 1 {
		return 0, false
	}
	return q, true
}
