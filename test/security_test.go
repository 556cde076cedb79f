package test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Security and operations of the real binary: TLS and mTLS listeners with
// real clients, the common mix-ups logged clearly, mosquitto password and
// ACL files, bad files refusing start, SIGHUP reloads and connection
// limits. Certificates are made per test by testcerts_test.go.

// secConfig is a config with only the broker (no web console, so tests
// can run in parallel); broker holds the lines under "broker:" (two-space
// indented).
func secConfig(broker string) string {
	return "data_dir: %DATA%\nhttp: {listen: \"off\"}\nbroker:\n  sys_interval: -1s\n" + broker
}

// tlsListener is one broker.listeners entry with TLS.
func tlsListener(cert certFiles, clientCA string, require, identity bool) string {
	s := fmt.Sprintf(`    - address: "127.0.0.1:0"
      tls:
        cert_file: %q
        key_file: %q
`, cert.Cert, cert.Key)
	if clientCA != "" {
		s += fmt.Sprintf("        client_ca_file: %q\n", clientCA)
	}
	if require {
		s += "        require_client_cert: true\n"
	}
	if identity {
		s += "        use_identity_as_username: true\n"
	}
	return s
}

const plainListener = "    - address: \"127.0.0.1:0\"\n"

// brokerAddrs are the addresses of every "MQTT broker listening on" line,
// in config order.
func brokerAddrs(t *testing.T, p *proc, n int) []string {
	t.Helper()
	var as []string
	// The summary may still be arriving when the first address has: wait
	// for n of them, then check there are no more.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		as = as[:0]
		for _, m := range addrRE.FindAllStringSubmatch(p.out.String(), -1) {
			if m[1] == "MQTT broker" {
				as = append(as, m[2])
			}
		}
		if len(as) >= n || time.Now().After(deadline) {
			break
		}
	}
	if len(as) != n {
		t.Fatalf("want %d broker addresses, got %q; output:\n%s", n, as, p.out.String())
	}
	return as
}

