package lanaddr_test

import (
	"net"
	"testing"

	"github.com/qrlogin/qrlogin/server/lanaddr"
)

const up = net.FlagUp | net.FlagBroadcast | net.FlagMulticast | net.FlagRunning

func ips(ss ...string) []net.IP {
	out := make([]net.IP, len(ss))
	for i, s := range ss {
		out[i] = net.ParseIP(s)
		if out[i] == nil {
			panic("bad IP in test: " + s)
		}
	}
	return out
}

var lo = lanaddr.Interface{Name: "lo", Flags: net.FlagUp | net.FlagLoopback | net.FlagRunning, Addrs: ips("127.0.0.1", "::1")}

func TestDetect(t *testing.T) {
	tests := []struct {
		name         string
		ifaces       []lanaddr.Interface
		want         string
		loopbackOnly bool
	}{
		{name: "no interfaces", want: "127.0.0.1", loopbackOnly: true},
		{name: "loopback only", ifaces: []lanaddr.Interface{lo}, want: "127.0.0.1", loopbackOnly: true},
		{
			name:   "home wifi",
			ifaces: []lanaddr.Interface{lo, {Name: "wlan0", Flags: up, Addrs: ips("192.168.1.23", "fe80::1")}},
			want:   "192.168.1.23",
		},
		{
			name:   "public address is fine when it is all there is",
			ifaces: []lanaddr.Interface{lo, {Name: "eth0", Flags: up, Addrs: ips("203.0.113.7")}},
			want:   "203.0.113.7",
		},
		{
			name: "private preferred over public",
			ifaces: []lanaddr.Interface{lo,
				{Name: "eth0", Flags: up, Addrs: ips("203.0.113.7")},
				{Name: "wlan0", Flags: up, Addrs: ips("10.1.2.3")}},
			want: "10.1.2.3",
		},
		{
			name: "first private wins",
			ifaces: []lanaddr.Interface{
				{Name: "eth0", Flags: up, Addrs: ips("172.16.5.5", "192.168.0.2")},
				{Name: "wlan0", Flags: up, Addrs: ips("10.0.0.9")}},
			want: "172.16.5.5",
		},
		{
			name:   "172.32 is not private",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: up, Addrs: ips("172.32.0.1", "172.31.255.1")}},
			want:   "172.31.255.1",
		},
		{
			name:   "down interface skipped",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: net.FlagBroadcast, Addrs: ips("192.168.1.2")}, {Name: "eth1", Flags: up, Addrs: ips("198.51.100.4")}},
			want:   "198.51.100.4",
		},
		{
			name:   "loopback flag skipped even with another address",
			ifaces: []lanaddr.Interface{{Name: "lo", Flags: net.FlagUp | net.FlagLoopback, Addrs: ips("192.168.1.2")}},
			want:   "127.0.0.1", loopbackOnly: true,
		},
		{
			name:   "loopback address on a normal interface skipped",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: up, Addrs: ips("127.0.1.1")}},
			want:   "127.0.0.1", loopbackOnly: true,
		},
		{
			name: "docker and friends skipped",
			ifaces: []lanaddr.Interface{lo,
				{Name: "docker0", Flags: up, Addrs: ips("172.17.0.1")},
				{Name: "br-3f2a1b", Flags: up, Addrs: ips("172.18.0.1")},
				{Name: "veth12ab", Flags: up, Addrs: ips("10.0.0.1")},
				{Name: "virbr0", Flags: up, Addrs: ips("192.168.122.1")},
				{Name: "cni0", Flags: up, Addrs: ips("10.88.0.1")},
				{Name: "flannel.1", Flags: up, Addrs: ips("10.244.0.0")},
				{Name: "cali123", Flags: up, Addrs: ips("10.3.0.1")},
				{Name: "tun0", Flags: up, Addrs: ips("10.8.0.2")},
				{Name: "tap0", Flags: up, Addrs: ips("10.9.0.2")},
				{Name: "wg0", Flags: up, Addrs: ips("10.10.0.2")},
				{Name: "tailscale0", Flags: up, Addrs: ips("100.101.102.103")},
				{Name: "vboxnet0", Flags: up, Addrs: ips("192.168.56.1")},
				{Name: "eth0", Flags: up, Addrs: ips("203.0.113.50")}},
			want: "203.0.113.50",
		},
		{
			name:   "only virtual interfaces means loopback",
			ifaces: []lanaddr.Interface{lo, {Name: "docker0", Flags: up, Addrs: ips("172.17.0.1")}},
			want:   "127.0.0.1", loopbackOnly: true,
		},
		{
			name:   "a LAN bridge like br0 is kept",
			ifaces: []lanaddr.Interface{{Name: "br0", Flags: up, Addrs: ips("192.168.1.10")}},
			want:   "192.168.1.10",
		},
		{
			name:   "link-local skipped",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: up, Addrs: ips("169.254.10.20")}, {Name: "eth1", Flags: up, Addrs: ips("198.51.100.4")}},
			want:   "198.51.100.4",
		},
		{
			name:   "IPv6 only means loopback",
			ifaces: []lanaddr.Interface{lo, {Name: "eth0", Flags: up, Addrs: ips("2001:db8::5", "fd00::5", "fe80::5")}},
			want:   "127.0.0.1", loopbackOnly: true,
		},
		{
			name:   "IPv4-mapped IPv6 is IPv4",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: up, Addrs: ips("::ffff:192.168.7.7")}},
			want:   "192.168.7.7",
		},
		{
			name:   "unspecified, multicast and broadcast skipped",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: up, Addrs: ips("0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1")}},
			want:   "192.0.2.1",
		},
		{
			name:   "nil address skipped",
			ifaces: []lanaddr.Interface{{Name: "eth0", Flags: up, Addrs: []net.IP{nil, net.ParseIP("192.168.3.3")}}},
			want:   "192.168.3.3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, loopbackOnly := lanaddr.Detect(tt.ifaces)
			if ip.String() != tt.want || loopbackOnly != tt.loopbackOnly {
				t.Errorf("Detect = %v, %v; want %s, %v", ip, loopbackOnly, tt.want, tt.loopbackOnly)
			}
			if len(ip) != net.IPv4len {
				t.Errorf("Detect returned a %d-byte IP, want 4", len(ip))
			}
		})
	}
}

