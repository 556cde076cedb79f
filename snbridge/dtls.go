package snbridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
)

// MQTT-SN over DTLS 1.2 (RFC 6347): a UDP port of its own where every
// client first completes a DTLS handshake, with a certificate or a
// pre-shared key, and then speaks MQTT-SN 1.2 unchanged inside the
// session. Nodes on a shared radio network or a cellular link get the
// confidentiality and integrity MQTT-SN itself does not have (MQTT-SN 1.2
// has no credentials at all). Pre-shared keys are read from a file in
// mosquitto's psk_file format, so a node's identity and key are kept the
// way a mosquitto user already keeps them.

// DTLSConfig is mqttsn.dtls.
type DTLSConfig struct {
	// Listen is the UDP address of the DTLS port, e.g. "0.0.0.0:1885".
	Listen string `mapstructure:"listen" yaml:"listen"`
	// CertFile and KeyFile are the gateway's certificate and key (PEM)
	// for certificate handshakes.
	CertFile string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string `mapstructure:"key_file" yaml:"key_file"`
	// ClientCAFile verifies client certificates (PEM); RequireClientCert
	// refuses clients without one.
	ClientCAFile      string `mapstructure:"client_ca_file" yaml:"client_ca_file"`
	RequireClientCert bool   `mapstructure:"require_client_cert" yaml:"require_client_cert"`
	// PSKFile holds pre-shared keys, one "identity:hexkey" per line
	// (mosquitto's psk_file). With it, only PSK cipher suites are offered
	// (TLS_PSK_WITH_AES_128_CCM_8 and friends, for small devices).
	PSKFile string `mapstructure:"psk_file" yaml:"psk_file"`
	// PSKHint is the identity hint sent to PSK clients; "" = none.
	PSKHint string `mapstructure:"psk_hint" yaml:"psk_hint"`
	// UseIdentityAsUsername gives each client's broker session the PSK
	// identity or the client certificate's common name as its username
	// (for ACLs), instead of mqttsn.username.
	UseIdentityAsUsername bool `mapstructure:"use_identity_as_username" yaml:"use_identity_as_username"`
	// IdleTimeout drops a DTLS session with no datagram for this long
	// (the client handshakes again); 0 = 24h, longer than the longest
	// MQTT-SN sleep (65535 s).
	IdleTimeout time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
}

// dtlsHandshakeTimeout bounds one client's handshake (retransmissions
// included) on a lossy link.
const dtlsHandshakeTimeout = 30 * time.Second

// dtlsReadSize holds the largest DTLS record's plaintext (2^14 bytes,
// RFC 6347 section 4.1 via RFC 5246 6.2.1): one buffer per session.
const dtlsReadSize = 1 << 14

// Validate checks the combination of keys; the files are read by
// listenDTLS.
func (c *DTLSConfig) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("mqttsn.dtls.listen is required")
	case c.PSKFile != "" && c.CertFile != "":
		return errors.New("mqttsn.dtls: set psk_file or cert_file/key_file, not both (a PSK port offers only PSK cipher suites)")
	case c.PSKFile == "" && c.CertFile == "":
		return errors.New("mqttsn.dtls: set psk_file, or cert_file and key_file")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("mqttsn.dtls: cert_file and key_file go together")
	case c.PSKFile != "" && (c.ClientCAFile != "" || c.RequireClientCert):
		return errors.New("mqttsn.dtls: client_ca_file and require_client_cert apply to certificates, not to psk_file")
	case c.RequireClientCert && c.ClientCAFile == "":
		return errors.New("mqttsn.dtls: require_client_cert needs client_ca_file")
	case c.CertFile != "" && c.UseIdentityAsUsername && !c.RequireClientCert:
		// A node without a certificate would have no identity to be.
		return errors.New("mqttsn.dtls: use_identity_as_username with certificates needs require_client_cert: true (as mosquitto's require_certificate)")
	case c.IdleTimeout < 0:
		return fmt.Errorf("mqttsn.dtls.idle_timeout %v: must not be negative", c.IdleTimeout)
	}
	return nil
}