// logLines returns the lines of the hub's output holding every one of subs.
func logLines(p *proc, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(p.out.String(), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// waitLog polls the hub's output for a line holding every one of subs.
func waitLog(t *testing.T, p *proc, subs ...string) string {
	t.Helper()
	var got string
	eventually(t, 10*time.Second, func() error {
		if ls := logLines(p, subs...); len(ls) > 0 {
			got = ls[0]
			return nil
		}
		return fmt.Errorf("no log line with %q; output:\n%s", subs, p.out.String())
	})
	return got
}

// runTool runs a mosquitto client (or mosquitto_passwd) for at most 15s and
// returns its combined output and error (an *exec.ExitError when it exited
// non-zero).
func runTool(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, needTool(t, tool), args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within 15s:\n%s", tool, args, out)
	}
	return string(out), err
}

// mosqArgs is -h/-p for addr plus extra.
func mosqArgs(t *testing.T, addr string, extra ...string) []string {
	host, port := hostPort(t, addr)
	return append([]string{"-h", host, "-p", port}, extra...)
}

// exitCode is the exit status in err from runTool (0 for nil).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// pahoDial connects a paho.mqtt.golang (MQTT 3.1.1) client to url
// (tcp:// or ssl://) and returns the connect error rather than failing.
func pahoDial(t *testing.T, url, id string, configure ...func(*mqtt.ClientOptions)) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(true)
	for _, f := range configure {
		f(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("paho %s connect to %s: timed out", id, url)
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func mustPaho(t *testing.T, url, id string, configure ...func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	c, err := pahoDial(t, url, id, configure...)
	if err != nil {
		t.Fatalf("paho %s connect to %s: %v", id, url, err)
	}
	return c
}

func pahoWait(t *testing.T, tok mqtt.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("%s: timed out", what)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// paho5Dial connects a paho.golang (MQTT 5.0) client; onPub, if set,
// receives publishes. It returns the CONNACK (also on refusal) and error.
func paho5Dial(t *testing.T, addr, id, user, pass string, onPub func(paho.PublishReceived) (bool, error)) (*paho.Client, *paho.Connack, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg := paho.ClientConfig{Conn: nc, ClientID: id}
	if onPub != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onPub}
	}
	c := paho.NewClient(cfg)
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	if user != "" {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = []byte(pass), true
	}
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		return nil, ca, err
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	return c, ca, nil
}

// TestSecurityTLSClients: a TLS listener that requires client
// certificates serves the real mosquitto_pub/sub (3.1.1 and 5) and
// paho.mqtt.golang; a client without a certificate is refused and the
// hub logs one line naming the cause.
func TestSecurityTLSClients(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	p := startOutpost(t, secConfig("  listeners:\n"+plainListener+tlsListener(pki.Server, pki.CA.File, true, false)))
	tlsAddr := brokerAddrs(t, p, 2)[1]
	certArgs := []string{"--cafile", pki.CA.File, "--cert", pki.Client.Cert, "--key", pki.Client.Key}

	for _, v := range []string{"mqttv311", "5"} {
		t.Run("mosquitto/"+v, func(t *testing.T) {
			topic := "tls/" + v
			mosquittoPub(t, tlsAddr, append(certArgs, "-V", v, "-q", "1", "-r", "-t", topic, "-m", "retained")...)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			sub := mosquittoSub(ctx, t, tlsAddr, append(certArgs, "-V", v, "-q", "1", "-t", topic, "-C", "2", "-W", "10", "-v")...)
			stdout, err := sub.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			sub.Stderr = os.Stderr
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			got := lines(stdout)
			if l := <-got; l != topic+" retained" {
				t.Fatalf("mosquitto_sub over TLS: first line %q, want the retained message; hub:\n%s", l, p.out.String())
			}
			mosquittoPub(t, tlsAddr, append(certArgs, "-V", v, "-q", "1", "-t", topic, "-m", "live")...)
			if l := <-got; l != topic+" live" {
				t.Fatalf("mosquitto_sub over TLS: second line %q, want the live message", l)
			}
			if err := sub.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v", err)
			}
		})
	}

	t.Run("paho.mqtt.golang", func(t *testing.T) {
		tc := pki.CA.tlsConfig(pki.Client)
		c := mustPaho(t, "ssl://"+tlsAddr, "paho-tls", func(o *mqtt.ClientOptions) { o.SetTLSConfig(tc) })
		ch := pahoSubscribe(t, c, "tls/paho", 1)
		pahoWait(t, c.Publish("tls/paho", 1, false, "over tls"), "publish")
		if m := waitPaho(t, ch); m.payload != "over tls" {
			t.Fatalf("got %+v", m)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		out, err := runTool(t, "mosquitto_pub", mosqArgs(t, tlsAddr, "--cafile", pki.CA.File, "-t", "tls/x", "-m", "no cert")...)
		if err == nil {
			t.Fatalf("mosquitto_pub without a client certificate succeeded on a require_client_cert listener:\n%s", out)
		}
		tc := pki.CA.tlsConfig(certFiles{})
		if _, err := pahoDial(t, "ssl://"+tlsAddr, "paho-nocert", func(o *mqtt.ClientOptions) { o.SetTLSConfig(tc) }); err == nil {
			t.Fatal("paho without a client certificate connected to a require_client_cert listener")
		}
		line := waitLog(t, p, "client-cert-missing")
		for _, want := range []string{tlsAddr, "sent no certificate", "require_client_cert", pki.CA.File} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q does not name %q", line, want)
			}
		}
		// Two clients failed for the same cause: one line, the rest are
		// summed up later (at the end of the listener's log interval).
		if ls := logLines(p, "client-cert-missing"); len(ls) != 1 {
			t.Errorf("want one log line for the missing certificate, got %d:\n%s", len(ls), strings.Join(ls, "\n"))
		}
	})
}

