package mosquittotest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Restart keeps the port and the data directory, and Stop lets mosquitto
// write its persistence file there.
func TestRestartKeepsPortAndDir(t *testing.T) {
	s := Start(t, Options{AllowAnonymous: true, Persistence: true, Extra: []string{"max_queued_messages 0"}})
	addr, port := s.Addr(), s.Port()
	s.Stop()
	if _, err := os.Stat(filepath.Join(s.Dir(), "mosquitto.db")); err != nil {
		t.Errorf("no persistence file after Stop: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after Stop", addr)
	}
	s.Restart()
	if s.Addr() != addr || s.Port() != port {
		t.Fatalf("after Restart: %s, want %s", s.Addr(), addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	c.Close()
	if !strings.Contains(s.Log(), "Opening ipv4 listen socket on port") {
		t.Errorf("log lacks the listener line:\n%s", s.Log())
	}
}

// Every listener gets its own port and its lines; the config is what a
// mosquitto user would write.
func TestListenersAndConfig(t *testing.T) {
	s := Start(t, Options{
		LogTypes:     []string{"error", "warning"},
		PasswordFile: "/dev/null",
		Listeners:    []Listener{{}, {Lines: []string{"max_qos 1"}}},
	})
	if a := s.Addrs(); len(a) != 2 || a[0] == a[1] || a[0] != s.Addr() {
		t.Fatalf("Addrs = %v", a)
	}
	conf, err := os.ReadFile(filepath.Join(s.Dir(), "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"log_type error\nlog_type warning\n", "password_file /dev/null\n",
		"listener " + strings.TrimPrefix(s.AddrOf(1), "127.0.0.1:") + " 127.0.0.1\nmax_qos 1\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "allow_anonymous") {
		t.Errorf("allow_anonymous written without AllowAnonymous:\n%s", conf)
	}
}
