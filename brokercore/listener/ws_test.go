package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func dialWS(t *testing.T, url string, opts *websocket.DialOptions) (net.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	t.Cleanup(func() { c.CloseNow() })
	return nc, resp, nil
}

func TestWebSocketAccept(t *testing.T) {
	var logs logBuf
	l := open(t, Config{WebSocket: true}, &logs, options{})
	ch := acceptAsync(t, l)
	c, resp, err := dialWS(t, "ws://"+l.Addr().String()+"/mqtt", &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "mqtt" {
		t.Fatalf("negotiated subprotocol %q, want mqtt", got)
	}
	// A CONNECT split over two frames arrives as one stream [MQTT-6.0.0-2].
	c.Write(connectPacket[:3])
	c.Write(connectPacket[3:])
	a := recv(t, ch)
	if a.err != nil {
		t.Fatal(a.err)
	}
	got := a.data
	if len(got) < len(connectPacket) {
		rest := make([]byte, len(connectPacket)-len(got))
		a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(a.conn, rest); err != nil {
			t.Fatal(err)
		}
		got = append(got, rest...)
	}
	if !bytes.Equal(got, connectPacket) {
		t.Fatalf("broker read %x, want the CONNECT", got)
	}
	if host, _, _ := net.SplitHostPort(a.conn.RemoteAddr().String()); host != "127.0.0.1" {
		t.Fatalf("RemoteAddr %v, want the client's address", a.conn.RemoteAddr())
	}
	a.conn.Write([]byte{0x20, 0x02, 0x00, 0x00})
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 0x20 {
		t.Fatalf("client read %x, %v", buf, err)
	}
	if _, ok := PeerIdentity(a.conn); ok {
		t.Fatal("PeerIdentity ok on plain ws")
	}
	// The broker closing the connection does not wait for the client.
	start := time.Now()
	a.conn.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("closing a WebSocket connection took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil || isTimeout(err) {
		t.Fatalf("client read after the broker closed: %v, want the connection closed", err)
	}
	// Old MQTT 3.1 browser clients ask for "mqttv3.1".
	c2, resp, err := dialWS(t, "ws://"+l.Addr().String()+"/", &websocket.DialOptions{Subprotocols: []string{"mqttv3.1"}})
	if err != nil || resp.Header.Get("Sec-WebSocket-Protocol") != "mqttv3.1" {
		t.Fatalf("mqttv3.1: %v", err)
	}
	c2.Write(connectPacket)
	if a := recv(t, ch); a.err != nil {
		t.Fatal(a.err)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	var logs logBuf
	l := open(t, Config{WebSocket: true}, &logs, options{})
	acceptAsync(t, l)
	url := "ws://" + l.Addr().String() + "/"

	_, resp, err := dialWS(t, url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no subprotocol: err %v, resp %v; want 400", err, resp)
	}
	logs.waitFor(t, "for no subprotocol", "Sec-WebSocket-Protocol: mqtt", "cause=ws-subprotocol", "listener="+l.Addr().String())

	_, resp, err = dialWS(t, url, &websocket.DialOptions{Subprotocols: []string{"graphql-ws"}})
	if err == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong subprotocol: err %v", err)
	}
	// Same cause in the same interval: counted, not logged again.
	if n := logs.count("cause=ws-subprotocol"); n != 1 {
		t.Fatalf("%d lines for the ws-subprotocol cause, want 1", n)
	}
	l.refusals.flush()
	logs.waitFor(t, "1 more connections", "cause=ws-subprotocol")

	r, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "MQTT over WebSocket") {
		t.Fatalf("plain GET: %d %q", r.StatusCode, body)
	}
	logs.waitFor(t, "sent a plain HTTP GET /", "cause=ws-not-upgrade")

	// A wss client on the plain ws listener.
	raw, _ := net.Dial("tcp", l.Addr().String())
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: "localhost"})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	tc.Handshake()
	logs.waitFor(t, "sent a TLS handshake to the plain WebSocket (ws://) listener")
}

func TestSecureWebSocketWithClientCert(t *testing.T) {
	p := newTestPKI(t)
	var logs logBuf
	l := open(t, Config{WebSocket: true, TLS: tlsFiles(t, p.server, p.ca, true)}, &logs, options{})
	ch := acceptAsync(t, l)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: p.ca.pool(), Certificates: []tls.Certificate{p.client.pair},
	}}}
	c, _, err := dialWS(t, "wss://localhost:"+portOf(l)+"/mqtt", &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPClient: client})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	c.Write(connectPacket)
	a := recv(t, ch)
	if a.err != nil {
		t.Fatal(a.err)
	}
	if cn, ok := PeerIdentity(a.conn); !ok || cn != "device-42" {
		t.Fatalf("PeerIdentity over wss = %q, %v; want device-42", cn, ok)
	}
	// Without a client certificate the handshake is refused and explained.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.pool()}}}
	if _, _, err := dialWS(t, "wss://localhost:"+portOf(l)+"/mqtt", &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPClient: noCert}); err == nil {
		t.Fatal("wss without a client certificate accepted")
	}
	logs.waitFor(t, "sent no certificate", "cause=client-cert-missing")
}

func portOf(l net.Listener) string {
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
