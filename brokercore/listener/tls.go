package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// tlsState is what Reload swaps: the server certificate and the pool of
// CAs trusted for client certificates.
type tlsState struct {
	cert      *tls.Certificate
	leaf      *x509.Certificate
	clientCAs *x509.CertPool // nil without client_ca_file
}

// certHolder serves the current tlsState to every new handshake
// (GetConfigForClient), so a reload takes effect for the next client and
// never touches established connections.
type certHolder struct {
	cfg   TLSConfig
	state atomic.Pointer[tlsState]
}

func (cfg *TLSConfig) validate() error {
	switch {
	case cfg.CertFile == "" || cfg.KeyFile == "":
		return errors.New("tls needs cert_file and key_file")
	case cfg.RequireClientCert && cfg.ClientCAFile == "":
		return errors.New("tls.require_client_cert needs client_ca_file (the CA that signs client certificates)")
	case cfg.UseIdentityAsUsername && !cfg.RequireClientCert:
		return errors.New("tls.use_identity_as_username needs require_client_cert: true (as mosquitto's require_certificate)")
	}
	return nil
}

// loadTLSState reads and checks the files; errors name the file and the
// problem.
func loadTLSState(cfg TLSConfig) (*tlsState, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file: %w", err)
	}
	leaf, err := firstCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s: %w", cfg.CertFile, err)
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("key_file %s: no PEM private key found", cfg.KeyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key_file %s with cert_file %s: %w", cfg.KeyFile, cfg.CertFile, err)
	}
	s := &tlsState{cert: &pair, leaf: leaf}
	if cfg.ClientCAFile != "" {
		caPEM, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		if _, err := firstCert(caPEM); err != nil {
			return nil, fmt.Errorf("client_ca_file %s: %w", cfg.ClientCAFile, err)
		}
		s.clientCAs = x509.NewCertPool()
		s.clientCAs.AppendCertsFromPEM(caPEM)
	}
	return s, nil
}

// firstCert parses every CERTIFICATE block and returns the first.
func firstCert(b []byte) (*x509.Certificate, error) {
	var first *x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", n, err)
		}
		if first == nil {
			first = c
		}
	}
	if first == nil {
		return nil, errors.New("no PEM certificate found")
	}
	return first, nil
}

// serverConfig is the tls.Config given to every connection; it reads the
// current certificates through GetConfigForClient.
func (h *certHolder) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := h.state.Load()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*s.cert},
			}
			if s.clientCAs != nil {
				c.ClientCAs = s.clientCAs
				c.ClientAuth = tls.VerifyClientCertIfGiven
				if h.cfg.RequireClientCert {
					c.ClientAuth = tls.RequireAndVerifyClientCert
				}
			}
			return c, nil
		},
	}
}

// warnExpiry logs a server certificate that is expired or about to be.
func warnExpiry(l *Listener, s *tlsState, file string) {
	now := time.Now()
	switch {
	case now.After(s.leaf.NotAfter):
		l.log.Error(fmt.Sprintf("server certificate %s expired on %s; clients will refuse this listener", file, s.leaf.NotAfter.Format(time.DateOnly)),
			"listener", l.addr, "cert_file", file)
	case now.Before(s.leaf.NotBefore):
		l.log.Error(fmt.Sprintf("server certificate %s is not valid before %s (is the clock right?)", file, s.leaf.NotBefore.Format(time.RFC3339)),
			"listener", l.addr, "cert_file", file)
	case s.leaf.NotAfter.Sub(now) < 14*24*time.Hour:
		l.log.Warn(fmt.Sprintf("server certificate %s expires on %s", file, s.leaf.NotAfter.Format(time.DateOnly)),
			"listener", l.addr, "cert_file", file)
	}
}

