package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// testPKI is the set of certificates the TLS tests use.
type testPKI struct {
	ca, otherCA   *pki
	server        leaf // 127.0.0.1 and localhost
	serverExpired leaf
	client        leaf // CN device-42
	clientExpired leaf
	clientOtherCA leaf // signed by a CA the listener does not trust
}

func newTestPKI(t *testing.T) *testPKI {
	ca, other := newCA(t, "Outpost Test CA"), newCA(t, "Someone Else's CA")
	return &testPKI{
		ca: ca, otherCA: other,
		server:        ca.issue(t, leafOpts{cn: "hub", hosts: []string{"127.0.0.1", "localhost"}}),
		serverExpired: ca.issue(t, leafOpts{cn: "hub", hosts: []string{"127.0.0.1", "localhost"}, expired: true}),
		client:        ca.issue(t, leafOpts{cn: "device-42"}),
		clientExpired: ca.issue(t, leafOpts{cn: "device-old", expired: true}),
		clientOtherCA: other.issue(t, leafOpts{cn: "stranger"}),
	}
}

// dialTLS connects a Go TLS client, sends a CONNECT and returns the
// connection and the handshake (or first write) error.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	c := tls.Client(raw, cfg)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		return c, err
	}
	if _, err := c.Write(connectPacket); err != nil {
		return c, err
	}
	// In TLS 1.3 the server judges the client certificate after the client
	// finished; a refusal shows on the client's next read.
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	c.SetDeadline(time.Time{})
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		err = nil // nothing to read yet: still connected
	}
	return c, err
}

