package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPlainAccept(t *testing.T) {
	var logs logBuf
	l := open(t, Config{}, &logs, options{})
	ch := acceptAsync(t, l)
	c := dialConnect(t, l)
	a := recv(t, ch)
	if a.err != nil || !bytes.Equal(a.data, connectPacket) {
		t.Fatalf("broker read %x, %v; want the CONNECT bytes", a.data, a.err)
	}
	if a.conn.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("RemoteAddr %v, want %v", a.conn.RemoteAddr(), c.LocalAddr())
	}
	if _, ok := PeerIdentity(a.conn); ok {
		t.Fatal("PeerIdentity ok on a plain connection")
	}
}

// dialConnect connects to l and sends a CONNECT; the connection is
// closed when the test ends.
func dialConnect(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(connectPacket); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSClientOnPlainListener(t *testing.T) {
	var logs logBuf
	l := open(t, Config{}, &logs, options{})
	ch := acceptAsync(t, l)
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: "localhost"})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS handshake with a plain listener succeeded")
	}
	a := recv(t, ch)
	if !errors.Is(a.err, io.EOF) || len(a.data) != 0 {
		t.Fatalf("broker read %x, %v; want nothing and EOF", a.data, a.err)
	}
	logs.waitFor(t, "client "+raw.LocalAddr().String()+" sent a TLS handshake to the plain MQTT listener "+l.Addr().String(), "cause=tls-on-plain")
}

func TestHTTPClientOnPlainListener(t *testing.T) {
	var logs logBuf
	l := open(t, Config{}, &logs, options{})
	ch := acceptAsync(t, l)
	c, _ := net.Dial("tcp", l.Addr().String())
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
	if a := recv(t, ch); !errors.Is(a.err, io.EOF) {
		t.Fatalf("broker read %q, %v; want EOF", a.data, a.err)
	}
	logs.waitFor(t, "sent an HTTP request to the plain MQTT listener", "websocket: true")
}

func TestAcceptAfterClose(t *testing.T) {
	var logs logBuf
	l := open(t, Config{}, &logs, options{})
	done := make(chan error)
	go func() { _, err := l.Accept(); done <- err }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Fatal("closed listener still accepts TCP connections")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "address is empty"},
		{Config{Address: "1883"}, "missing port"},
		{Config{Address: ":0", ConnectRate: -1}, "connect_rate"},
		{Config{Address: ":0", TLS: &TLSConfig{CertFile: "c"}}, "cert_file and key_file"},
		{Config{Address: ":0", TLS: &TLSConfig{CertFile: "c", KeyFile: "k", RequireClientCert: true}}, "needs client_ca_file"},
		{Config{Address: ":0", TLS: &TLSConfig{CertFile: "c", KeyFile: "k", ClientCAFile: "a", UseIdentityAsUsername: true}}, "needs require_client_cert"},
	} {
		_, err := Listen(context.Background(), c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Listen(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

func TestConnectRate(t *testing.T) {
	var logs logBuf
	now := time.Unix(1000, 0)
	var clock = func() time.Time { return now } // frozen: no tokens come back during the test
	l := open(t, Config{ConnectRate: 2}, &logs, options{now: clock, logInterval: time.Hour})
	ch := acceptAsync(t, l)
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		c.Write(connectPacket)
	}
	// The burst (2) is accepted; the other three are closed by the listener.
	got := map[string]bool{}
	for range 2 {
		a := recv(t, ch)
		if a.err != nil {
			t.Fatalf("accepted connection read: %v", a.err)
		}
		got[a.conn.RemoteAddr().String()] = true
	}
	refused := 0
	for _, c := range conns {
		if got[c.LocalAddr().String()] {
			continue
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) || isReset(err) {
			refused++
		} else {
			t.Errorf("connection %v neither accepted nor closed: %v", c.LocalAddr(), err)
		}
	}
	if refused != 3 {
		t.Fatalf("%d connections refused, want 3", refused)
	}
	logs.waitFor(t, "accepts at most 2 new connections per second (connect_rate)", "cause=connect-rate")
	if n := logs.count("cause=connect-rate"); n != 1 {
		t.Fatalf("%d log lines for 3 refusals, want 1 before the summary:\n%s", n, logs.String())
	}
	l.refusals.flush()
	logs.waitFor(t, "2 more connections", "count=2", "cause=connect-rate")
	select {
	case a := <-ch:
		t.Fatalf("a refused connection reached the broker: %v", a.conn.RemoteAddr())
	default:
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestRateLimiterRefills(t *testing.T) {
	now := time.Unix(0, 0)
	r := newRateLimiter(0.5, func() time.Time { return now })
	if !r.allow() || r.allow() {
		t.Fatal("rate 0.5/s: want a burst of exactly 1")
	}
	now = now.Add(time.Second)
	if r.allow() {
		t.Fatal("token back after 1s at 0.5/s")
	}
	now = now.Add(time.Second)
	if !r.allow() {
		t.Fatal("no token after 2s at 0.5/s")
	}
	r = newRateLimiter(10, func() time.Time { return now })
	n := 0
	for r.allow() {
		n++
	}
	if n != 10 {
		t.Fatalf("rate 10/s burst %d, want 10", n)
	}
}

// Close waits for every goroutine the listener started, including
// handshakes in progress and connections nobody accepted.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	p := newTestPKI(t)
	before := runtime.NumGoroutine()
	var logs logBuf
	l, err := listen(context.Background(), Config{Address: "127.0.0.1:0", WebSocket: true, TLS: tlsFiles(t, p.server, nil, false)}, logs.logger(), options{})
	if err != nil {
		t.Fatal(err)
	}
	// One client stalls before its handshake; one finishes it but is never
	// accepted by a broker.
	stalled, _ := net.Dial("tcp", l.Addr().String())
	defer stalled.Close()
	c, err := dialTLS(t, l.Addr().String(), &tls.Config{RootCAs: p.ca.pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failOnce is a socket whose next Accept fails the way accept(2) does when
// the process is out of file descriptors.
type failOnce struct {
	net.Listener
	failed bool
}

func (f *failOnce) Accept() (net.Conn, error) {
	if !f.failed {
		f.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: f.Addr(), Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

// An accept that fails (EMFILE) is logged and retried; the broker's Accept
// still gets the next client.
func TestAcceptRetriesAfterError(t *testing.T) {
	var logs logBuf
	l := open(t, Config{}, &logs, options{})
	if !l.inline {
		t.Fatal("a plain listener should accept in the caller of Accept")
	}
	l.tcp = &failOnce{Listener: l.tcp}
	ch := acceptAsync(t, l)
	dialConnect(t, l)
	if a := recv(t, ch); a.err != nil || !bytes.Equal(a.data, connectPacket) {
		t.Fatalf("broker read %x, %v; want the CONNECT bytes after a failed accept", a.data, a.err)
	}
	logs.waitFor(t, "accept failed; retrying", "too many open files")
}
