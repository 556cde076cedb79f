package snbridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// dtlsPort is the UDP address of env's DTLS transport.
func (e *env) dtlsPort(t *testing.T) *net.UDPAddr {
	t.Helper()
	for _, tr := range e.g.trs {
		if d, ok := tr.t.(*dtlsTransport); ok {
			return d.ln.Addr().(*net.UDPAddr)
		}
	}
	t.Fatal("gateway has no DTLS transport")
	return nil
}

// dialDTLS completes a DTLS handshake with the gateway within timeout and
// returns an MQTT-SN client over the session. (A wrong PSK fails only by
// timeout: the gateway discards the Finished it cannot decrypt, as RFC
// 6347 section 4.1.2.7 allows.)
func dialDTLS(t *testing.T, addr *net.UDPAddr, timeout time.Duration, opts ...dtls.ClientOption) (*sntest.Client, error) {
	t.Helper()
	c, err := dtls.DialWithOptions("udp", addr, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	sc := sntest.NewClient(c, sntest.Options{Timeout: 3 * time.Second})
	t.Cleanup(func() { sc.Close() })
	return sc, nil
}

// connectDTLS handshakes, connects as client id and checks the broker
// session got username user (the node's DTLS identity).
func (e *env) connectDTLS(t *testing.T, port *net.UDPAddr, id, user string, opts ...dtls.ClientOption) *sntest.Client {
	t.Helper()
	c, err := dialDTLS(t, port, 5*time.Second, opts...)
	if err != nil {
		t.Fatalf("handshake as %s: %v", user, err)
	}
	if rc, err := c.Connect(sntest.ConnectOptions{ClientID: id, CleanSession: true, KeepAlive: 60}); err != nil || rc != 0 {
		t.Fatalf("connect %s over DTLS: rc %v err %v", id, rc, err)
	}
	if s := e.b.Session(id); s == nil || s.Options().Username != user {
		t.Fatalf("session of %s: %+v, want username %s (its DTLS identity)", id, s, user)
	}
	return c
}

func pskClient(identity, hexKey string) []dtls.ClientOption {
	return []dtls.ClientOption{
		dtls.WithPSK(func([]byte) ([]byte, error) { return hex.DecodeString(hexKey) }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8),
	}
}

func writeTestFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDTLSPSK: a node with a key from the psk_file (mosquitto's format)
// connects over DTLS, publishes QoS 1 and gets its subscription's
// messages; its broker session carries its PSK identity as username. A
// wrong key and an unknown identity fail the handshake, logged.
func TestDTLSPSK(t *testing.T) {
	psk := writeTestFile(t, "psk", "# nodes\nnode-7:00112233445566778899aabbccddeeff\n\nnode-8:0badc0de0badc0de\n")
	e := start(t, func(c *Config) {
		c.DTLS = &DTLSConfig{Listen: "127.0.0.1:0", PSKFile: psk, PSKHint: "outpost", UseIdentityAsUsername: true}
	})
	port := e.dtlsPort(t)
	rec := e.record(t, "dtls/#", 1)

	c := e.connectDTLS(t, port, "n7", "node-7", pskClient("node-7", "00112233445566778899aabbccddeeff")...)
	id, rc, err := c.Register("dtls/n7/temp")
	if err != nil || rc != 0 {
		t.Fatalf("register: rc %v err %v", rc, err)
	}
	if rc, err := c.Publish(snpacket.TopicNormal, id, 1, false, []byte("21.5")); err != nil || rc != 0 {
		t.Fatalf("publish QoS 1: rc %v err %v", rc, err)
	}
	if got := rec.wait(t, 1); got[0].Topic != "dtls/n7/temp" || string(got[0].Payload) != "21.5" {
		t.Fatalf("broker got %+v", got)
	}
	// Gateway to client, through the session found by address.
	if _, err := c.Subscribe(snpacket.TopicNormal, "dtls/n7/cmd", 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Publish(context.Background(), msg.Message{Topic: "dtls/n7/cmd", Payload: []byte("open"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c.Messages():
		if m.Topic != "dtls/n7/cmd" || string(m.Payload) != "open" {
			t.Fatalf("client got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message delivered over DTLS")
	}

	if _, err := dialDTLS(t, port, time.Second, pskClient("node-7", "ffffffffffffffffffffffffffffffff")...); err == nil {
		t.Fatal("handshake with a wrong key succeeded")
	}
	if _, err := dialDTLS(t, port, 5*time.Second, pskClient("node-99", "00112233445566778899aabbccddeeff")...); err == nil {
		t.Fatal("handshake with an unknown identity succeeded")
	}
	eventually(t, "handshake failure logged", func() bool { return e.logs.count("mqtt-sn: dtls handshake failed") > 0 })

	// SIGHUP (Gateway.Reload) takes a node added to psk_file; a broken
	// file keeps the keys in use.
	if err := os.WriteFile(psk, []byte("node-7:00112233445566778899aabbccddeeff\nnode-99:a1a2a3a4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialDTLS(t, port, 5*time.Second, pskClient("node-99", "a1a2a3a4")...); err != nil {
		t.Fatalf("node added to psk_file, after Reload: %v", err)
	}
	if err := os.WriteFile(psk, []byte("node-7 no colon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(); err == nil || !strings.Contains(err.Error(), psk+":1") {
		t.Fatalf("Reload of a broken psk_file: %v, want an error naming %s:1", err, psk)
	}
	if _, err := dialDTLS(t, port, 5*time.Second, pskClient("node-99", "a1a2a3a4")...); err != nil {
		t.Fatalf("after a failed Reload the old keys must stay: %v", err)
	}
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate with common name cn, all PEM.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newDTLSPKI(t *testing.T, cn string) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, name string, ext x509.ExtKeyUsage, ips []net.IP) (certPEM, keyPEM []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{ext}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	}
	p := testPKI{caFile: filepath.Join(dir, "ca.crt"), certFile: filepath.Join(dir, "gw.crt"), keyFile: filepath.Join(dir, "gw.key"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	sc, sk := issue(2, "gateway", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	os.WriteFile(p.certFile, sc, 0o600)
	os.WriteFile(p.keyFile, sk, 0o600)
	cc, ck := issue(3, cn, x509.ExtKeyUsageClientAuth, nil)
	if p.client, err = tls.X509KeyPair(cc, ck); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDTLSCertificates: with require_client_cert, a node presenting a
// certificate from client_ca_file connects and its session's username is
// the certificate's common name; a node without one is refused.
func TestDTLSCertificates(t *testing.T) {
	pki := newDTLSPKI(t, "sensor-9")
	e := start(t, func(c *Config) {
		c.DTLS = &DTLSConfig{Listen: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile,
			ClientCAFile: pki.caFile, RequireClientCert: true, UseIdentityAsUsername: true}
	})
	port := e.dtlsPort(t)
	verify := []dtls.ClientOption{dtls.WithRootCAs(pki.pool), dtls.WithServerName("127.0.0.1")}
	e.connectDTLS(t, port, "s9", "sensor-9", append(verify, dtls.WithCertificates(pki.client))...)
	if _, err := dialDTLS(t, port, 5*time.Second, verify...); err == nil {
		t.Fatal("handshake without a client certificate succeeded with require_client_cert")
	}
	// Plain MQTT-SN to the DTLS port is not a handshake: nothing answers.
	plain, err := sntest.Dial(port.String(), sntest.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if rc, err := plain.Connect(sntest.ConnectOptions{ClientID: "plain", CleanSession: true, KeepAlive: 60}); err == nil {
		t.Fatalf("plain CONNECT on the DTLS port answered (rc %v)", rc)
	}
}

// TestDTLSClientCAReload: client_ca_file is read again on SIGHUP
// (Gateway.Reload) like the TCP listeners' CA file. Without
// require_client_cert a node may come without a certificate, but one from
// an unknown CA is refused; a broken CA file keeps the CAs in use.
func TestDTLSClientCAReload(t *testing.T) {
	pki := newDTLSPKI(t, "sensor-9")
	other := newDTLSPKI(t, "sensor-10") // a second CA and its node
	e := start(t, func(c *Config) {
		c.DTLS = &DTLSConfig{Listen: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile,
			ClientCAFile: pki.caFile}
	})
	port := e.dtlsPort(t)
	verify := []dtls.ClientOption{dtls.WithRootCAs(pki.pool), dtls.WithServerName("127.0.0.1")}
	withCert := func(c tls.Certificate) []dtls.ClientOption {
		return append(append([]dtls.ClientOption(nil), verify...), dtls.WithCertificates(c))
	}
	e.connectDTLS(t, port, "n0", "", verify...) // no certificate: allowed
	e.connectDTLS(t, port, "s9", "", withCert(pki.client)...)
	if _, err := dialDTLS(t, port, 5*time.Second, withCert(other.client)...); err == nil {
		t.Fatal("a certificate from a CA not in client_ca_file was accepted")
	}

	// The site moves its nodes to the second CA.
	ca2, err := os.ReadFile(other.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pki.caFile, ca2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	e.connectDTLS(t, port, "s10", "", withCert(other.client)...)
	if _, err := dialDTLS(t, port, 5*time.Second, withCert(pki.client)...); err == nil {
		t.Fatal("a certificate from the CA removed from client_ca_file was accepted after Reload")
	}

	// A broken CA file: Reload names it and the CAs in use stay.
	if err := os.WriteFile(pki.caFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.g.Reload(); err == nil || !strings.Contains(err.Error(), pki.caFile) {
		t.Fatalf("Reload of a broken client_ca_file: %v, want an error naming %s", err, pki.caFile)
	}
	e.connectDTLS(t, port, "s10b", "", withCert(other.client)...)
}

func TestDTLSConfigErrors(t *testing.T) {
	psk := writeTestFile(t, "psk", "a:00ff\n")
	for _, c := range []struct {
		cfg  DTLSConfig
		want string
	}{
		{DTLSConfig{PSKFile: psk}, "mqttsn.dtls.listen is required"},
		{DTLSConfig{Listen: ":1885"}, "set psk_file, or cert_file and key_file"},
		{DTLSConfig{Listen: ":1885", PSKFile: psk, CertFile: "c", KeyFile: "k"}, "not both"},
		{DTLSConfig{Listen: ":1885", CertFile: "c"}, "cert_file and key_file go together"},
		{DTLSConfig{Listen: ":1885", PSKFile: psk, RequireClientCert: true}, "apply to certificates"},
		{DTLSConfig{Listen: ":1885", CertFile: "c", KeyFile: "k", RequireClientCert: true}, "needs client_ca_file"},
		{DTLSConfig{Listen: ":1885", PSKFile: psk, IdleTimeout: -time.Second}, "must not be negative"},
		{DTLSConfig{Listen: ":1885", CertFile: "c", KeyFile: "k", ClientCAFile: "ca", UseIdentityAsUsername: true}, "needs require_client_cert"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	// New reports files it cannot use, naming them.
	for _, c := range []struct {
		dtls DTLSConfig
		want string
	}{
		{DTLSConfig{Listen: "127.0.0.1:0", CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key"}, "/nonexistent.crt"},
		{DTLSConfig{Listen: "127.0.0.1:0", PSKFile: "/nonexistent.psk"}, "/nonexistent.psk"},
	} {
		_, err := New(Config{Listen: "127.0.0.1:0", AdvertiseInterval: -1, DTLS: &c.dtls}, nil, nil)
		if err == nil {
			t.Errorf("%+v: no error", c.dtls)
		}
	}
}

func TestLoadPSKFile(t *testing.T) {
	keys, err := loadPSKFile(writeTestFile(t, "ok", "# comment\n node-1:0a0B \n\nnode-2:ff\n"))
	if err != nil || len(keys) != 2 || keys["node-1"][1] != 0x0b || keys["node-2"][0] != 0xff {
		t.Fatalf("keys %v err %v", keys, err)
	}
	for _, c := range []struct{ text, want string }{
		{"node-1\n", ":1: want identity:hexkey"},
		{"node-1:\n", `:1: identity "node-1" has no key`},
		{"ok:00\nnode-1:xyz\n", `:2: identity "node-1": key is not hexadecimal`},
		{"n:00\nn:01\n", `:2: identity "n" listed twice`},
		{"# only a comment\n", "no identity:key line"},
	} {
		_, err := loadPSKFile(writeTestFile(t, "bad", c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.text, err, c.want)
		}
	}
}
