package test

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
	"testing"
	"time"
)

// testCA is a certificate authority made for one test, with its
// certificate written to <dir>/<name>-ca.crt.
type testCA struct {
	t      testing.TB
	dir    string
	name   string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	File   string // PEM certificate of the CA
	serial int64
}

// certFiles is an issued certificate and its key as PEM files.
type certFiles struct {
	Cert, Key string
	Serial    *big.Int
	CN        string
}

// certSpec says what to put in a leaf certificate.
type certSpec struct {
	CN        string
	DNS       []string
	IPs       []net.IP
	Client    bool // client authentication (else server)
	NotBefore time.Time
	NotAfter  time.Time // zero: a year from now
}

// newTestCA makes a P-256 CA valid from an hour ago for ten years and
// writes its certificate into dir.
func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA", Organization: []string{"Outpost tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: dir, name: name, cert: cert, key: key, File: filepath.Join(dir, name+"-ca.crt"), serial: 100}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// issue signs a leaf certificate and writes <dir>/<file>.crt and .key.
// Serial numbers count up from 101 per CA, so a reissued certificate is
// told apart by its serial.
func (ca *testCA) issue(file string, s certSpec) certFiles {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	if s.NotBefore.IsZero() {
		s.NotBefore = time.Now().Add(-time.Hour)
	}
	if s.NotAfter.IsZero() {
		s.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	usage := x509.ExtKeyUsageServerAuth
	if s.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: s.CN, Organization: []string{"Outpost tests"}},
		DNSNames:     s.DNS,
		IPAddresses:  s.IPs,
		NotBefore:    s.NotBefore,
		NotAfter:     s.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := certFiles{Cert: filepath.Join(ca.dir, file+".crt"), Key: filepath.Join(ca.dir, file+".key"),
		Serial: tmpl.SerialNumber, CN: s.CN}
	writePEM(t, f.Cert, "CERTIFICATE", der)
	writePEM(t, f.Key, "PRIVATE KEY", kder)
	return f
}

// server issues a server certificate for 127.0.0.1 and localhost.
func (ca *testCA) server(file string) certFiles {
	return ca.issue(file, certSpec{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

// client issues a client certificate with common name cn.
func (ca *testCA) client(file, cn string) certFiles {
	return ca.issue(file, certSpec{CN: cn, Client: true})
}

// pool is a cert pool holding only this CA.
func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// tlsConfig is a client tls.Config trusting ca, with the client
// certificate cf if its files are set.
func (ca *testCA) tlsConfig(cf certFiles) *tls.Config {
	c := &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if cf.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
		if err != nil {
			ca.t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c
}

// testPKI is the set of files the security tests use, all in one
// t.TempDir(): a CA with a server certificate (127.0.0.1, localhost), a
// client certificate (CN sensor-7), an expired server certificate, one
// for the wrong host, and a second, unknown CA with a server and a client
// certificate of its own.
type testPKI struct {
	Dir         string
	CA, Other   *testCA
	Server      certFiles
	Client      certFiles
	Expired     certFiles
	WrongHost   certFiles
	OtherServer certFiles // signed by the unknown CA
	OtherClient certFiles // signed by the unknown CA, CN sensor-7
	ExpiredClnt certFiles // signed by CA, expired
	ClientCN    string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{Dir: dir, ClientCN: "sensor-7"}
	p.CA = newTestCA(t, dir, "outpost")
	p.Other = newTestCA(t, dir, "unknown")
	p.Server = p.CA.server("server")
	p.Client = p.CA.client("client", p.ClientCN)
	p.Expired = p.CA.issue("expired", certSpec{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-60 * 24 * time.Hour), NotAfter: time.Now().Add(-30 * 24 * time.Hour)})
	p.WrongHost = p.CA.issue("wronghost", certSpec{CN: "broker.example.com", DNS: []string{"broker.example.com"}})
	p.OtherServer = p.Other.server("other-server")
	p.OtherClient = p.Other.client("other-client", p.ClientCN)
	p.ExpiredClnt = p.CA.issue("expired-client", certSpec{CN: "old-sensor", Client: true,
		NotBefore: time.Now().Add(-60 * 24 * time.Hour), NotAfter: time.Now().Add(-30 * 24 * time.Hour)})
	return p
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
