package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// dialConn opens the transport of ep: TCP, TLS over TCP, or a WebSocket
// (subprotocol "mqtt", binary frames) wrapped as a net.Conn.
func dialConn(ctx context.Context, ep endpoint, tlsCfg *tls.Config) (net.Conn, error) {
	var cfg *tls.Config
	if ep.scheme == "tls" || ep.scheme == "wss" {
		if tlsCfg != nil {
			cfg = tlsCfg.Clone()
		} else {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg.ServerName = ep.host
		}
	}
	switch ep.scheme {
	case "tcp":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ep.addr)
	case "tls":
		d := tls.Dialer{Config: cfg}
		return d.DialContext(ctx, "tcp", ep.addr)
	}
	tr := &http.Transport{TLSClientConfig: cfg, Proxy: nil}
	defer tr.CloseIdleConnections()
	ws, resp, err := websocket.Dial(ctx, ep.url, &websocket.DialOptions{
		Subprotocols: []string{"mqtt"},
		HTTPClient:   &http.Client{Transport: tr},
	})
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", ep.url, err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
		return nil, fmt.Errorf("websocket %s: server did not accept subprotocol \"mqtt\"", ep.url)
	}
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}
