package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files and as Go values.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	srvDER, srvKey := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, true)
	p.certFile = write("server.pem", "CERTIFICATE", srvDER)
	p.keyFile = write("server.key", "PRIVATE KEY", keyDER(srvKey))
	cliDER, cliKey := leaf(3, "outpost-client", x509.ExtKeyUsageClientAuth, false)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

// TestTLSAndWebSocket runs one mosquitto with four listeners: TLS with a
// required client certificate (mTLS), plain WebSocket, WebSocket over TLS,
// and checks a message goes through each, and that mTLS refuses a client
// without a certificate and one that does not trust the server.
func TestTLSAndWebSocket(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	files := mosquittotest.TLSFiles{CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile}
	mutual := files
	mutual.RequireCertificate = true
	b := startMosquitto(t, mosquittotest.Options{Listeners: []mosquittotest.Listener{
		{},
		{TLS: &mutual},
		{Lines: []string{"protocol websockets"}},
		{Lines: []string{"protocol websockets"}, TLS: &files},
	}})
	plain := "mqtt://" + b.Addr()
	mtls := "mqtts://" + b.AddrOf(1)
	ws := "ws://" + b.AddrOf(2) + "/mqtt"
	wss := "wss://" + b.AddrOf(3)

	var got collector
	sub := dial(t, Config{URL: plain, ClientID: "tls-sub", ProtocolVersion: packet.V5, CleanStart: true})
	if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: "secure/#", QoS: 1}}, got.handle); err != nil {
		t.Fatal(err)
	}
	withCert := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}
	n := 0
	for _, tc := range []struct {
		name string
		url  string
		tls  *tls.Config
		v    byte
	}{
		{"mTLS v3.1.1", mtls, withCert, packet.V311},
		{"mTLS v5", mtls, withCert, packet.V5},
		{"WebSocket v3.1.1", ws, nil, packet.V311},
		{"WebSocket v5", ws, nil, packet.V5},
		{"WebSocket TLS v5", wss, &tls.Config{RootCAs: pki.pool}, packet.V5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, Config{URL: tc.url, TLS: tc.tls, ClientID: "tls-pub", ProtocolVersion: tc.v, CleanStart: true})
			for q := byte(0); q <= 2; q++ {
				if err := c.Publish(ctxT(t), &Message{Topic: "secure/" + tc.name, QoS: q, Payload: []byte(tc.name)}); err != nil {
					t.Fatalf("Publish QoS %d: %v", q, err)
				}
			}
			n += 3
			msgs := got.waitN(t, n)
			if m := msgs[n-1]; m.Topic != "secure/"+tc.name || string(m.Payload) != tc.name {
				t.Errorf("got %q %q", m.Topic, m.Payload)
			}
			if err := c.Disconnect(ctxT(t)); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("mTLS without client certificate", func(t *testing.T) {
		c, err := Dial(ctxT(t), Config{URL: mtls, TLS: &tls.Config{RootCAs: pki.pool}, ClientID: "nocert", CleanStart: true})
		if err == nil {
			c.Close()
			t.Fatal("connected without a client certificate")
		}
	})
	t.Run("untrusted server", func(t *testing.T) {
		c, err := Dial(ctxT(t), Config{URL: mtls, TLS: &tls.Config{Certificates: []tls.Certificate{pki.client}}, ClientID: "untrusting", CleanStart: true})
		if err == nil {
			c.Close()
			t.Fatal("connected to a server signed by an unknown CA")
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %q does not say it is about the certificate", err)
		}
	})
}
