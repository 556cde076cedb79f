package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePKI writes a CA, a server certificate valid only for the name
// "broker.test" (not 127.0.0.1) and a client certificate into dir.
func writePKI(t *testing.T, dir, prefix string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: prefix + " CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, prefix+"-"+name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, dns []string) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: dns,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalPKCS8PrivateKey(k)
		return der, kd
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	sd, sk := leaf(2, x509.ExtKeyUsageServerAuth, []string{"broker.test"})
	cd, ck := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return ca, write("server.pem", "CERTIFICATE", sd), write("server.key", "PRIVATE KEY", sk),
		write("client.pem", "CERTIFICATE", cd), write("client.key", "PRIVATE KEY", ck)
}

// TestPubSubTLSFlags: --cafile/--cert/--key give mutual TLS; the broker's
// certificate names broker.test, so connecting to 127.0.0.1 needs
// --insecure, which (as in mosquitto) still checks the chain.
func TestPubSubTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca, sc, sk, cc, ck := writePKI(t, dir, "good")
	otherCA, _, _, _, _ := writePKI(t, dir, "other")
	port, _ := startTestMosquitto(t, "cafile "+ca, "certfile "+sc, "keyfile "+sk, "require_certificate true")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []string{"-h", "127.0.0.1", "-p", port, "--cert", cc, "--key", ck, "-t", "tls/x", "-q", "1"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }

	if _, _, err := runCmd(ctx, false, "", with("--cafile", ca, "-m", "a")...); err == nil {
		t.Error("connected although the certificate is for broker.test, not 127.0.0.1")
	}
	if _, _, err := runCmd(ctx, false, "", with("--cafile", otherCA, "--insecure", "-m", "a")...); err == nil {
		t.Error("--insecure accepted a certificate from an unknown CA")
	}
	if _, _, err := runCmd(ctx, false, "", "-h", "127.0.0.1", "-p", port, "--cafile", ca, "--insecure", "-t", "tls/x", "-m", "a"); err == nil {
		t.Error("connected without the client certificate the listener requires")
	}
	if _, _, err := runCmd(ctx, false, "", with("--cafile", ca, "--insecure", "-m", "over tls", "-r")...); err != nil {
		t.Fatalf("pub --insecure: %v", err)
	}
	out, _, err := runCmd(ctx, true, "", with("--cafile", ca, "--insecure", "-C", "1", "-v")...)
	if err != nil || out != "tls/x over tls\n" {
		t.Fatalf("sub over TLS: %q %v", out, err)
	}
}