// TestSecurityIdentityAsUsername: with use_identity_as_username the
// client certificate's CN is the username the ACL sees.
func TestSecurityIdentityAsUsername(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	acl := filepath.Join(pki.Dir, "acl")
	writeFile(t, acl, "user sensor-7\ntopic readwrite sites/sensor-7/#\n")
	p := startOutpost(t, secConfig("  allow_anonymous: false\n  acl_file: "+acl+"\n  listeners:\n"+
		tlsListener(pki.Server, pki.CA.File, true, true)))
	addr := brokerAddrs(t, p, 1)[0]
	certArgs := []string{"--cafile", pki.CA.File, "--cert", pki.Client.Cert, "--key", pki.Client.Key}
	out, err := runTool(t, "mosquitto_pub", mosqArgs(t, addr, append(certArgs, "-q", "1", "-r", "-t", "sites/sensor-7/temp", "-m", "21.5")...)...)
	if err != nil {
		t.Fatalf("mosquitto_pub with CN sensor-7 to its own topic: %v\n%s\nhub:\n%s", err, out, p.out.String())
	}
	// Its own topic comes back (read right through the CN's user block)...
	got, err := runTool(t, "mosquitto_sub", mosqArgs(t, addr, append(certArgs, "-t", "sites/#", "-C", "1", "-W", "5", "-v")...)...)
	if err != nil || strings.TrimSpace(got) != "sites/sensor-7/temp 21.5" {
		t.Fatalf("mosquitto_sub as sensor-7: %v %q", err, got)
	}
	// ...another site's topic is denied and logged.
	if out, err := runTool(t, "mosquitto_pub", mosqArgs(t, addr, append(certArgs, "-q", "1", "-t", "sites/sensor-8/temp", "-m", "x")...)...); err != nil {
		t.Fatalf("mosquitto_pub 3.1.1 to a denied topic: want a normal PUBACK, got %v\n%s", err, out)
	}
	waitLog(t, p, "Denied PUBLISH from", "(sites/sensor-8/temp)")
}

// TestSecurityMixUpsLogged: the common TLS mistakes of a field engineer
// are refused and each is logged with the listener and the likely cause.
func TestSecurityMixUpsLogged(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	p := startOutpost(t, secConfig("  listeners:\n"+plainListener+
		tlsListener(pki.Server, pki.CA.File, false, false)+
		tlsListener(pki.Expired, "", false, false)+
		tlsListener(pki.WrongHost, "", false, false)))
	as := brokerAddrs(t, p, 4)
	plain, good, expired, wrongHost := as[0], as[1], as[2], as[3]
	waitLog(t, p, "server certificate "+pki.Expired.Cert+" expired on")

	cases := []struct {
		name  string
		addr  string
		args  []string
		where string   // the listener named in the line
		want  []string // in the same line
	}{
		{"TLS client on the plain listener", plain, []string{"--cafile", pki.CA.File},
			plain, []string{"sent a TLS handshake to the plain MQTT listener"}},
		{"plain client on the TLS listener", good, nil,
			good, []string{"sent plain MQTT (a CONNECT packet) instead of a TLS handshake", "cause=plain-on-tls"}},
		{"server certificate from an unknown CA", good, []string{"--cafile", pki.Other.File},
			good, []string{"cause=server-cert-rejected", "does not trust the CA that signed it", pki.Server.Cert}},
		{"client certificate from an unknown CA", good, []string{"--cafile", pki.CA.File, "--cert", pki.OtherClient.Cert, "--key", pki.OtherClient.Key},
			good, []string{"cause=client-cert-unknown-ca", `CN \"sensor-7\"`, "not signed by a CA in client_ca_file " + pki.CA.File}},
		{"expired client certificate", good, []string{"--cafile", pki.CA.File, "--cert", pki.ExpiredClnt.Cert, "--key", pki.ExpiredClnt.Key},
			good, []string{"cause=client-cert-expired", `CN \"old-sensor\"`, "expired"}},
		{"certificate for the wrong host", wrongHost, []string{"--cafile", pki.CA.File},
			wrongHost, []string{"cause=server-cert-rejected", "host name it connects to is not among the certificate's names [broker.example.com]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runTool(t, "mosquitto_pub", mosqArgs(t, c.addr, append(c.args, "-t", "mixup", "-m", "x")...)...)
			if err == nil {
				t.Fatalf("mosquitto_pub succeeded:\n%s", out)
			}
			line := waitLog(t, p, append([]string{"level=WARN", c.where}, c.want...)...)
			t.Logf("mosquitto_pub: %s\nhub: %s", strings.TrimSpace(out), line)
		})
	}

	t.Run("expired server certificate", func(t *testing.T) {
		out, err := runTool(t, "mosquitto_pub", mosqArgs(t, expired, "--cafile", pki.CA.File, "-t", "mixup", "-m", "x")...)
		if err == nil {
			t.Fatalf("mosquitto_pub accepted an expired server certificate:\n%s", out)
		}
		mosqLine := waitLog(t, p, "level=WARN", expired, "cause=server-cert-", pki.Expired.Cert)
		// A Go client sends the certificate_expired alert.
		if c, err := tls.Dial("tcp", expired, pki.CA.tlsConfig(certFiles{})); err == nil {
			c.Close()
			t.Fatal("Go TLS client accepted an expired server certificate")
		}
		waitLog(t, p, "level=WARN", expired, "cause=server-cert-expired", pki.Expired.Cert, "has expired", "renew it and send SIGHUP")
		if !strings.Contains(mosqLine, "cause=server-cert-expired") {
			t.Fatalf("mosquitto_pub against an expired server certificate is logged as %q, want cause=server-cert-expired", mosqLine)
		}
	})
}