// TestDetectSystem runs against this machine, so it can only check what
// holds everywhere: an IPv4 address that loopbackOnly describes truly.
func TestDetectSystem(t *testing.T) {
	ip, loopbackOnly, err := lanaddr.DetectSystem()
	if err != nil {
		t.Fatal(err)
	}
	if ip.To4() == nil {
		t.Fatalf("DetectSystem = %v, not IPv4", ip)
	}
	if loopbackOnly != ip.IsLoopback() {
		t.Errorf("DetectSystem = %v, loopbackOnly %v", ip, loopbackOnly)
	}
	t.Logf("DetectSystem = %v, loopbackOnly %v", ip, loopbackOnly)
}

func TestSameNetwork(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"192.168.1.10", "192.168.1.200", true},
		{"192.168.1.10", "192.168.1.10", true},
		{"192.168.1.10", "192.168.2.10", false},
		{"10.0.0.1", "10.0.0.254", true},
		{"10.0.0.1", "10.0.1.1", false},
		{"203.0.113.5", "203.0.113.99", true},
		{"203.0.113.5", "198.51.100.5", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "192.168.1.10", false},
		{"192.168.1.10", "8.8.8.8", false},
		{"10.0.0.1", "11.0.0.1", false},
		{"172.31.255.1", "172.32.0.1", false},
		{"169.254.1.1", "169.254.1.2", true},
		{"169.254.1.1", "192.168.1.1", false},
		{"::ffff:192.168.1.10", "192.168.1.20", true},
		{"::ffff:192.168.1.10", "::ffff:192.168.1.30", true},
		{"::ffff:192.168.1.10", "192.168.9.20", false},
		{"2001:db8:1:2::a", "2001:db8:1:2:ffff::1", true},
		{"2001:db8:1:2::a", "2001:db8:1:3::a", false},
		{"fd00:1:2:3::1", "fd00:1:2:3::2", true},
		{"fd00:1:2:3::1", "2001:db8:1:2::a", false},
		{"::1", "::1", true},
		{"::1", "2001:db8::1", false},
		{"fe80::1", "fe80::2", true},
		{"192.168.1.10", "2001:db8::1", false},
		{"::ffff:192.168.1.10", "::ffff:c0a8:10a:1:2", false},
	}
	for _, tt := range tests {
		a, b := net.ParseIP(tt.a), net.ParseIP(tt.b)
		if a == nil || b == nil {
			t.Fatalf("bad test IPs %q %q", tt.a, tt.b)
		}
		if got := lanaddr.SameNetwork(a, b); got != tt.want {
			t.Errorf("SameNetwork(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := lanaddr.SameNetwork(b, a); got != tt.want {
			t.Errorf("SameNetwork(%s, %s) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
		}
	}
	for _, ip := range []net.IP{nil, {1, 2, 3}} {
		if lanaddr.SameNetwork(ip, net.ParseIP("192.168.1.1")) || lanaddr.SameNetwork(ip, ip) {
			t.Errorf("SameNetwork with invalid IP %v = true", ip)
		}
	}
}

func TestNetwork(t *testing.T) {
	peer := func(ip string) lanaddr.Addr { return lanaddr.Addr{IP: net.ParseIP(ip), Via: lanaddr.Peer} }
	fwd := func(ip string) lanaddr.Addr { return lanaddr.Addr{IP: net.ParseIP(ip), Via: lanaddr.Forwarded} }
	proxy := func(ip string) lanaddr.Addr { return lanaddr.Addr{IP: net.ParseIP(ip), Via: lanaddr.Proxy} }
	tests := []struct {
		name           string
		desktop, phone lanaddr.Addr
		want           lanaddr.Verdict
	}{
		{"same wifi", peer("192.168.1.20"), peer("192.168.1.31"), lanaddr.Same},
		{"other network", peer("192.168.1.20"), peer("10.0.0.5"), lanaddr.Different},
		{"public addresses on one LAN", peer("203.0.113.7"), peer("203.0.113.9"), lanaddr.Same},
		{"public and private never match", peer("10.0.0.7"), peer("203.0.113.9"), lanaddr.Different},
		{"far away, through a trusted proxy", fwd("203.0.113.7"), fwd("198.51.100.9"), lanaddr.Different},
		{"same IPv6 /64", peer("2001:db8:1:2::10"), peer("2001:db8:1:2::99"), lanaddr.Same},
		{"other IPv6 /64", peer("2001:db8:1:2::10"), peer("2001:db8:1:3::10"), lanaddr.Different},
		{"IPv4 and IPv6", peer("192.168.1.20"), peer("2001:db8::1"), lanaddr.Different},

		{"both loopback", peer("127.0.0.1"), peer("127.0.0.1"), lanaddr.Unknown},
		{"desktop on loopback", peer("127.0.0.1"), peer("192.168.1.31"), lanaddr.Unknown},
		{"phone on IPv6 loopback", peer("192.168.1.20"), peer("::1"), lanaddr.Unknown},
		{"IPv4-mapped loopback", peer("::ffff:127.0.0.1"), peer("192.168.1.31"), lanaddr.Unknown},
		{"unspecified", peer("0.0.0.0"), peer("192.168.1.31"), lanaddr.Unknown},
		{"missing desktop address", peer(""), peer("192.168.1.31"), lanaddr.Unknown},
		{"unparseable phone address", peer("192.168.1.20"), peer("nonsense"), lanaddr.Unknown},
		{"phone seen as a proxy", peer("192.168.1.20"), proxy("192.168.1.1"), lanaddr.Unknown},
		{"desktop seen as a proxy", proxy("10.0.0.2"), fwd("10.0.0.9"), lanaddr.Unknown},
		{"identical peers: an unconfigured proxy looks like this", peer("198.51.100.4"), peer("198.51.100.4"), lanaddr.Unknown},
		{"identical, reported by a trusted proxy: one NAT", peer("198.51.100.4"), fwd("198.51.100.4"), lanaddr.Same},
		{"identical forwarded", fwd("2001:db8::5"), fwd("2001:db8::5"), lanaddr.Same},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lanaddr.Network(tt.desktop, tt.phone); got != tt.want {
				t.Errorf("Network(%v, %v) = %q, want %q", tt.desktop, tt.phone, got, tt.want)
			}
		})
	}
}
