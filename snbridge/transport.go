package snbridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Transport carries whole MQTT-SN messages to and from peers: a UDP
// socket (IPv4 or IPv6), or a serial line with SLIP framing. One read loop
// per transport calls ReadPacket; WritePacket may be called from any
// goroutine.
type Transport interface {
	// ReadPacket reads one message into buf and returns its size and sender.
	// It returns an error once Close was called.
	ReadPacket(buf []byte) (n int, from net.Addr, err error)
	// WritePacket sends one message to a peer.
	WritePacket(b []byte, to net.Addr) error
	// LocalAddr names the transport (for logs and session listener names).
	LocalAddr() net.Addr
	// Close stops the transport and unblocks ReadPacket.
	Close() error
}

// udpTransport is a UDP socket.
type udpTransport struct {
	c *net.UDPConn
}

// listenUDP opens network ("udp4" or "udp6") on addr with sized socket
// buffers, so that bursts from many nodes wait in the kernel rather than being
// dropped there.
func listenUDP(network, addr string, bufSize int) (*udpTransport, error) {
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, fmt.Errorf("resolve %s address %q: %w", network, addr, err)
	}
	c, err := net.ListenUDP(network, ua)
	if errors.Is(err, syscall.EADDRINUSE) {
		// net's error already reads "listen udp4 ADDR: bind: address already in use".
		return nil, fmt.Errorf("%w (another MQTT-SN gateway, such as mosquitto.rsmb or a second outpost, holds the port: stop it or change the address)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, addr, err)
	}
	// Best effort: the kernel caps these at net.core.rmem_max/wmem_max.
	_ = c.SetReadBuffer(bufSize)
	_ = c.SetWriteBuffer(bufSize)
	return &udpTransport{c: c}, nil
}

func (u *udpTransport) ReadPacket(buf []byte) (int, net.Addr, error) {
	n, ap, err := u.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return 0, nil, err
	}
	return n, udpAddr(ap), nil
}

func (u *udpTransport) WritePacket(b []byte, to net.Addr) error {
	var ap netip.AddrPort
	switch a := to.(type) {
	case udpAddr:
		ap = netip.AddrPort(a)
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return fmt.Errorf("udp write to %v: not a UDP address", to)
	}
	_, err := u.c.WriteToUDPAddrPort(b, ap)
	return err
}

func (u *udpTransport) LocalAddr() net.Addr { return u.c.LocalAddr() }
func (u *udpTransport) Close() error        { return u.c.Close() }

// udpAddr is a comparable, allocation-free net.Addr for a UDP peer.
type udpAddr netip.AddrPort

func (a udpAddr) Network() string { return "udp" }
func (a udpAddr) String() string  { return netip.AddrPort(a).String() }