// writeFile writes s to path (0600) or fails the test.
func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// mosquittoPasswd runs the real mosquitto_passwd with args.
func mosquittoPasswd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := runTool(t, "mosquitto_passwd", args...); err != nil {
		t.Fatalf("mosquitto_passwd %q: %v\n%s", args, err, out)
	}
}

// TestSecurityPasswordFile: a file written by the real mosquitto_passwd
// (default and -I 100000 iterations) logs users in; a wrong password and
// an anonymous client are refused with the right CONNACK codes, and the
// password never reaches the log.
func TestSecurityPasswordFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosquittoPasswd(t, "-c", "-b", pw, "alice", "al1ce-secret")
	mosquittoPasswd(t, "-b", "-I", "100000", pw, "bob", "b0b-secret")
	p := startOutpost(t, secConfig("  allow_anonymous: false\n  password_file: "+pw+"\n  listeners:\n"+plainListener))
	addr := brokerAddrs(t, p, 1)[0]
	const wrong = "Wr0ng-Passw0rd-7731"

	for _, v := range []string{"mqttv311", "5"} {
		for _, user := range []string{"alice:al1ce-secret", "bob:b0b-secret"} {
			u, pass, _ := strings.Cut(user, ":")
			t.Run("mosquitto_pub/"+v+"/"+u, func(t *testing.T) {
				mosquittoPub(t, addr, "-V", v, "-u", u, "-P", pass, "-q", "1", "-t", "pw/ok", "-m", "x")
				out, err := runTool(t, "mosquitto_pub", mosqArgs(t, addr, "-V", v, "-u", u, "-P", wrong, "-q", "1", "-t", "pw/x", "-m", "x")...)
				if exitCode(err) == 0 {
					t.Fatalf("wrong password accepted:\n%s", out)
				}
				// mosquitto_pub exits with the CONNACK code and prints its meaning.
				want, code := "not authorised", 5
				if v == "5" {
					want, code = "bad user name or password", 0x86
				}
				if !strings.Contains(strings.ToLower(out), want) || exitCode(err) != code {
					t.Errorf("mosquitto_pub -V %s with a wrong password: exit %d, output %q; want exit %d and %q", v, exitCode(err), out, code, want)
				}
			})
		}
	}

	t.Run("CONNACK codes", func(t *testing.T) {
		// 3.1.1: return code 5 (not authorized) for both cases.
		_, err := pahoDial(t, "tcp://"+addr, "p3-wrong", func(o *mqtt.ClientOptions) { o.SetUsername("alice").SetPassword(wrong) })
		if err == nil || !strings.Contains(err.Error(), "not Authorized") {
			t.Errorf("paho 3.1.1 wrong password: %v, want CONNACK 5 (not Authorized)", err)
		}
		_, err = pahoDial(t, "tcp://"+addr, "p3-anon")
		if err == nil || !strings.Contains(err.Error(), "not Authorized") {
			t.Errorf("paho 3.1.1 anonymous: %v, want CONNACK 5 (not Authorized)", err)
		}
		// 5.0: 0x86 bad user name or password; 0x87 not authorized for anonymous.
		if _, ca, err := paho5Dial(t, addr, "p5-wrong", "alice", wrong, nil); err == nil || ca == nil || ca.ReasonCode != 0x86 {
			t.Errorf("paho.golang v5 wrong password: %v %+v, want CONNACK 0x86", err, ca)
		}
		if _, ca, err := paho5Dial(t, addr, "p5-anon", "", "", nil); err == nil || ca == nil || ca.ReasonCode != 0x87 {
			t.Errorf("paho.golang v5 anonymous: %v %+v, want CONNACK 0x87", err, ca)
		}
		if _, _, err := paho5Dial(t, addr, "p5-ok", "bob", "b0b-secret", nil); err != nil {
			t.Errorf("paho.golang v5 bob: %v", err)
		}
		out, err := runTool(t, "mosquitto_pub", mosqArgs(t, addr, "-t", "pw/anon", "-m", "x")...)
		if exitCode(err) != 5 {
			t.Errorf("anonymous mosquitto_pub with allow_anonymous false: exit %d, want 5 (CONNACK not authorised):\n%s", exitCode(err), out)
		}
	})

	t.Run("python3-paho-mqtt", func(t *testing.T) {
		py := "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import paho.mqtt.client").Run(); err != nil {
			t.Skipf("python3-paho-mqtt not installed for /usr/bin/python3 (test/run.sh installs it): %v", err)
		}
		host, port := hostPort(t, addr)
		for _, c := range []struct{ user, pass, want string }{
			{"bob", "b0b-secret", "rc=0 got=pw/py hello"},
			{"bob", wrong, "rc=5"},
		} {
			res, err := exec.Command(py, "-c", pyLogin, host, port, c.user, c.pass).CombinedOutput()
			if err != nil || !strings.Contains(string(res), c.want) {
				t.Errorf("python paho %s: %v %q, want %q", c.user, err, res, c.want)
			}
		}
	})

	line := waitLog(t, p, "bad username or password", "username=alice")
	if strings.Contains(p.out.String(), wrong) {
		t.Errorf("the hub logged a password:\n%s", logLines(p, wrong))
	}
	if !strings.Contains(line, "client=") {
		t.Errorf("failed login line %q does not name the client", line)
	}
}