// loadPSKFile reads mosquitto's psk_file format: "identity:key" per line,
// the key in hexadecimal; blank lines and lines starting with # are
// skipped. Errors name the file and line.
func loadPSKFile(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("psk_file: %w", err)
	}
	defer f.Close()
	keys := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		id, hexKey, ok := strings.Cut(s, ":")
		switch {
		case !ok || id == "":
			return nil, fmt.Errorf("psk_file %s:%d: want identity:hexkey", path, line)
		case hexKey == "":
			return nil, fmt.Errorf("psk_file %s:%d: identity %q has no key", path, line, id)
		}
		key, err := hex.DecodeString(hexKey)
		if err != nil {
			return nil, fmt.Errorf("psk_file %s:%d: identity %q: key is not hexadecimal: %w", path, line, id, err)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("psk_file %s:%d: identity %q listed twice", path, line, id)
		}
		keys[id] = key
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("psk_file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("psk_file %s: no identity:key line", path)
	}
	return keys, nil
}

// dtlsAddr is a comparable net.Addr for a DTLS peer.
type dtlsAddr netip.AddrPort

func (a dtlsAddr) Network() string { return "dtls" }
func (a dtlsAddr) String() string  { return netip.AddrPort(a).String() }

func toDTLSAddr(a net.Addr) dtlsAddr {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return dtlsAddr(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return dtlsAddr(ap)
}

// dtlsTransport is the DTLS port: one goroutine per client session reads
// its records and hands each message to ReadPacket; WritePacket finds the
// session by address.
type dtlsTransport struct {
	ln   net.Listener
	log  *slog.Logger
	idle time.Duration
	cfg  DTLSConfig
	// keys (PSK) or cert (certificates): what new handshakes use; Reload
	// replaces them.
	keys atomic.Pointer[map[string][]byte]
	cert atomic.Pointer[tls.Certificate]
	cas  atomic.Pointer[x509.CertPool] // client_ca_file; nil: none configured

	in   chan dtlsDatagram
	ctx  context.Context // cancelled by Close: ends handshakes and reads
	stop context.CancelFunc
	once sync.Once
	wg   sync.WaitGroup

	mu       sync.Mutex
	sessions map[dtlsAddr]*dtlsSession
	lastWarn time.Time // handshake failures are logged at most once a second
	failed   int       // handshake failures since the last warning
}

type dtlsDatagram struct {
	b    []byte
	from dtlsAddr
}

type dtlsSession struct {
	c        *dtls.Conn
	identity string // PSK identity or client certificate CN
}

// listenDTLS opens the DTLS port described by cfg (validated).
func listenDTLS(cfg DTLSConfig, log *slog.Logger) (*dtlsTransport, error) {
	d := &dtlsTransport{log: log, cfg: cfg, in: make(chan dtlsDatagram, 64), sessions: make(map[dtlsAddr]*dtlsSession)}
	if err := d.loadKeys(); err != nil {
		return nil, err
	}
	var opts []dtls.ServerOption
	if cfg.PSKFile != "" {
		opts = append(opts, dtls.WithPSK(func(identity []byte) ([]byte, error) {
			if k, ok := (*d.keys.Load())[string(identity)]; ok {
				return k, nil
			}
			return nil, fmt.Errorf("unknown PSK identity %q (not in %s)", identity, cfg.PSKFile)
		}))
		if cfg.PSKHint != "" {
			opts = append(opts, dtls.WithPSKIdentityHint([]byte(cfg.PSKHint)))
		}
		// CCM_8 is what constrained stacks (tinydtls, wolfSSL on an MCU)
		// implement; the others for gateways and Linux nodes (RFC 6655,
		// RFC 5487).
		opts = append(opts, dtls.WithCipherSuites(
			dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CCM,
			dtls.TLS_PSK_WITH_AES_128_GCM_SHA256, dtls.TLS_PSK_WITH_AES_256_CCM_8,
			dtls.TLS_PSK_WITH_AES_128_CBC_SHA256))
	} else {
		opts = append(opts, dtls.WithGetCertificate(func(*dtls.ClientHelloInfo) (*tls.Certificate, error) { return d.cert.Load(), nil }))
		if cfg.ClientCAFile != "" {
			// The handshake asks for a certificate and verifyClient checks
			// it against the CAs loaded now, so SIGHUP can change them
			// (pion's own check holds the pool it was given at start).
			auth := dtls.RequestClientCert
			if cfg.RequireClientCert {
				auth = dtls.RequireAnyClientCert
			}
			opts = append(opts, dtls.WithClientAuth(auth), dtls.WithVerifyPeerCertificate(d.verifyClient))
		}
	}
	opts = append(opts, dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret))
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("mqttsn.dtls.listen %q: %w", cfg.Listen, err)
	}
	ln, err := dtls.ListenWithOptions("udp", ua, opts...)
	if err != nil {
		return nil, fmt.Errorf("mqttsn.dtls: listen %s: %w", cfg.Listen, err)
	}
	d.ln, d.idle = ln, cfg.IdleTimeout
	if d.idle == 0 {
		d.idle = 24 * time.Hour
	}
	d.ctx, d.stop = context.WithCancel(context.Background())
	d.wg.Go(d.acceptLoop)
	return d, nil
}

