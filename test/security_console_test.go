package test

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/hub/console"
)

// Security of the web console through the real binary: its TLS
// certificate follows SIGHUP like the broker's, and a logged-in user
// publishes under the broker's ACL.

// TestSecurityConsoleTLSReload: the web console's certificate is re-read
// on SIGHUP like the listeners' (a renewed certificate is served to new
// connections), and a broken file keeps the old one in force.
func TestSecurityConsoleTLSReload(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	cert := pki.CA.server("console")
	cfg := strings.Replace(secConfig("  listeners:\n"+plainListener), `http: {listen: "off"}`,
		fmt.Sprintf("http:\n  listen: \"127.0.0.1:0\"\n  tls: {cert_file: %q, key_file: %q}", cert.Cert, cert.Key), 1)
	if !strings.Contains(cfg, "cert_file") {
		t.Fatalf("secConfig no longer has http: {listen: \"off\"}:\n%s", cfg)
	}
	p := startOutpost(t, cfg)
	web := p.addr("web console")
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", web, pki.CA.tlsConfig(certFiles{}))
		if err != nil {
			t.Fatalf("console TLS: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if s := serial(); s != cert.Serial.String() {
		t.Fatalf("console serves serial %s, want %s", s, cert.Serial)
	}
	renewed := pki.CA.server("console") // same files, new serial
	hup(t, p, 1, "reloaded console TLS certificate")
	if s := serial(); s != renewed.Serial.String() {
		t.Fatalf("console serves serial %s after SIGHUP, want the renewed %s", s, renewed.Serial)
	}
	writeFile(t, renewed.Cert, "not a certificate\n")
	hup(t, p, 1, "reload console TLS (keeping the old certificate)")
	waitLog(t, p, "keeping the old certificate", renewed.Cert)
	if s := serial(); s != renewed.Serial.String() {
		t.Fatalf("console serves serial %s after a broken reload, want %s still", s, renewed.Serial)
	}
}

// TestSecurityConsolePublishUnderACL: a user logged in to the web console
// publishes with the rights the broker's ACL gives that user, as with
// mosquitto_pub -u: a topic the ACL lets them write is published, one it
// does not is refused with 403 and never reaches a subscriber.
func TestSecurityConsolePublishUnderACL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	mosquittoPasswd(t, "-c", "-b", pw, "alice", "alice-pw")
	mosquittoPasswd(t, "-b", pw, "ops", "ops-pw")
	acl := filepath.Join(dir, "acl")
	writeFile(t, acl, "user alice\ntopic write sites/#\nuser ops\ntopic read #\n")
	cfg := strings.Replace(secConfig("  allow_anonymous: false\n  password_file: "+pw+"\n  acl_file: "+acl+"\n  listeners:\n"+plainListener),
		`http: {listen: "off"}`, "http:\n  listen: \"127.0.0.1:0\"\n  users: [alice]", 1)
	p := startOutpost(t, cfg)
	addr := brokerAddrs(t, p, 1)[0]
	ops := mustPaho(t, "tcp://"+addr, "ops-sub", func(o *mqtt.ClientOptions) { o.SetUsername("ops").SetPassword("ops-pw") })
	valves := pahoSubscribe(t, ops, "valves/#", 1)
	sites := pahoSubscribe(t, ops, "sites/#", 1)

	c := newConsoleClient(t, p.addr("web console"))
	var sess console.Session
	if st := c.post("/api/login", `{"username":"alice","password":"alice-pw"}`, &sess); st != 200 || sess.CSRF == "" {
		t.Fatalf("console login: status %d, session %+v", st, sess)
	}
	c.csrf = sess.CSRF
	if st := c.post("/api/actions/publish", `{"topic":"valves/3/open","payload":"1","confirm":true}`, nil); st != 403 {
		t.Fatalf("publish to a topic alice may not write: status %d, want 403", st)
	}
	waitLog(t, p, "console publish refused", "user=alice", "valves/3/open")
	if st := c.post("/api/actions/publish", `{"topic":"sites/mast/note","payload":"checked","qos":1,"confirm":true}`, nil); st != 200 {
		t.Fatalf("publish to alice's own topic: status %d, want 200", st)
	}
	if m := waitPaho(t, sites); m.topic != "sites/mast/note" || m.payload != "checked" {
		t.Fatalf("subscriber got %+v, want sites/mast/note", m)
	}
	// Published in order to one subscriber: had the refused message been
	// published, it would have arrived before this one.
	select {
	case m := <-valves:
		t.Fatalf("the refused message reached a subscriber: %+v", m)
	default:
	}
}
