//go:build unix

package snbridge

import "syscall"

// readBuffer returns the socket's effective receive buffer (Linux reports
// twice the usable size), or 0 if unknown.
func (u *udpTransport) readBuffer() int {
	rc, err := u.c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return n
}
