package client

import (
	"net"
	"net/url"
	"strings"
)

// Unencrypted reports whether requests to baseURL cross a network
// unencrypted: an http:// URL whose host is not this machine (localhost,
// a name under .localhost, or a loopback address). Passwords and tokens
// sent there can be read on the way. A URL that does not parse counts as
// unencrypted unless it is https://.
func Unencrypted(baseURL string) bool {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return !strings.HasPrefix(strings.ToLower(strings.TrimSpace(baseURL)), "https://")
	}
	if !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