// loadKeys reads psk_file, or cert_file and key_file; on error the keys
// in use stay.
func (d *dtlsTransport) loadKeys() error {
	if d.cfg.PSKFile != "" {
		keys, err := loadPSKFile(d.cfg.PSKFile)
		if err != nil {
			return fmt.Errorf("mqttsn.dtls.%w", err)
		}
		d.keys.Store(&keys)
		return nil
	}
	cert, err := tls.LoadX509KeyPair(d.cfg.CertFile, d.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("mqttsn.dtls: cert_file %s, key_file %s: %w", d.cfg.CertFile, d.cfg.KeyFile, err)
	}
	var cas *x509.CertPool
	if d.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(d.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("mqttsn.dtls.client_ca_file: %w", err)
		}
		cas = x509.NewCertPool()
		if !cas.AppendCertsFromPEM(pem) {
			return fmt.Errorf("mqttsn.dtls.client_ca_file %s: no PEM certificate found", d.cfg.ClientCAFile)
		}
	}
	d.cert.Store(&cert)
	d.cas.Store(cas)
	return nil
}

// verifyClient checks a node's certificate chain against client_ca_file
// as loaded last, for client authentication, as crypto/tls does. No
// certificate is accepted here only when require_client_cert is off (the
// handshake has refused it otherwise).
func (d *dtlsTransport) verifyClient(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return nil
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("client certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: d.cas.Load(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("client certificate %q: %w (client_ca_file %s)", certs[0].Subject.CommonName, err, d.cfg.ClientCAFile)
	}
	return nil
}

// Reload re-reads psk_file (a node added or its key changed) or the
// certificate and key (renewed) for new handshakes; sessions already
// open keep going. A broken file keeps the keys in use and the error
// names it. With certificates, client_ca_file is read again too.
func (d *dtlsTransport) Reload() error {
	if err := d.loadKeys(); err != nil {
		return err
	}
	if d.cfg.PSKFile != "" {
		d.log.Info("mqtt-sn: dtls pre-shared keys reloaded", "psk_file", d.cfg.PSKFile, "identities", len(*d.keys.Load()))
	} else {
		d.log.Info("mqtt-sn: dtls certificate reloaded", "cert_file", d.cfg.CertFile, "client_ca_file", d.cfg.ClientCAFile)
	}
	return nil
}

func (d *dtlsTransport) acceptLoop() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if d.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("mqtt-sn: dtls accept failed", "listener", d.ln.Addr().String(), "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		dc, ok := c.(*dtls.Conn)
		if !ok {
			c.Close()
			continue
		}
		d.wg.Go(func() { d.serve(dc) })
	}
}