// pyLogin connects with username_pw_set, and on success subscribes,
// publishes and prints what comes back; it prints the CONNACK code.
const pyLogin = `
import sys, threading
import paho.mqtt.client as mqtt
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
done = threading.Event()
out = {}
def on_connect(c, u, flags, rc, *a):
    out["rc"] = int(rc if isinstance(rc, int) else getattr(rc, "value", rc))
    if out["rc"] != 0:
        done.set(); return
    c.subscribe("pw/py", 1)
def on_subscribe(c, u, mid, *a):
    c.publish("pw/py", "hello", qos=1)
def on_message(c, u, m):
    out["got"] = m.topic + " " + m.payload.decode(); done.set()
try:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, "py-login")
except AttributeError:
    c = mqtt.Client("py-login")
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.username_pw_set(user, pw)
c.connect_async(host, port, 30)
c.loop_start()
done.wait(10)
c.loop_stop()
print("rc=%s got=%s" % (out.get("rc"), out.get("got")))
`

// secACL exercises user blocks, read/write/readwrite/deny, patterns with
// %c and %u and the anonymous block.
const secACL = `# anonymous clients: read public/#
topic read public/#

user admin
topic readwrite #

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read shared/#
topic write logs/alice

user bob
topic read shared/visible/#

pattern readwrite clients/%c/#
pattern read users/%u/inbox
`