// Reload re-reads the certificate, key and client CA files of a TLS
// listener; new handshakes use them, established connections keep going.
// If a file is missing or broken the old certificates stay in force and
// the error names the file. On a listener without TLS it does nothing.
func (l *Listener) Reload() error {
	if l.certs == nil {
		return nil
	}
	s, err := loadTLSState(l.certs.cfg)
	if err != nil {
		return fmt.Errorf("reload TLS for listener %s (keeping the old certificates): %w", l.addr, err)
	}
	l.certs.state.Store(s)
	warnExpiry(l, s, l.certs.cfg.CertFile)
	l.log.Info("reloaded TLS certificates", "listener", l.addr, "cert_file", l.certs.cfg.CertFile,
		"subject", s.leaf.Subject.String(), "not_after", s.leaf.NotAfter)
	return nil
}

// handshake runs the server handshake for a new connection with a
// deadline and logs a failure with its likely cause. It returns nil if
// the handshake failed (the connection is then closed).
func (l *Listener) handshake(ctx context.Context, raw net.Conn) *tls.Conn {
	c := tls.Server(raw, l.tlsConfig)
	hctx, cancel := context.WithTimeout(ctx, l.handshakeTimeout)
	defer cancel()
	err := c.HandshakeContext(hctx)
	if err == nil {
		return c
	}
	c.Close()
	if ctx.Err() != nil {
		return nil // listener closing
	}
	cause, msg := l.explainHandshake(raw.RemoteAddr().String(), err)
	l.refusals.report(cause, raw.RemoteAddr().String(), msg)
	return nil
}