// serve runs one client session: handshake, then its records.
func (d *dtlsTransport) serve(c *dtls.Conn) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(d.ctx, dtlsHandshakeTimeout) // Close ends a handshake in progress
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		d.handshakeFailed(c.RemoteAddr(), err)
		return
	}
	addr := toDTLSAddr(c.RemoteAddr())
	s := &dtlsSession{c: c, identity: identityOf(c)}
	d.mu.Lock()
	if d.ctx.Err() != nil { // Close has already closed the sessions it knew
		d.mu.Unlock()
		return
	}
	old := d.sessions[addr]
	d.sessions[addr] = s
	d.mu.Unlock()
	if old != nil {
		old.c.Close() // the client started over from the same address
	}
	defer func() {
		d.mu.Lock()
		if d.sessions[addr] == s {
			delete(d.sessions, addr)
		}
		d.mu.Unlock()
	}()
	buf := make([]byte, dtlsReadSize)
	for {
		c.SetReadDeadline(time.Now().Add(d.idle))
		n, err := c.Read(buf)
		if err != nil {
			return // close_notify, idle timeout, a fatal alert, or Close
		}
		select {
		case d.in <- dtlsDatagram{b: append([]byte(nil), buf[:n]...), from: addr}:
		case <-d.ctx.Done():
			return
		}
	}
}

// identityOf is the PSK identity or the client certificate's common name.
func identityOf(c *dtls.Conn) string {
	st, ok := c.ConnectionState()
	if !ok {
		return ""
	}
	if len(st.IdentityHint) > 0 {
		return string(st.IdentityHint)
	}
	if len(st.PeerCertificates) > 0 {
		if cert, err := x509.ParseCertificate(st.PeerCertificates[0]); err == nil {
			return cert.Subject.CommonName
		}
	}
	return ""
}

// handshakeFailed logs a failed handshake, at most once a second with
// the count of those not logged (a scan or a misconfigured fleet must not
// flood the log).
func (d *dtlsTransport) handshakeFailed(from net.Addr, err error) {
	d.mu.Lock()
	d.failed++
	now := time.Now()
	if now.Sub(d.lastWarn) < time.Second {
		d.mu.Unlock()
		return
	}
	n := d.failed
	d.failed, d.lastWarn = 0, now
	d.mu.Unlock()
	d.log.Warn("mqtt-sn: dtls handshake failed", "listener", d.ln.Addr().String(), "client", from.String(), "error", err, "failures", n)
}

func (d *dtlsTransport) ReadPacket(buf []byte) (int, net.Addr, error) {
	select {
	case p := <-d.in:
		return copy(buf, p.b), p.from, nil
	case <-d.ctx.Done():
		return 0, nil, net.ErrClosed
	}
}

func (d *dtlsTransport) WritePacket(b []byte, to net.Addr) error {
	a, ok := to.(dtlsAddr)
	if !ok {
		return fmt.Errorf("dtls write to %v: not a DTLS peer", to)
	}
	d.mu.Lock()
	s := d.sessions[a]
	d.mu.Unlock()
	if s == nil {
		return fmt.Errorf("dtls write to %v: no DTLS session (ended or idle; the client must handshake again)", to)
	}
	_, err := s.c.Write(b)
	return err
}

// PeerIdentity is the PSK identity or certificate common name of the
// session at a ("" if none).
func (d *dtlsTransport) PeerIdentity(a net.Addr) string {
	da, ok := a.(dtlsAddr)
	if !ok {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.sessions[da]; s != nil {
		return s.identity
	}
	return ""
}

// LocalAddr is the DTLS port's UDP address, named "dtls" (the summary
// and logs tell it from the plain UDP port).
func (d *dtlsTransport) LocalAddr() net.Addr { return dtlsLocalAddr{d.ln.Addr()} }

type dtlsLocalAddr struct{ net.Addr }

func (dtlsLocalAddr) Network() string { return "dtls" }

// Close ends every session (no close_notify wait) and the port.
func (d *dtlsTransport) Close() error {
	var err error
	d.once.Do(func() {
		d.stop()
		err = d.ln.Close()
		d.mu.Lock()
		for _, s := range d.sessions {
			s.c.Close()
		}
		d.mu.Unlock()
		d.wg.Wait()
	})
	return err
}
