// Package mosquittotest runs a real Debian mosquitto (/usr/sbin/mosquitto)
// on 127.0.0.1 for one test: the stand-in cloud broker and the reference
// broker that Outpost's tests compare against.
//
// Start writes a mosquitto.conf into a temporary directory, gives every
// listener a free loopback port (unless the caller chose one), starts the
// broker, and polls until every listener accepts a TCP connection. The
// broker is stopped when the test ends; its log is kept in memory and
// printed if the test failed. Stop and Restart end and start it again on
// the same ports with the same data directory, as a cloud that goes away
// and comes back does. Tests skip, naming the package to install, when
// mosquitto is missing (test/run.sh installs it).
//
// The package uses the standard library only, so any package's tests may
// import it.
package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bin is where Debian's mosquitto package installs the broker.
const Bin = "/usr/sbin/mosquitto"

// startTimeout bounds the wait for every listener to accept, and for a
// stopped broker to exit before it is killed.
const startTimeout = 10 * time.Second

// TLSFiles are a listener's certificate settings (mosquitto.conf(5)
// "Certificate based SSL/TLS Support").
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
	// RequireCertificate makes the listener demand a client certificate
	// signed by CAFile (require_certificate true).
	RequireCertificate bool
}

// Listener is one "listener <port> 127.0.0.1" section.
type Listener struct {
	// Port is the listener's port; 0 picks a free one.
	Port int
	// TLS, if set, makes the listener a TLS one.
	TLS *TLSFiles
	// Lines are raw configuration lines written after the listener line
	// (protocol websockets, max_qos 1, ...).
	Lines []string
}

// Options says how to configure the broker. The zero value is one plain
// loopback listener on a free port, no persistence, anonymous clients
// refused (mosquitto 2's default) and every log type captured.
type Options struct {
	// AllowAnonymous writes "allow_anonymous true".
	AllowAnonymous bool
	// Persistence writes "persistence true" with the data directory as
	// persistence_location.
	Persistence bool
	// AutosaveInterval, if positive, is autosave_interval in seconds.
	AutosaveInterval int
	// Dir is the data directory (mosquitto.conf and the persistence file);
	// empty means a fresh t.TempDir(). Pass the same Dir to a second Start
	// to reuse a persistence file across brokers.
	Dir string
	// PasswordFile and ACLFile, if set, are written as password_file and
	// acl_file.
	PasswordFile, ACLFile string
	// LogTypes are the log_type lines; nil means "all".
	LogTypes []string
	// NoDelay writes "set_tcp_nodelay true" (benchmarks).
	NoDelay bool
	// Extra are raw global configuration lines, written before the
	// listeners.
	Extra []string
	// Listeners are the listener sections; nil means one plain listener
	// on a free port.
	Listeners []Listener
}

// Server is a running (or stopped) mosquitto.
type Server struct {
	tb    testing.TB
	bin   string
	dir   string
	conf  string
	ports []int

	mu   sync.Mutex // guards cmd and exit
	cmd  *exec.Cmd
	exit chan error

	logMu sync.Mutex
	log   bytes.Buffer
}

// Needed returns the path of the mosquitto binary, or skips the test
// when it is not installed.
func Needed(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat(Bin); err == nil {
		return Bin
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	tb.Skipf("mosquitto not installed at %s (test/run.sh installs it; apt-get install -y mosquitto)", Bin)
	return ""
}

// Start configures and runs mosquitto, waits until every listener accepts,
// and stops it when the test ends. It skips the test if mosquitto is not
// installed.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: Needed(tb), dir: opts.Dir}
	if s.dir == "" {
		s.dir = tb.TempDir()
	}
	listeners := opts.Listeners
	if len(listeners) == 0 {
		listeners = []Listener{{}}
	}
	for _, l := range listeners {
		port := l.Port
		if port == 0 {
			port = freePort(tb)
		}
		s.ports = append(s.ports, port)
	}
	s.conf = filepath.Join(s.dir, "mosquitto.conf")
	if err := os.WriteFile(s.conf, []byte(s.config(opts, listeners)), 0o600); err != nil {
		tb.Fatalf("write mosquitto config: %v", err)
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("mosquitto log (%s):\n%s", s.conf, s.Log())
		}
	})
	s.start()
	for _, p := range s.ports {
		if p == 1883 {
			return s
		}
	}
	if strings.Contains(s.Log(), "socket on port 1883.") {
		tb.Fatalf("a listener-only option among the global settings opened the default port 1883:\n%s", s.Log())
	}
	return s
}

