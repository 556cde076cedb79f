package listener

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// sniffConn wraps a connection accepted on a plain (non-TLS) listener and
// looks at the first byte the client sends, without consuming it: a TLS
// ClientHello starts with record type 0x16 (handshake), which is never a
// valid first byte of MQTT (packet type 1 with flags 0110; CONNECT's flags
// must be 0000 [MQTT-2.2.2-2]). Such a connection is logged once and
// closed; the broker's Read sees io.EOF.
type sniffConn struct {
	net.Conn
	l       *Listener
	checked bool // first byte seen; Read is only called by one goroutine
	ws      bool // the listener speaks HTTP (WebSocket), not MQTT
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.checked || n == 0 {
		return n, err
	}
	c.checked = true
	switch {
	case p[0] == 0x16:
		kind := "plain MQTT"
		if c.ws {
			kind = "plain WebSocket (ws://)"
		}
		c.l.refusals.report("tls-on-plain", c.RemoteAddr().String(), fmt.Sprintf(
			"client %s sent a TLS handshake to the %s listener %s; use a TLS listener (mosquitto's default port is 8883, wss:// for WebSocket) or turn TLS off in the client",
			c.RemoteAddr(), kind, c.l.addr))
		c.Conn.Close()
		return 0, io.EOF
	case !c.ws && n >= 4 && (string(p[:4]) == "GET " || string(p[:4]) == "POST"):
		c.l.refusals.report("http-on-mqtt", c.RemoteAddr().String(), fmt.Sprintf(
			"client %s sent an HTTP request to the plain MQTT listener %s; use a WebSocket listener (websocket: true) for ws:// clients",
			c.RemoteAddr(), c.l.addr))
		c.Conn.Close()
		return 0, io.EOF
	}
	return n, err
}

// SyscallConn gives the broker the socket to park an idle connection on
// (brokercore's poller) once the first bytes have been checked: reads
// that bypass Read from then on skip nothing.
func (c *sniffConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok || !c.checked {
		return nil, errors.New("listener: no socket to park on before the first bytes")
	}
	return sc.SyscallConn()
}

// SetKeepAliveConfig sets TCP keep-alive probes on the socket.
func (c *sniffConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		return tc.SetKeepAliveConfig(cfg)
	}
	return nil
}
