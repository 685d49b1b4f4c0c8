package lanaddr_test

import (
	"net"
	"testing"

	"github.com/qrlogin/qrlogin/server/lanaddr"
)

// FuzzSameNetwork: SameNetwork on the addresses of any two clients, as
// the server parses them from a request. It is symmetric, counts an
// IPv4-mapped IPv6 address as IPv4, and never matches a missing address.
func FuzzSameNetwork(f *testing.F) {
	for _, p := range [][2]string{
		{"192.168.1.10", "192.168.1.20"}, {"192.168.1.10", "192.168.2.10"}, {"10.0.0.1", "10.0.0.1"},
		{"127.0.0.1", "127.0.0.2"}, {"::1", "::1"}, {"2001:db8::1", "2001:db8::2"}, {"2001:db8::1", "2001:db8:0:1::1"},
		{"::ffff:192.168.1.10", "192.168.1.11"}, {"fe80::1", "fe80::2"}, {"169.254.1.1", "169.254.1.2"},
		{"0.0.0.0", "0.0.0.1"}, {"::", "::"}, {"", ""}, {"garbage", "192.168.1.1"}, {"8.8.8.8", "8.8.8.9"},
		{"172.16.0.1", "172.16.0.200"}, {"11.0.0.1", "10.0.0.1"}, {"fc00::1", "fc00::2"}, {"::192.168.1.1", "192.168.1.1"},
		{"64:ff9b::c0a8:10a", "192.168.1.10"}, {"fe80::1%eth0", "fe80::1"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, as, bs string) {
		a, b := net.ParseIP(as), net.ParseIP(bs)
		same := lanaddr.SameNetwork(a, b)
		if same != lanaddr.SameNetwork(b, a) {
			t.Fatalf("SameNetwork(%q, %q) = %v, but not the other way round", as, bs, same)
		}
		if same && (a == nil || b == nil) {
			t.Fatalf("SameNetwork(%q, %q) with a missing address", as, bs)
		}
		if same && (a.To4() == nil) != (b.To4() == nil) {
			t.Fatalf("SameNetwork(%q, %q): an IPv4 and an IPv6 address", as, bs)
		}
		// The 16-byte form of an IPv4 address is the same address.
		if a4 := a.To4(); a4 != nil && lanaddr.SameNetwork(a4, b) != same {
			t.Fatalf("SameNetwork(%q, %q) depends on the form of the IPv4 address", as, bs)
		}
	})
}