// config renders mosquitto.conf.
func (s *Server) config(opts Options, listeners []Listener) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	// Run as root when root: else mosquitto drops to user mosquitto and
	// cannot read t.TempDir(). Ignored when not started as root.
	line("user root")
	line("log_dest stderr")
	types := opts.LogTypes
	if types == nil {
		types = []string{"all"}
	}
	for _, t := range types {
		line("log_type %s", t)
	}
	if opts.AllowAnonymous {
		line("allow_anonymous true")
	}
	if opts.Persistence {
		line("persistence true")
		line("persistence_location %s/", s.dir)
	} else {
		line("persistence false")
	}
	if opts.AutosaveInterval > 0 {
		line("autosave_interval %d", opts.AutosaveInterval)
	}
	if opts.NoDelay {
		line("set_tcp_nodelay true")
	}
	if opts.PasswordFile != "" {
		line("password_file %s", opts.PasswordFile)
	}
	if opts.ACLFile != "" {
		line("acl_file %s", opts.ACLFile)
	}
	for _, l := range opts.Extra {
		line("%s", l)
	}
	for i, l := range listeners {
		line("listener %d 127.0.0.1", s.ports[i])
		if l.TLS != nil {
			line("cafile %s", l.TLS.CAFile)
			line("certfile %s", l.TLS.CertFile)
			line("keyfile %s", l.TLS.KeyFile)
			if l.TLS.RequireCertificate {
				line("require_certificate true")
			}
		}
		for _, x := range l.Lines {
			line("%s", x)
		}
	}
	return b.String()
}

// freePort asks the kernel for a loopback port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Write appends mosquitto's output to the log.
func (s *Server) Write(p []byte) (int, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.Write(p)
}

// Log returns everything mosquitto has logged so far, across restarts.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// Addr is host:port of the first listener.
func (s *Server) Addr() string { return s.AddrOf(0) }

// URL is mqtt://host:port of the first listener.
func (s *Server) URL() string { return "mqtt://" + s.Addr() }

// Port is the first listener's port.
func (s *Server) Port() int { return s.ports[0] }

// AddrOf is host:port of listener i, in the order of Options.Listeners.
func (s *Server) AddrOf(i int) string { return "127.0.0.1:" + strconv.Itoa(s.ports[i]) }

// Addrs are every listener's host:port, in the order of Options.Listeners.
func (s *Server) Addrs() []string {
	a := make([]string, len(s.ports))
	for i := range s.ports {
		a[i] = s.AddrOf(i)
	}
	return a
}

// Dir is the data directory (mosquitto.conf, persistence file).
func (s *Server) Dir() string { return s.dir }

// start runs mosquitto and polls until every listener accepts.
func (s *Server) start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = s, s
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start %s -c %s: %v", s.bin, s.conf, err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(startTimeout)
	for i := range s.ports {
		for {
			c, err := net.DialTimeout("tcp", s.AddrOf(i), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case werr := <-exit:
				s.cmd = nil
				s.tb.Fatalf("mosquitto exited at start: %v\n%s", werr, s.Log())
			default:
			}
			if time.Now().After(deadline) {
				s.tb.Fatalf("mosquitto not listening on %s after %v: %v\n%s", s.AddrOf(i), startTimeout, err, s.Log())
			}
			time.Sleep(10 * time.Millisecond) // poll interval, bounded by the deadline
		}
	}
}

// Stop ends mosquitto with SIGINT, so that it saves its persistence file,
// and waits for it to exit (killing it after 10s). It does nothing if the
// broker is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exit:
	case <-time.After(startTimeout):
		s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Kill ends mosquitto with SIGKILL, as a power cut does: nothing since its
// last autosave is written. It does nothing if the broker is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// Restart stops mosquitto if it is running and starts it again with the
// same configuration, ports and data directory, waiting until every
// listener accepts.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}
