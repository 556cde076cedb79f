package listener

import (
	"os/exec"
	"testing"
	"time"
)

// answerCONNACK plays a minimal broker: for every accepted connection it
// reads the CONNECT and answers CONNACK accepted, then drains the rest.
func answerCONNACK(t *testing.T, l *Listener) {
	t.Helper()
	ch := acceptAsync(t, l)
	go func() {
		for a := range ch {
			if a.err == nil && len(a.data) > 0 && a.data[0] == 0x10 {
				a.conn.Write([]byte{0x20, 0x02, 0x00, 0x00}) // CONNACK [MQTT-3.2]
			}
			a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			a.conn.Read(make([]byte, 512))
			a.conn.Close()
		}
	}()
}

// The real mosquitto_pub (OpenSSL) against our TLS listener: a good
// client certificate connects; the mix-ups are explained in the log.
func TestMosquittoPubTLS(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (apt-get install -y mosquitto-clients)")
	}
	p := newTestPKI(t)
	localhostOnly := p.ca.issue(t, leafOpts{cn: "hub", hosts: []string{"localhost"}})
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.crt", p.ca.pem)
	otherCA := writeFile(t, dir, "other.crt", p.otherCA.pem)
	cert := writeFile(t, dir, "client.crt", p.client.certPEM)
	key := writeFile(t, dir, "client.key", p.client.keyPEM)

	pub := func(port string, args ...string) error {
		base := []string{"-h", "127.0.0.1", "-p", port, "-t", "t", "-m", "x", "-i", "pub"}
		return exec.Command(bin, append(base, args...)...).Run()
	}

	var logs logBuf
	l := open(t, Config{TLS: tlsFiles(t, p.server, p.ca, true)}, &logs, options{})
	answerCONNACK(t, l)
	port := portOf(l)
	if err := pub(port, "--cafile", caFile, "--cert", cert, "--key", key); err != nil {
		t.Fatalf("mosquitto_pub with a good client certificate: %v\n%s", err, logs.String())
	}
	if err := pub(port, "--cafile", otherCA, "--cert", cert, "--key", key); err == nil {
		t.Fatal("mosquitto_pub trusted a server signed by another CA")
	}
	// OpenSSL's refusal reaches a Go server as "bad record MAC"; the log
	// names both usual causes.
	logs.waitFor(t, "does not trust the CA that signed", "cause=server-cert-rejected")
	if err := pub(port, "--cafile", caFile); err == nil {
		t.Fatal("mosquitto_pub without a client certificate connected")
	}
	logs.waitFor(t, "sent no certificate", "cause=client-cert-missing")
	if err := pub(port, "--cert", cert, "--key", key); err == nil {
		t.Fatal("plain mosquitto_pub connected to the TLS port")
	}
	logs.waitFor(t, "sent plain MQTT (a CONNECT packet)", "cause=plain-on-tls")

	// A certificate for localhost only, reached as 127.0.0.1.
	var logs2 logBuf
	l2 := open(t, Config{TLS: tlsFiles(t, localhostOnly, nil, false)}, &logs2, options{})
	answerCONNACK(t, l2)
	if err := pub(portOf(l2), "--cafile", caFile); err == nil {
		t.Fatal("mosquitto_pub accepted a certificate for the wrong host")
	}
	logs2.waitFor(t, "client 127.0.0.1:", "host name it connects to is not among the certificate's names [localhost]", "cause=server-cert-rejected")
	if err := exec.Command(bin, "-h", "localhost", "-p", portOf(l2), "-t", "t", "-m", "x", "--cafile", caFile).Run(); err != nil {
		t.Fatalf("mosquitto_pub to localhost: %v\n%s", err, logs2.String())
	}

	// TLS client on a plain listener.
	var logs3 logBuf
	l3 := open(t, Config{}, &logs3, options{})
	answerCONNACK(t, l3)
	if err := pub(portOf(l3), "--cafile", caFile); err == nil {
		t.Fatal("TLS mosquitto_pub connected to a plain listener")
	}
	logs3.waitFor(t, "sent a TLS handshake to the plain MQTT listener "+l3.Addr().String())
}
