//go:build !unix

package snbridge

// readBuffer is unknown on this platform.
func (u *udpTransport) readBuffer() int { return 0 }
