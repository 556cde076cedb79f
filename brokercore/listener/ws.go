package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// MQTT over WebSocket (MQTT 5.0 section 6, 3.1.1 section 6): binary
// frames only [MQTT-6.0.0-1], packets may span frames [MQTT-6.0.0-2], and
// the subprotocol is "mqtt" [MQTT-6.0.0-3]. "mqttv3.1" is accepted too,
// as mosquitto does, for old MQTT 3.1 browser clients.
var wsSubprotocols = []string{"mqtt", "mqttv3.1"}

// chanListener is a net.Listener whose connections come from the
// listener's pipeline (after the rate limit and, for wss, the TLS
// handshake); http.Server serves it.
type chanListener struct {
	l    *Listener
	in   <-chan net.Conn
	once sync.Once
	done chan struct{}
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.in:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *chanListener) Addr() net.Addr { return c.l.tcp.Addr() }

// newWSServer is the HTTP server that upgrades requests on any path to
// MQTT connections handed to out.
func (l *Listener) newWSServer(out chan<- net.Conn) *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { l.serveWS(w, r, out) }),
		ReadHeaderTimeout: l.handshakeTimeout,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return l.ctx },
	}
}

func (l *Listener) serveWS(w http.ResponseWriter, r *http.Request, out chan<- net.Conn) {
	client := r.RemoteAddr
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		l.refusals.report("ws-not-upgrade", client, fmt.Sprintf(
			"client %s sent a plain HTTP %s %s to the MQTT-over-WebSocket listener %s; connect with an MQTT client to ws://host:port/ (wss:// with TLS)",
			client, r.Method, r.URL.Path, l.addr))
		http.Error(w, "this is an MQTT over WebSocket endpoint: connect with an MQTT client using subprotocol \"mqtt\"", http.StatusUpgradeRequired)
		return
	}
	offered := offeredSubprotocols(r)
	ok := false
	for _, p := range offered {
		for _, want := range wsSubprotocols {
			if p == want {
				ok = true
			}
		}
	}
	if !ok {
		what := "no subprotocol"
		if len(offered) > 0 {
			what = fmt.Sprintf("subprotocol %q", strings.Join(offered, ", "))
		}
		l.refusals.report("ws-subprotocol", client, fmt.Sprintf(
			"client %s asked the MQTT-over-WebSocket listener %s for %s; MQTT needs Sec-WebSocket-Protocol: mqtt [MQTT-6.0.0-3]",
			client, l.addr, what))
		http.Error(w, fmt.Sprintf("WebSocket subprotocol \"mqtt\" required (Sec-WebSocket-Protocol: mqtt), got %s", what), http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: wsSubprotocols,
		// MQTT authenticates in CONNECT, not with cookies, so a page from
		// any origin may connect, as with mosquitto.
		InsecureSkipVerify: true,
	})
	if err != nil {
		l.refusals.report("ws-upgrade", client, fmt.Sprintf("client %s: WebSocket upgrade on listener %s failed: %v", client, l.addr, err))
		return
	}
	// The connection is hijacked: it outlives this handler and is closed by
	// the broker, so it gets a context that is never cancelled.
	nc := &wsConn{Conn: websocket.NetConn(context.Background(), c, websocket.MessageBinary), ws: c, tls: r.TLS}
	select {
	case out <- nc:
	case <-l.ctx.Done():
		nc.Close()
	}
}

func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// wsConn is an MQTT connection over WebSocket; over wss it carries the
// TLS state for PeerIdentity.
type wsConn struct {
	net.Conn
	ws  *websocket.Conn
	tls *tls.ConnectionState
}

// Close drops the connection at once. The WebSocket close handshake would
// wait up to 5 seconds for the client's reply, stalling whoever closes;
// for MQTT the DISCONNECT packet is the goodbye, so none is needed.
func (c *wsConn) Close() error {
	return c.ws.CloseNow()
}

// TLSConnectionState returns the TLS state under the WebSocket, if any.
func (c *wsConn) TLSConnectionState() (tls.ConnectionState, bool) {
	if c.tls == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tls, true
}

// shutdownWS stops the HTTP server; hijacked (upgraded) connections are
// not affected.
func shutdownWS(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.Shutdown(ctx) != nil {
		s.Close()
	}
}