// TestSecurityACL: a mosquitto-format ACL decides publish, subscribe and
// delivery, with the answers of 3.1.1 and 5.0.
func TestSecurityACL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosquittoPasswd(t, "-c", "-b", pw, "admin", "admin-pw")
	mosquittoPasswd(t, "-b", pw, "alice", "alice-pw")
	mosquittoPasswd(t, "-b", pw, "bob", "bob-pw")
	acl := filepath.Join(dir, "acl")
	writeFile(t, acl, secACL)
	p := startOutpost(t, secConfig("  allow_anonymous: true\n  password_file: "+pw+"\n  acl_file: "+acl+"\n  listeners:\n"+plainListener))
	addr := brokerAddrs(t, p, 1)[0]
	url := "tcp://" + addr
	as := func(user, pass string) func(*mqtt.ClientOptions) {
		return func(o *mqtt.ClientOptions) { o.SetUsername(user).SetPassword(pass) }
	}
	// admin sees every accepted message.
	admin := mustPaho(t, url, "admin-c", as("admin", "admin-pw"))
	all := pahoSubscribe(t, admin, "#", 1)
	// next returns the next message admin sees; a denied publish followed
	// by an allowed marker from the same connection shows the denied one
	// was dropped.
	next := func(want string) {
		t.Helper()
		if m := waitPaho(t, all); m.topic+" "+m.payload != want {
			t.Fatalf("admin saw %q, want %q (a denied publish got through?)", m.topic+" "+m.payload, want)
		}
	}

	t.Run("denied PUBLISH 3.1.1", func(t *testing.T) {
		alice := mustPaho(t, url, "alice-c", as("alice", "alice-pw"))
		for _, tp := range []string{"shared/x", "alice/secret/key", "logs/bob"} {
			// 3.1.1 has no negative PUBACK: the publisher is acked as usual.
			pahoWait(t, alice.Publish(tp, 1, false, "denied"), "publish "+tp)
			waitLog(t, p, "Denied PUBLISH from alice-c ("+tp+")")
		}
		pahoWait(t, alice.Publish("logs/alice", 1, false, "allowed"), "publish")
		next("logs/alice allowed")
	})

	t.Run("denied PUBLISH 5.0", func(t *testing.T) {
		c, _, err := paho5Dial(t, addr, "alice-v5", "alice", "alice-pw", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pr, err := c.Publish(ctx, &paho.Publish{Topic: "shared/v5", QoS: 1, Payload: []byte("denied")})
		if pr == nil || pr.ReasonCode != 0x87 {
			t.Fatalf("v5 PUBLISH to a read-only topic: %+v %v, want PUBACK 0x87", pr, err)
		}
		waitLog(t, p, "Denied PUBLISH from alice-v5 (shared/v5)")
		if pr, err := c.Publish(ctx, &paho.Publish{Topic: "alice/v5", QoS: 1, Payload: []byte("allowed")}); err != nil || pr.ReasonCode != 0 {
			t.Fatalf("v5 PUBLISH to alice/v5: %+v %v", pr, err)
		}
		next("alice/v5 allowed")
	})

	t.Run("SUBSCRIBE nothing readable", func(t *testing.T) {
		bob := mustPaho(t, url, "bob-c", as("bob", "bob-pw"))
		tok := bob.Subscribe("alice/#", 1, nil)
		pahoWait(t, tok, "subscribe")
		if r := tok.(*mqtt.SubscribeToken).Result()["alice/#"]; r != 0x80 {
			t.Errorf("3.1.1 SUBACK for a filter bob may read nothing of: %#x, want 0x80", r)
		}
		c, _, err := paho5Dial(t, addr, "bob-v5", "bob", "bob-pw", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sa, _ := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "alice/#", QoS: 1}, {Topic: "shared/visible/#", QoS: 1}}})
		if sa == nil || len(sa.Reasons) != 2 || sa.Reasons[0] != 0x87 || sa.Reasons[1] != 1 {
			t.Errorf("5.0 SUBACK: %+v, want reasons [0x87 1]", sa)
		}
	})

	t.Run("partly readable filter", func(t *testing.T) {
		admin2 := mustPaho(t, url, "admin-pub", as("admin", "admin-pw"))
		for _, tp := range []string{"shared/hidden/r", "shared/visible/r"} {
			pahoWait(t, admin2.Publish(tp, 1, true, "retained"), "publish retained")
			next(tp + " retained")
		}
		bob := mustPaho(t, url, "bob-part", as("bob", "bob-pw"))
		ch := make(chan pahoMsg, 16)
		tok := bob.Subscribe("shared/#", 1, func(_ mqtt.Client, m mqtt.Message) {
			ch <- pahoMsg{m.Topic(), string(m.Payload()), m.Qos(), m.Retained()}
		})
		pahoWait(t, tok, "subscribe")
		if r := tok.(*mqtt.SubscribeToken).Result()["shared/#"]; r != 1 {
			t.Fatalf("SUBACK for a partly readable filter: %#x, want granted QoS 1", r)
		}
		if m := waitPaho(t, ch); m.topic != "shared/visible/r" || !m.retained {
			t.Fatalf("bob's first message %+v, want the retained shared/visible/r only", m)
		}
		for _, tp := range []string{"shared/hidden/a", "shared/visible/a"} {
			pahoWait(t, admin2.Publish(tp, 1, false, "live"), "publish")
			next(tp + " live")
		}
		if m := waitPaho(t, ch); m.topic != "shared/visible/a" {
			t.Fatalf("bob got %+v, want shared/visible/a (shared/hidden/* is not his to read)", m)
		}
	})

	t.Run("patterns and anonymous", func(t *testing.T) {
		dev := mustPaho(t, url, "dev1") // anonymous: the patterns with %c apply
		pahoWait(t, dev.Publish("clients/dev2/state", 1, false, "denied"), "publish")
		waitLog(t, p, "Denied PUBLISH from dev1 (clients/dev2/state)")
		pahoWait(t, dev.Publish("public/news", 1, false, "denied"), "publish") // anonymous block: read only
		waitLog(t, p, "Denied PUBLISH from dev1 (public/news)")
		pahoWait(t, dev.Publish("clients/dev1/state", 1, false, "allowed"), "publish")
		next("clients/dev1/state allowed")

		anonIn := pahoSubscribe(t, dev, "public/#", 1)
		bobIn := pahoSubscribe(t, mustPaho(t, url, "bob-inbox", as("bob", "bob-pw")), "users/+/inbox", 1)
		admin2 := mustPaho(t, url, "admin-pub2", as("admin", "admin-pw"))
		for _, tp := range []string{"users/alice/inbox", "users/bob/inbox", "public/news"} {
			pahoWait(t, admin2.Publish(tp, 1, false, "hi"), "publish")
			next(tp + " hi")
		}
		if m := waitPaho(t, bobIn); m.topic != "users/bob/inbox" {
			t.Fatalf("bob's inbox subscription got %+v, want users/bob/inbox only (pattern %%u)", m)
		}
		if m := waitPaho(t, anonIn); m.topic != "public/news" {
			t.Fatalf("anonymous got %+v, want public/news", m)
		}
	})
}

