package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/qrlogin/qrlogin/server/lanaddr"
	"github.com/qrlogin/qrlogin/shared/api"
)

// The phone cookie's names. Over HTTPS the __Host- prefix makes browsers
// accept the cookie only when it is Secure, for Path=/ and without Domain,
// so nothing on plain HTTP or on a sibling domain can plant or overwrite it.
const (
	phoneCookieName     = "qrlogin_phone"
	hostPhoneCookieName = "__Host-" + phoneCookieName
)

// hsts is the Strict-Transport-Security value sent over HTTPS: a year.
const hsts = "max-age=31536000"

// phoneCookie is the phone cookie: its name and whether it is Secure.
type phoneCookie struct {
	name   string
	secure bool
}

func newPhoneCookie(https bool) phoneCookie {
	if https {
		return phoneCookie{name: hostPhoneCookieName, secure: true}
	}
	return phoneCookie{name: phoneCookieName}
}

// value is the request's phone cookie, or "".
func (p phoneCookie) value(c *gin.Context) string {
	v, err := c.Cookie(p.name)
	if err != nil {
		return ""
	}
	return v
}

func (p phoneCookie) set(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     p.name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   p.secure,
		SameSite: http.SameSiteStrictMode,
	})
}

func (p phoneCookie) clear(c *gin.Context) { p.set(c, "", -1) }

// proxies are the configured trusted proxies (--trusted-proxies).
type proxies []netip.Prefix

// parseProxies parses --trusted-proxies: IP addresses and CIDR ranges.
func parseProxies(list []string) (proxies, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, p := range list {
		if a, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR range", p)
		}
		if pfx.Addr().Is4In6() {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), max(pfx.Bits()-96, 0))
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// trusted reports whether ip (as text) is a configured proxy.
func (ps proxies) trusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerIP is the address of the connection's other end.
func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// edge runs before everything else, on every response:
//   - over HTTPS, it sends Strict-Transport-Security;
//   - once per Server (one serves a process), it warns when a
//     request carries X-Forwarded-For from an address not in
//     --trusted-proxies: then every client seems to come from the proxy;
//   - when a trusted proxy says the client reached it over plain HTTP
//     (X-Forwarded-Proto: http) although the server is served over HTTPS,
//     a page load is redirected to the https:// public URL and anything
//     else refused, so the phone page never asks for a password over
//     plain HTTP. X-Forwarded-Proto from anyone else is ignored.
type edge struct {
	log       *slog.Logger
	https     bool // reached over HTTPS: see Config.SecureCookies
	proxies   proxies
	publicURL string
	warnedXFF atomic.Bool // the X-Forwarded-For warning was logged
}

func (e *edge) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.answered(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// answered does the edge's checks, and reports whether it answered the
// request itself. A method of its own so that its frame is not on the
// stack under every held request.
//
//go:noinline
func (e *edge) answered(w http.ResponseWriter, r *http.Request) bool {
	if e.https {
		w.Header().Set("Strict-Transport-Security", hsts)
	}
	peer := peerIP(r)
	trusted := e.proxies.trusted(peer)
	if !trusted && r.Header.Get("X-Forwarded-For") != "" && e.warnedXFF.CompareAndSwap(false, true) {
		e.log.WarnContext(r.Context(), "requests carry X-Forwarded-For from an address not in --trusted-proxies; "+
			"every client behind that proxy looks like the proxy to rate limits and the phone's network check: "+
			"add the proxy's address to --trusted-proxies", slog.String("proxy", peer))
	}
	if e.https && trusted && r.TLS == nil && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "http") {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, e.publicURL+r.URL.RequestURI(), http.StatusPermanentRedirect)
			return true
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(api.Error{Code: api.ErrForbidden, Message: "This server is only served over HTTPS; use " + e.publicURL + "."})
		return true
	}
	return false
}

// seen is the request's client address as the network check needs it.
func (ps proxies) seen(c *gin.Context) lanaddr.Addr {
	peer, client := c.RemoteIP(), c.ClientIP()
	via := lanaddr.Peer
	switch {
	case ps.trusted(peer) && client != peer:
		via = lanaddr.Forwarded
	case ps.trusted(peer), c.GetHeader("X-Forwarded-For") != "":
		via = lanaddr.Proxy
	}
	return lanaddr.Addr{IP: net.ParseIP(client), Via: via}
}

// desktopSeen is the address a session's desktop was seen at. Only the
// address is stored; it is a proxy's when it is a trusted proxy's.
func (ps proxies) desktopSeen(ip string) lanaddr.Addr {
	via := lanaddr.Peer
	if ps.trusted(ip) {
		via = lanaddr.Proxy
	}
	return lanaddr.Addr{IP: net.ParseIP(ip), Via: via}
}
