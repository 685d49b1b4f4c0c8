//go:build linux || darwin || freebsd || netbsd || openbsd

package park

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// alive peeks at the socket without blocking: end of stream or an error
// means the client has closed it.
func alive(nc net.Conn) bool {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := true
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
			// Open, nothing sent.
		case err != nil, n == 0:
			open = false
		}
		return true // never wait for data
	})
	return err == nil && open
}