// explainHandshake turns a server-side handshake error into a cause and
// a sentence saying what is probably wrong and what to do.
func (l *Listener) explainHandshake(client string, err error) (cause, msg string) {
	where := fmt.Sprintf("client %s on TLS listener %s: ", client, l.addr)
	cfile := l.certs.cfg.CertFile
	var rhe tls.RecordHeaderError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	s := err.Error()
	switch {
	case errors.As(err, &rhe) && rhe.RecordHeader[0] == 0x10:
		return "plain-on-tls", where + "the client sent plain MQTT (a CONNECT packet) instead of a TLS handshake; turn TLS on in the client (mosquitto_pub --cafile <ca.crt>, mqtts://) or use the plain listener"
	case errors.As(err, &rhe) && (string(rhe.RecordHeader[:4]) == "GET " || string(rhe.RecordHeader[:4]) == "POST"):
		return "http-on-tls", where + "the client sent plain HTTP instead of a TLS handshake; use wss:// (or https://) for this listener"
	case errors.As(err, &rhe):
		return "not-tls", where + fmt.Sprintf("the client did not start a TLS handshake (first bytes % x)", rhe.RecordHeader[:])
	case strings.Contains(s, "client didn't provide a certificate"):
		return "client-cert-missing", where + "the client sent no certificate but this listener requires one (require_client_cert); give the client --cert/--key signed by " + l.certs.cfg.ClientCAFile
	case errors.As(err, &unknownCA):
		return "client-cert-unknown-ca", where + fmt.Sprintf("the client certificate (CN %q) is not signed by a CA in client_ca_file %s", commonName(unknownCA.Cert), l.certs.cfg.ClientCAFile)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "client-cert-expired", where + fmt.Sprintf("the client certificate (CN %q) is expired or not yet valid: %v", commonName(invalid.Cert), invalid.Detail)
	case errors.As(err, &invalid):
		return "client-cert-invalid", where + fmt.Sprintf("the client certificate (CN %q) is not valid here: %v", commonName(invalid.Cert), err)
	case errors.As(err, &hostErr):
		return "client-cert-invalid", where + fmt.Sprintf("the client certificate is not valid here: %v", err)
	case (strings.Contains(s, "remote error: tls:") || strings.Contains(s, "bad record MAC")) && l.serverCertExpired():
		// OpenSSL clients (mosquitto_pub) abort with what reaches us as
		// "bad record MAC"; an expired certificate of ours is the likely
		// cause when we know it has expired.
		return "server-cert-expired", where + fmt.Sprintf("the client refused our certificate %s, which has expired (%s); renew it and send SIGHUP", cfile, l.notAfter())
	case strings.Contains(s, "remote error: tls: unknown certificate authority"):
		return "server-cert-unknown-ca", where + fmt.Sprintf("the client does not trust our certificate (unknown CA): give the client the CA that signed %s (--cafile)", cfile)
	case strings.Contains(s, "remote error: tls: expired certificate"):
		return "server-cert-expired", where + fmt.Sprintf("the client says our certificate %s has expired (%s); renew it and send SIGHUP", cfile, l.notAfter())
	case strings.Contains(s, "remote error: tls: bad certificate"), strings.Contains(s, "remote error: tls: certificate unknown"):
		return "server-cert-rejected", where + fmt.Sprintf("the client rejected our certificate %s (%s): either the client does not trust the CA that signed it (--cafile) or the host name it connects to is not among the certificate's names %s",
			cfile, strings.TrimPrefix(s, "remote error: tls: "), l.certNames())
	case strings.Contains(s, "bad record MAC"):
		// What an OpenSSL client (mosquitto_pub, paho C) rejecting our
		// certificate looks like from here, with TLS 1.2 and 1.3 alike.
		return "server-cert-rejected", where + fmt.Sprintf("the client aborted the handshake (%s), as OpenSSL clients such as mosquitto_pub do when they reject our certificate %s: either the client does not trust the CA that signed it (--cafile) or the host name it connects to is not among the certificate's names %s",
			s, cfile, l.certNames())
	case strings.Contains(s, "remote error"):
		return "client-alert", where + "the client aborted the handshake: " + s
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "handshake-timeout", where + fmt.Sprintf("the TLS handshake did not finish within %s", l.handshakeTimeout)
	case strings.Contains(s, "EOF") || strings.Contains(s, "connection reset"):
		return "handshake-eof", where + "the client closed the connection during the TLS handshake (does it trust our certificate and accept TLS 1.2+?)"
	case strings.Contains(s, "protocol version") || strings.Contains(s, "unsupported versions") || strings.Contains(s, "no cipher suite"):
		return "tls-version", where + "the client offers no TLS version or cipher we accept (TLS 1.2 minimum): " + s
	}
	return "handshake", where + "TLS handshake failed: " + s
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func commonName(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return c.Subject.CommonName
}

func (l *Listener) notAfter() string {
	if s := l.certs.state.Load(); s != nil {
		return "valid until " + s.leaf.NotAfter.Format(time.DateOnly)
	}
	return ""
}

func (l *Listener) serverCertExpired() bool {
	s := l.certs.state.Load()
	return s != nil && time.Now().After(s.leaf.NotAfter)
}

func (l *Listener) certNames() string {
	s := l.certs.state.Load()
	if s == nil {
		return "[]"
	}
	var names []string
	names = append(names, s.leaf.DNSNames...)
	for _, ip := range s.leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && s.leaf.Subject.CommonName != "" {
		names = append(names, "CN="+s.leaf.Subject.CommonName+" (no SANs: modern clients ignore the CN)")
	}
	return "[" + strings.Join(names, " ") + "]"
}

// tlsStater is a connection that carries the TLS state of the transport
// under it (a WebSocket over TLS).
type tlsStater interface {
	TLSConnectionState() (tls.ConnectionState, bool)
}

// PeerIdentity returns the common name of the verified client certificate
// of a connection accepted on a TLS listener (as mosquitto's
// use_identity_as_username). It finishes the handshake first if needed,
// waiting at most 10 seconds. ok is false for a plain connection, a
// client without a verified certificate, an empty CN or one holding NUL.
func PeerIdentity(c net.Conn) (cn string, ok bool) {
	var st tls.ConnectionState
	switch c := c.(type) {
	case *tls.Conn:
		ctx, cancel := context.WithTimeout(context.Background(), defaultHandshakeTimeout)
		defer cancel()
		if err := c.HandshakeContext(ctx); err != nil {
			return "", false
		}
		st = c.ConnectionState()
	case tlsStater:
		var has bool
		if st, has = c.TLSConnectionState(); !has {
			return "", false
		}
	default:
		return "", false
	}
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return "", false
	}
	cn = st.PeerCertificates[0].Subject.CommonName
	if cn == "" || strings.IndexByte(cn, 0) >= 0 {
		return "", false
	}
	return cn, true
}
