// Package lanaddr finds the address phones should use to reach this
// machine, and tells whether two clients are on the same network. The
// server builds its default public URL from Detect and tells the phone
// what Network makes of the desktop's address.
package lanaddr

import (
	"fmt"
	"net"
	"strings"
)

// Interface is what Detect needs to know about a network interface; it
// mirrors net.Interface plus its addresses, so the rules can be tested
// without the machine's real interfaces.
type Interface struct {
	Name  string
	Flags net.Flags
	Addrs []net.IP
}

// virtualPrefixes name interfaces that a phone on the LAN cannot reach:
// container and VM bridges (docker, br-, virbr, vnet, lxc, lxd, podman,
// vmnet, vboxnet), Kubernetes networking (cni, flannel, cali, weave, kube),
// veth pairs, and VPN tunnels (tun, tap, utun, wg, tailscale, zt), whose
// addresses live on another network than the phone's Wi-Fi.
var virtualPrefixes = []string{
	"docker", "br-", "virbr", "vnet", "lxc", "lxd", "podman", "vmnet", "vboxnet",
	"cni", "flannel", "cali", "weave", "kube", "veth",
	"tun", "tap", "utun", "wg", "tailscale", "zt",
}

// virtual reports whether an interface named name is skipped by Detect.
func virtual(name string) bool {
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Detect picks the IPv4 address of this machine that a phone on the same
// LAN is most likely to reach. It considers interfaces that are up, not
// loopback and not virtual (container bridges, veth pairs, VPN tunnels:
// see virtualPrefixes), and their IPv4 addresses that are not loopback,
// link-local (169.254/16), multicast, broadcast or unspecified. Among
// those it prefers private (RFC 1918) addresses, then the first in the
// order given; it does not insist on private ranges because some LANs use
// public addresses. With no candidate it returns 127.0.0.1 and
// loopbackOnly true.
func Detect(ifaces []Interface) (ip net.IP, loopbackOnly bool) {
	var public net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || virtual(ifc.Name) {
			continue
		}
		for _, a := range ifc.Addrs {
			v4 := a.To4()
			if v4 == nil || v4.IsLoopback() || v4.IsLinkLocalUnicast() || v4.IsMulticast() ||
				v4.IsUnspecified() || v4.Equal(net.IPv4bcast) {
				continue
			}
			if v4.IsPrivate() {
				return v4, false
			}
			if public == nil {
				public = v4
			}
		}
	}
	if public != nil {
		return public, false
	}
	return net.IPv4(127, 0, 0, 1).To4(), true
}

// DetectSystem runs Detect over this machine's interfaces. An interface
// whose addresses cannot be read is skipped.
func DetectSystem() (ip net.IP, loopbackOnly bool, err error) {
	sys, err := net.Interfaces()
	if err != nil {
		return nil, false, fmt.Errorf("list network interfaces: %w", err)
	}
	ifaces := make([]Interface, 0, len(sys))
	for _, s := range sys {
		addrs, err := s.Addrs()
		if err != nil {
			continue
		}
		ifc := Interface{Name: s.Name, Flags: s.Flags}
		for _, a := range addrs {
			switch a := a.(type) {
			case *net.IPNet:
				ifc.Addrs = append(ifc.Addrs, a.IP)
			case *net.IPAddr:
				ifc.Addrs = append(ifc.Addrs, a.IP)
			}
		}
		ifaces = append(ifaces, ifc)
	}
	ip, loopbackOnly = Detect(ifaces)
	return ip, loopbackOnly, nil
}

// scope classifies addresses so that SameNetwork never matches a public
// address with a private one that happens to share its leading bytes.
type scope int

const (
	scopePublic scope = iota
	scopePrivate
	scopeLoopback
	scopeLinkLocal
)

func scopeOf(ip net.IP) scope {
	switch {
	case ip.IsLoopback():
		return scopeLoopback
	case ip.IsPrivate():
		return scopePrivate
	case ip.IsLinkLocalUnicast():
		return scopeLinkLocal
	}
	return scopePublic
}

// SameNetwork reports whether a and b are on the same network as far as
// their addresses tell: the same /24 for IPv4, the same /64 for IPv6, and
// the same kind of address (public, private, loopback, link-local). An
// IPv4-mapped IPv6 address counts as IPv4; an IPv4 and an IPv6 address
// are never on the same network, nor is a nil address on any.
func SameNetwork(a, b net.IP) bool {
	if a4, b4 := a.To4(), b.To4(); a4 != nil || b4 != nil {
		if a4 == nil || b4 == nil || scopeOf(a4) != scopeOf(b4) {
			return false
		}
		return a4.Mask(net.CIDRMask(24, 32)).Equal(b4.Mask(net.CIDRMask(24, 32)))
	}
	a16, b16 := a.To16(), b.To16()
	if a16 == nil || b16 == nil || scopeOf(a16) != scopeOf(b16) {
		return false
	}
	return a16.Mask(net.CIDRMask(64, 128)).Equal(b16.Mask(net.CIDRMask(64, 128)))
}

// Verdict is what the server can tell the phone about the desktop's
// network: "same", "different" or "unknown".
type Verdict string

// The verdicts of Network.
const (
	Same      Verdict = "same"
	Different Verdict = "different"
	Unknown   Verdict = "unknown"
)

// Via says how the server learned a client's address.
type Via int

const (
	// Peer is the connection's own peer address, with no sign of a proxy.
	Peer Via = iota
	// Forwarded is a client address a trusted proxy reported in
	// X-Forwarded-For.
	Forwarded
	// Proxy is the address of a proxy, not of the client: a trusted proxy
	// that reported no client, or a peer that sent X-Forwarded-For
	// without being trusted (a proxy missing from --trusted-proxies).
	Proxy
)

// Addr is a client address as the server saw it.
type Addr struct {
	IP  net.IP
	Via Via
}

// Network compares the desktop's and the phone's addresses:
//
//   - Unknown when either address is missing, unspecified or loopback
//     (everything then looks like this machine), or is a proxy's address.
//   - Identical addresses are Same only when one of them came from a trusted
//     proxy's X-Forwarded-For. Otherwise they are Unknown: identical peer
//     addresses are exactly what a proxy that is not configured (or sends no
//     X-Forwarded-For) shows for every client, so they prove nothing. Behind
//     a configured proxy, the same public address means the same NAT, which
//     is informative.
//   - Otherwise Same or Different by SameNetwork (same /24 or /64 and the
//     same kind of address; public addresses count, as some LANs use them).
func Network(desktop, phone Addr) Verdict {
	for _, a := range []Addr{desktop, phone} {
		if a.IP == nil || a.IP.IsUnspecified() || a.IP.IsLoopback() || a.Via == Proxy {
			return Unknown
		}
	}
	if desktop.IP.Equal(phone.IP) {
		if desktop.Via == Forwarded || phone.Via == Forwarded {
			return Same
		}
		return Unknown
	}
	if SameNetwork(desktop.IP, phone.IP) {
		return Same
	}
	return Different
}