// TestSecurityBadFilesRefuseStart: a broken password file, ACL or
// certificate stops `outpost run` with the file, line and problem named.
func TestSecurityBadFilesRefuseStart(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosquittoPasswd(t, "-c", "-b", pw, "alice", "alice-pw")
	mosquittoPasswd(t, "-b", pw, "bob", "bob-pw")
	good, err := os.ReadFile(pw)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.SplitAfter(string(good), "\n")
	truncated := filepath.Join(dir, "passwd-truncated")
	writeFile(t, truncated, ls[0]+ls[1][:len(ls[1])/2]+"\n") // bob's hash cut in half
	acl := filepath.Join(dir, "acl")
	writeFile(t, acl, "user alice\ntopic read a/#\ntopci write b/#\n")
	// A PEM certificate whose third line of base64 was overwritten: the
	// block decodes, the DER inside does not parse.
	cert, err := os.ReadFile(pki.Server.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pemLines := strings.Split(string(cert), "\n")
	pemLines[3] = strings.Repeat("A", len(pemLines[3]))
	badCert := filepath.Join(dir, "bad.crt")
	writeFile(t, badCert, strings.Join(pemLines, "\n"))

	cases := []struct {
		name, broker string
		want         []string
	}{
		{"truncated password file line", "  password_file: " + truncated + "\n  listeners:\n" + plainListener,
			[]string{truncated + ":2:", `user "bob"`}},
		{"ACL unknown keyword", "  acl_file: " + acl + "\n  listeners:\n" + plainListener,
			[]string{acl + ":3:", `unknown keyword "topci"`}},
		{"certificate does not parse", "  listeners:\n" + tlsListener(certFiles{Cert: badCert, Key: pki.Server.Key}, "", false, false),
			[]string{"cert_file " + badCert, "does not parse"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "outpost.yaml")
			writeFile(t, cfg, strings.ReplaceAll(secConfig(c.broker), "%DATA%", filepath.Join(filepath.Dir(cfg), "data")))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, outpostBin, "run", "-c", cfg).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("outpost run kept running with a bad file:\n%s", out)
			}
			if exitCode(err) <= 0 {
				t.Fatalf("outpost run exited %v with a bad file:\n%s", err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not name %q:\n%s", w, out)
				}
			}
		})
	}
}

// hup sends SIGHUP and waits for the n-th line holding one of done.
func hup(t *testing.T, p *proc, n int, done ...string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		c := 0
		for _, d := range done {
			c += len(logLines(p, d))
		}
		if c < n {
			return fmt.Errorf("%d reload lines %q after SIGHUP, want %d; output:\n%s", c, done, n, p.out.String())
		}
		return nil
	})
}