func TestTLSMutualAuth(t *testing.T) {
	p := newTestPKI(t)
	var logs logBuf
	l := open(t, Config{TLS: tlsFiles(t, p.server, p.ca, true)}, &logs, options{})
	ch := acceptAsync(t, l)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := dialTLS(t, l.Addr().String(), &tls.Config{
			RootCAs: p.ca.pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{p.client.pair},
			MinVersion: v, MaxVersion: v,
		})
		if err != nil {
			t.Fatalf("TLS %x: %v\n%s", v, err, logs.String())
		}
		a := recv(t, ch)
		if a.err != nil || !bytes.Equal(a.data, connectPacket) {
			t.Fatalf("broker read %x, %v", a.data, a.err)
		}
		tc, ok := a.conn.(*tls.Conn)
		if !ok {
			t.Fatalf("accepted %T, want *tls.Conn", a.conn)
		}
		if st := tc.ConnectionState(); !st.HandshakeComplete || st.Version != v {
			t.Fatalf("handshake complete %v version %x", st.HandshakeComplete, st.Version)
		}
		if cn, ok := PeerIdentity(a.conn); !ok || cn != "device-42" {
			t.Fatalf("PeerIdentity = %q, %v; want device-42", cn, ok)
		}
		// And back.
		a.conn.Write([]byte{0x20, 0x02, 0x00, 0x00})
		buf := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil || buf[0] != 0x20 {
			t.Fatalf("client read %x, %v", buf, err)
		}
	}
	// TLS 1.1 is refused.
	if _, err := dialTLS(t, l.Addr().String(), &tls.Config{RootCAs: p.ca.pool(), ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	logs.waitFor(t, "no TLS version or cipher we accept")
}

func TestPeerIdentityWithoutClientCert(t *testing.T) {
	p := newTestPKI(t)
	var logs logBuf
	// A client CA but no requirement: the certificate is optional.
	l := open(t, Config{TLS: tlsFiles(t, p.server, p.ca, false)}, &logs, options{})
	ch := acceptAsync(t, l)
	if _, err := dialTLS(t, l.Addr().String(), &tls.Config{RootCAs: p.ca.pool(), ServerName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	a := recv(t, ch)
	if cn, ok := PeerIdentity(a.conn); ok {
		t.Fatalf("PeerIdentity = %q, ok without a client certificate", cn)
	}
	if _, err := dialTLS(t, l.Addr().String(), &tls.Config{RootCAs: p.ca.pool(), ServerName: "localhost", Certificates: []tls.Certificate{p.client.pair}}); err != nil {
		t.Fatal(err)
	}
	if cn, ok := PeerIdentity(recv(t, ch).conn); !ok || cn != "device-42" {
		t.Fatalf("optional client certificate: PeerIdentity = %q, %v", cn, ok)
	}
}

// Each common mix-up gives one log line naming the client, the listener
// and the cause, and never reaches the broker.
func TestTLSMixupsAreExplained(t *testing.T) {
	p := newTestPKI(t)
	good := &tls.Config{RootCAs: p.ca.pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{p.client.pair}}
	with := func(f func(c *tls.Config)) *tls.Config { c := good.Clone(); f(c); return c }
	cases := []struct {
		name   string
		server leaf
		client func(t *testing.T, addr string) (local string)
		want   []string
	}{
		{"plain MQTT on TLS port", p.server, func(t *testing.T, addr string) string {
			c, _ := net.Dial("tcp", addr)
			t.Cleanup(func() { c.Close() })
			c.Write(connectPacket)
			return c.LocalAddr().String()
		}, []string{"sent plain MQTT (a CONNECT packet) instead of a TLS handshake", "cause=plain-on-tls"}},
		// A Go client sends "bad certificate" for an unknown CA and a wrong
		// host alike (OpenSSL clients send "unknown ca"); the log names both.
		{"client does not trust our CA", p.server, tlsClient(with(func(c *tls.Config) { c.RootCAs = p.otherCA.pool() })),
			[]string{"rejected our certificate", "does not trust the CA", "cause=server-cert-rejected"}},
		{"wrong host name", p.server, tlsClient(with(func(c *tls.Config) { c.ServerName = "mqtt.example.com" })),
			[]string{"rejected our certificate", "host name it connects to is not among the certificate's names [localhost 127.0.0.1]", "cause=server-cert-rejected"}},
		{"expired server certificate", p.serverExpired, tlsClient(good),
			[]string{"which has expired", "cause=server-cert-expired"}},
		{"missing client certificate", p.server, tlsClient(with(func(c *tls.Config) { c.Certificates = nil })),
			[]string{"sent no certificate but this listener requires one", "cause=client-cert-missing"}},
		{"client certificate from an unknown CA", p.server, tlsClient(with(func(c *tls.Config) { c.Certificates = nil; c.GetClientCertificate = sendCert(p.clientOtherCA) })),
			[]string{`stranger`, "is not signed by a CA in client_ca_file", "cause=client-cert-unknown-ca"}},
		{"expired client certificate", p.server, tlsClient(with(func(c *tls.Config) { c.Certificates = []tls.Certificate{p.clientExpired.pair} })),
			[]string{`device-old`, "is expired or not yet valid", "cause=client-cert-expired"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs logBuf
			l := open(t, Config{TLS: tlsFiles(t, c.server, p.ca, true)}, &logs, options{})
			ch := acceptAsync(t, l)
			local := c.client(t, l.Addr().String())
			want := append([]string{"client " + local + " on TLS listener " + l.Addr().String()}, c.want...)
			logs.waitFor(t, want...)
			l.Close()
			select {
			case a, ok := <-ch:
				if ok {
					t.Fatalf("a failed handshake reached the broker: %v", a.conn.RemoteAddr())
				}
			default:
			}
		})
	}
}

// sendCert makes a Go client send a certificate even if the server did not
// list its CA as acceptable (a misconfigured device would).
func sendCert(l leaf) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &l.pair, nil }
}

// tlsClient returns a client action that attempts a handshake with cfg.
func tlsClient(cfg *tls.Config) func(t *testing.T, addr string) string {
	return func(t *testing.T, addr string) string {
		c, err := dialTLS(t, addr, cfg)
		if err == nil {
			t.Errorf("handshake with %+v succeeded, want a failure", cfg.ServerName)
		}
		return c.LocalAddr().String()
	}
}

func TestHandshakeTimeout(t *testing.T) {
	p := newTestPKI(t)
	var logs logBuf
	l := open(t, Config{TLS: tlsFiles(t, p.server, nil, false)}, &logs, options{handshakeTimeout: 100 * time.Millisecond})
	c, _ := net.Dial("tcp", l.Addr().String())
	defer c.Close()
	logs.waitFor(t, "client "+c.LocalAddr().String(), "did not finish within 100ms", "cause=handshake-timeout")
}

func TestReload(t *testing.T) {
	ca := newCA(t, "CA")
	first := ca.issue(t, leafOpts{cn: "first", hosts: []string{"127.0.0.1"}})
	second := ca.issue(t, leafOpts{cn: "second", hosts: []string{"127.0.0.1"}})
	cfg := tlsFiles(t, first, nil, false)
	var logs logBuf
	l := open(t, Config{TLS: cfg}, &logs, options{})
	ch := acceptAsync(t, l)
	client := &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}
	serverCN := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].Subject.CommonName }

	old, err := dialTLS(t, l.Addr().String(), client)
	if err != nil || serverCN(old) != "first" {
		t.Fatalf("first: %v", err)
	}
	oldConn := recv(t, ch).conn

	os.WriteFile(cfg.CertFile, second.certPEM, 0o600)
	os.WriteFile(cfg.KeyFile, second.keyPEM, 0o600)
	var r Reloader = l
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "reloaded TLS certificates", "CN=second")
	c2, err := dialTLS(t, l.Addr().String(), client)
	if err != nil || serverCN(c2) != "second" {
		t.Fatalf("after reload the server still shows %q (%v)", serverCN(c2), err)
	}
	recv(t, ch)
	// The connection made before the reload is still alive.
	oldConn.Write([]byte{0xd0, 0x00})
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := old.Read(make([]byte, 2)); err != nil {
		t.Fatalf("connection from before the reload: %v", err)
	}

	// A broken file keeps the old certificate and names the file.
	os.WriteFile(cfg.CertFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), 0o600)
	err = l.Reload()
	if err == nil || !strings.Contains(err.Error(), cfg.CertFile) || !strings.Contains(err.Error(), "keeping the old certificates") {
		t.Fatalf("Reload with a broken cert file: %v", err)
	}
	c3, err := dialTLS(t, l.Addr().String(), client)
	if err != nil || serverCN(c3) != "second" {
		t.Fatalf("after a failed reload: %v", err)
	}
	recv(t, ch)
	// A key that does not match the certificate.
	os.WriteFile(cfg.CertFile, first.certPEM, 0o600)
	if err := l.Reload(); err == nil || !strings.Contains(err.Error(), cfg.KeyFile) {
		t.Fatalf("Reload with a mismatched key: %v", err)
	}
}

