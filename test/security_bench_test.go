package test

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// BenchmarkSecurityConnect measures connection setup (TCP connect, TLS
// handshake if any, CONNECT with credentials if any, CONNACK, DISCONNECT)
// against the real outpost binary and a real mosquitto configured the
// same way, in the same run, and reports conns/s side by side:
//
//	go test -run '^$' -bench BenchmarkSecurityConnect -benchtime 3s ./test/
//
// tls: anonymous over TLS 1.2+ (full handshake every time, P-256 server
// certificate, no session resumption). password: a mosquitto_passwd file
// with the default iterations; password-I100000: one written with
// mosquitto_passwd -I 100000, the same credential on every connect (outpost
// caches a verified credential, mosquitto does not); password-I100000-cold:
// every connect a user not seen before, so both brokers run PBKDF2 with
// 100000 iterations each time. Both brokers log errors only; mosquitto
// gets set_tcp_nodelay true, as Go sockets have by default (without it
// Nagle holds back its TLS writes and it manages a quarter of the rate).
func BenchmarkSecurityConnect(b *testing.B) {
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		b.Skip("mosquitto_passwd not installed (test/run.sh installs it)")
	}
	pki := newTestPKI(b)
	dir := b.TempDir()
	pwDefault := filepath.Join(dir, "passwd")
	pw100k := filepath.Join(dir, "passwd-I100000")
	for _, args := range [][]string{
		{"-c", "-b", pwDefault, "bench", "bench-pw"},
		{"-c", "-b", "-I", "100000", pw100k, "bench", "bench-pw"},
	} {
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			b.Fatalf("mosquitto_passwd %q: %v\n%s", args, err, out)
		}
	}
	// The cold file: a fresh credential per connect, so outpost's
	// verification cache (brokercore/auth) cannot help.
	pwCold := filepath.Join(dir, "passwd-cold")
	writeFile(b, pwCold, coldPasswordFile(b, coldUsers, 100000))
	tlsYAML := tlsListener(pki.Server, "", false, false)
	outA := startOutpostTB(b, "log: {level: warn}\n"+secConfig("  allow_anonymous: true\n  password_file: "+pwDefault+
		"\n  listeners:\n"+plainListener+tlsYAML), 2)
	outB := startOutpostTB(b, "log: {level: warn}\n"+secConfig("  allow_anonymous: true\n  password_file: "+pw100k+
		"\n  listeners:\n"+plainListener), 1)
	// Mosquitto configured the same way, logging errors only.
	mosquitto := func(passwordFile string, listeners ...mosquittotest.Listener) []string {
		return mosquittotest.Start(b, mosquittotest.Options{
			AllowAnonymous: true, PasswordFile: passwordFile, LogTypes: []string{"error"}, NoDelay: true,
			Extra: []string{"per_listener_settings false"}, Listeners: listeners,
		}).Addrs()
	}
	mosqTLS := mosquittotest.TLSFiles{CAFile: pki.CA.File, CertFile: pki.Server.Cert, KeyFile: pki.Server.Key}
	mosA := mosquitto(pwDefault, mosquittotest.Listener{}, mosquittotest.Listener{TLS: &mosqTLS})
	mosB := mosquitto(pw100k)
	outC := startOutpostTB(b, "log: {level: warn}\n"+secConfig("  allow_anonymous: true\n  password_file: "+pwCold+
		"\n  listeners:\n"+plainListener), 1)
	mosC := mosquitto(pwCold)
	clientTLS := pki.CA.tlsConfig(certFiles{})

	cases := []struct {
		name       string
		addrs      [2]string // outpost, mosquitto
		tls        *tls.Config
		user, pass string
	}{
		{"tls", [2]string{outA[1], mosA[1]}, clientTLS, "", ""},
		{"password", [2]string{outA[0], mosA[0]}, nil, "bench", "bench-pw"},
		{"password-I100000", [2]string{outB[0], mosB[0]}, nil, "bench", "bench-pw"},
		{"password-I100000-cold", [2]string{outC[0], mosC[0]}, nil, "", ""},
	}
	for _, c := range cases {
		for i, broker := range []string{"outpost", "mosquitto"} {
			addr := c.addrs[i]
			cold := c.name == "password-I100000-cold"
			// A wrong password must be refused, or the figures mean nothing.
			user := c.user
			if cold {
				user = "cold0"
			}
			if user != "" {
				if rc, err := benchConnect(addr, nil, "bench-check", user, "wrong"); err != nil || rc != 5 {
					b.Fatalf("%s %s: wrong password got CONNACK %d (%v), want 5", c.name, broker, rc, err)
				}
			}
			var next atomic.Int64 // the cold run's next user, across b.N rounds
			b.Run(c.name+"/"+broker, func(b *testing.B) {
				b.SetParallelism(2)
				b.RunParallel(func(pb *testing.PB) {
					for n := 0; pb.Next(); n++ {
						user, pass := c.user, c.pass
						if cold {
							i := next.Add(1) - 1
							if i >= coldUsers {
								b.Errorf("the cold password file has only %d users; run this one with a shorter -benchtime (1s is fine)", coldUsers)
								return
							}
							user, pass = fmt.Sprintf("cold%d", i), fmt.Sprintf("pw%d", i)
						}
						rc, err := benchConnect(addr, c.tls, fmt.Sprintf("b-%p-%d", pb, n), user, pass)
						if err != nil || rc != 0 {
							b.Errorf("connect to %s: CONNACK %d, %v", broker, rc, err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
			})
		}
	}
}

// benchConnect makes one MQTT 3.1.1 connection (over TLS if tc is set),
// reads the CONNACK, sends DISCONNECT and closes. It returns the CONNACK
// return code, or -1 if the connection closed without one.
func benchConnect(addr string, tc *tls.Config, id, user, pass string) (int, error) {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 10 * time.Second}
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(connectPacket(id, user, pass)); err != nil {
		return 0, err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		return -1, nil
	}
	if !bytes.Equal(ack[:3], []byte{0x20, 2, 0}) {
		return 0, fmt.Errorf("not a CONNACK: % x", ack)
	}
	_, err = c.Write([]byte{0xE0, 0}) // DISCONNECT
	return int(ack[3]), err
}

// connectPacket is an MQTT 3.1.1 CONNECT [MQTT-3.1]: clean session, keep
// alive 60, with username and password when user is set.
func connectPacket(id, user, pass string) []byte {
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	flags := byte(0x02)
	if user != "" {
		flags |= 0xC0
	}
	body := str(nil, "MQTT")
	body = append(body, 4, flags, 0, 60)
	body = str(body, id)
	if user != "" {
		body = str(str(body, user), pass)
	}
	pkt := []byte{0x10}
	for n := len(body); ; { // remaining length, variable byte integer [MQTT-1.5.5]
		d := byte(n % 128)
		if n /= 128; n > 0 {
			d |= 0x80
		}
		pkt = append(pkt, d)
		if n == 0 {
			break
		}
	}
	return append(pkt, body...)
}

// startOutpostTB runs the binary as startOutpost does, for a benchmark
// (startOutpost takes a *testing.T), and returns its n broker addresses.
func startOutpostTB(tb testing.TB, cfg string, n int) []string {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "outpost.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "%DATA%", filepath.Join(dir, "data"))), 0o600); err != nil {
		tb.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command(outpostBin, "run", "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var as []string
		for _, m := range addrRE.FindAllStringSubmatch(out.String(), -1) {
			if m[1] == "MQTT broker" {
				as = append(as, m[2])
			}
		}
		if len(as) == n {
			return as
		}
		select {
		case <-done:
			tb.Fatalf("outpost exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("outpost did not print %d broker addresses within 20s:\n%s", n, out.String())
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// coldUsers is how many users the cold password file holds: enough for
// the cold run's rounds at the default -benchtime of 1s.
const coldUsers = 240

// coldPasswordFile returns n users cold0..cold<n-1> with passwords
// pw0..pw<n-1> in mosquitto_passwd's $7$ format (PBKDF2-SHA512, 12-byte
// salt, 64-byte hash, standard base64), hashed on every core because
// mosquitto_passwd takes about 0.1s a user at 100000 iterations.
func coldPasswordFile(tb testing.TB, n, iterations int) string {
	tb.Helper()
	lines := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				salt := make([]byte, 12)
				rand.Read(salt)
				h, err := pbkdf2.Key(sha512.New, fmt.Sprintf("pw%d", i), salt, iterations, 64)
				if err != nil {
					tb.Error(err)
					continue
				}
				lines[i] = fmt.Sprintf("cold%d:$7$%d$%s$%s\n", i, iterations,
					base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(h))
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return strings.Join(lines, "")
}
