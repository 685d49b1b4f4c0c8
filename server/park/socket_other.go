//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package park

import "net"

// alive cannot peek at sockets here; a client that has gone is found out
// when its answer fails to send.
func alive(net.Conn) bool { return true }