func TestListenBadFiles(t *testing.T) {
	p := newTestPKI(t)
	dir := t.TempDir()
	good := tlsFiles(t, p.server, p.ca, true)
	garbage := writeFile(t, dir, "garbage.pem", []byte("hello\n"))
	badDER := writeFile(t, dir, "bad.crt", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	for _, c := range []struct {
		name string
		edit func(c *TLSConfig)
		file func(c *TLSConfig) string
		want string
	}{
		{"cert not PEM", func(c *TLSConfig) { c.CertFile = garbage }, func(c *TLSConfig) string { return c.CertFile }, "no PEM certificate found"},
		{"cert does not parse", func(c *TLSConfig) { c.CertFile = badDER }, func(c *TLSConfig) string { return c.CertFile }, "certificate 1 does not parse"},
		{"cert missing", func(c *TLSConfig) { c.CertFile = dir + "/nope.crt" }, func(c *TLSConfig) string { return c.CertFile }, "no such file"},
		{"key not PEM", func(c *TLSConfig) { c.KeyFile = garbage }, func(c *TLSConfig) string { return c.KeyFile }, "no PEM private key"},
		{"key of another cert", func(c *TLSConfig) { c.KeyFile = writeFile(t, dir, "other.key", p.client.keyPEM) }, func(c *TLSConfig) string { return c.KeyFile }, "private key does not match"},
		{"CA not PEM", func(c *TLSConfig) { c.ClientCAFile = garbage }, func(c *TLSConfig) string { return c.ClientCAFile }, "no PEM certificate found"},
	} {
		cfg := *good
		c.edit(&cfg)
		_, err := Listen(context.Background(), Config{Address: "127.0.0.1:0", TLS: &cfg}, nil)
		if err == nil || !strings.Contains(err.Error(), c.file(&cfg)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Listen = %v; want the file %s and %q", c.name, err, c.file(&cfg), c.want)
		}
	}
}

func TestExpiredServerCertWarnsAtStart(t *testing.T) {
	p := newTestPKI(t)
	var logs logBuf
	cfg := tlsFiles(t, p.serverExpired, nil, false)
	open(t, Config{TLS: cfg}, &logs, options{})
	logs.waitFor(t, "level=ERROR", "server certificate "+cfg.CertFile+" expired on")
}