// TestSecuritySIGHUP: SIGHUP reloads the password file without dropping
// clients, keeps the old file when the new one is broken, and reloads
// the TLS certificates.
func TestSecuritySIGHUP(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosquittoPasswd(t, "-c", "-b", pw, "alice", "alice-pw")
	acl := filepath.Join(dir, "acl")
	const aclText = "user alice\ntopic readwrite #\nuser carol\ntopic write hup/#\n"
	writeFile(t, acl, aclText)
	p := startOutpost(t, secConfig("  allow_anonymous: false\n  password_file: "+pw+"\n  acl_file: "+acl+"\n  listeners:\n"+plainListener+
		tlsListener(pki.Server, "", false, false)))
	as := brokerAddrs(t, p, 2)
	addr, tlsAddr := as[0], as[1]
	url := "tcp://" + addr
	login := func(user, pass string) func(*mqtt.ClientOptions) {
		return func(o *mqtt.ClientOptions) { o.SetUsername(user).SetPassword(pass) }
	}
	alice := mustPaho(t, url, "alice-sub", login("alice", "alice-pw"))
	in := pahoSubscribe(t, alice, "hup/#", 1)
	if _, err := pahoDial(t, url, "carol-early", login("carol", "carol-pw")); err == nil {
		t.Fatal("carol logged in before she was added")
	}
	loaded := "password file and ACL loaded"
	n := len(logLines(p, loaded))

	t.Run("new user", func(t *testing.T) {
		mosquittoPasswd(t, "-b", pw, "carol", "carol-pw")
		hup(t, p, n+1, loaded)
		carol := mustPaho(t, url, "carol", login("carol", "carol-pw"))
		pahoWait(t, carol.Publish("hup/1", 1, false, "after reload"), "publish")
		if m := waitPaho(t, in); m.payload != "after reload" {
			t.Fatalf("alice (subscribed before the HUP) got %+v", m)
		}
		if !alice.IsConnectionOpen() {
			t.Fatal("alice was disconnected by the reload")
		}
	})

	t.Run("broken file keeps the old one", func(t *testing.T) {
		good, _ := os.ReadFile(pw)
		writeFile(t, pw, string(good)+"dave:$7$101$trunc\n")
		lines := strings.Count(string(good), "\n") + 1
		hup(t, p, 1, "reload failed; keeping the old password file")
		waitLog(t, p, "reload failed", fmt.Sprintf("%s:%d:", pw, lines))
		c := mustPaho(t, url, "carol-2", login("carol", "carol-pw"))
		pahoWait(t, c.Publish("hup/2", 1, false, "old file still in force"), "publish")
		if m := waitPaho(t, in); m.payload != "old file still in force" {
			t.Fatalf("alice got %+v", m)
		}
		writeFile(t, pw, string(good))
	})

	t.Run("ACL", func(t *testing.T) {
		carol := mustPaho(t, url, "carol-acl", login("carol", "carol-pw"))
		writeFile(t, acl, strings.Replace(aclText, "topic write hup/#", "topic write hup/allowed", 1))
		n := len(logLines(p, loaded))
		hup(t, p, n+1, loaded)
		// The same connection is now held to the new rules.
		pahoWait(t, carol.Publish("hup/3", 1, false, "denied now"), "publish")
		waitLog(t, p, "Denied PUBLISH from carol-acl (hup/3)")
		pahoWait(t, carol.Publish("hup/allowed", 1, false, "still allowed"), "publish")
		if m := waitPaho(t, in); m.payload != "still allowed" {
			t.Fatalf("alice got %+v, want only the allowed message", m)
		}
		writeFile(t, acl, aclText)
		hup(t, p, n+2, loaded)
	})

	t.Run("TLS certificates", func(t *testing.T) {
		serial := func() string {
			c, err := tls.Dial("tcp", tlsAddr, pki.CA.tlsConfig(certFiles{}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
		}
		if s := serial(); s != pki.Server.Serial.String() {
			t.Fatalf("serial %s before reload, want %s", s, pki.Server.Serial)
		}
		tlsClient := mustPaho(t, "ssl://"+tlsAddr, "tls-before", login("alice", "alice-pw"),
			func(o *mqtt.ClientOptions) { o.SetTLSConfig(pki.CA.tlsConfig(certFiles{})) })
		renewed := pki.CA.server("server") // same files, new serial
		n := len(logLines(p, loaded))
		hup(t, p, n+1, loaded)
		if len(logLines(p, "reloaded TLS certificates")) == 0 {
			t.Fatalf("SIGHUP did not reload the TLS listener's certificate:\n%s", p.out.String())
		}
		if s := serial(); s != renewed.Serial.String() {
			t.Fatalf("serial %s after reload, want the renewed certificate's %s", s, renewed.Serial)
		}
		pahoWait(t, tlsClient.Publish("hup/tls", 1, false, "same TLS connection"), "publish")
		if m := waitPaho(t, in); m.payload != "same TLS connection" {
			t.Fatalf("alice got %+v", m)
		}
	})
}
