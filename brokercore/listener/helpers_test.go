package listener

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pki is a test CA with helpers to issue certificates.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

type leaf struct {
	certPEM, keyPEM []byte
	pair            tls.Certificate
}

type leafOpts struct {
	cn      string
	hosts   []string // DNS names or IPs; none = client certificate
	expired bool
}

func (ca *pki) issue(t *testing.T, o leafOpts) leaf {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if o.expired {
		tmpl.NotBefore = time.Now().Add(-48 * time.Hour)
		tmpl.NotAfter = time.Now().Add(-24 * time.Hour)
	}
	if len(o.hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range o.hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	l := leaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	l.pair, err = tls.X509KeyPair(l.certPEM, l.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (ca *pki) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsFiles writes a server certificate and the client CA and returns the
// TLSConfig pointing at them.
func tlsFiles(t *testing.T, server leaf, clientCA *pki, require bool) *TLSConfig {
	t.Helper()
	dir := t.TempDir()
	c := &TLSConfig{
		CertFile: writeFile(t, dir, "server.crt", server.certPEM),
		KeyFile:  writeFile(t, dir, "server.key", server.keyPEM),
	}
	if clientCA != nil {
		c.ClientCAFile = writeFile(t, dir, "ca.crt", clientCA.pem)
		c.RequireClientCert = require
		c.UseIdentityAsUsername = require
	}
	return c
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls the log until every want appears in one line.
func (l *logBuf) waitFor(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(l.String(), "\n") {
			all := true
			for _, w := range want {
				if !strings.Contains(line, w) {
					all = false
					break
				}
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q; log:\n%s", want, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count returns how many log lines contain s.
func (l *logBuf) count(s string) int {
	return strings.Count(l.String(), s)
}

// open starts a listener on 127.0.0.1:0 and closes it at cleanup.
func open(t *testing.T, cfg Config, logs *logBuf, o options) *Listener {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	l, err := listen(context.Background(), cfg, logs.logger(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptAsync accepts connections in the background and, like a broker,
// reads from each; it returns a channel of accepted connections and the
// first bytes (or error) read from each.
type accepted struct {
	conn net.Conn
	data []byte
	err  error
}

func acceptAsync(t *testing.T, l net.Listener) <-chan accepted {
	t.Helper()
	ch := make(chan accepted, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64)
				n, err := c.Read(buf)
				c.SetReadDeadline(time.Time{})
				ch <- accepted{conn: c, data: buf[:n], err: err}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		close(ch)
		for a := range ch {
			a.conn.Close()
		}
	})
	return ch
}

func recv(t *testing.T, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted within 5s")
	}
	return accepted{}
}

// connectPacket is a minimal MQTT 3.1.1 CONNECT [MQTT-3.1].
var connectPacket = []byte{0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'}
