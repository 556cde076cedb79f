package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outpostBin is the real binary, built once by TestMain.
var outpostBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outpostBin = filepath.Join(dir, "outpost")
	build := exec.Command("go", "build", "-o", outpostBin, "github.com/outpost-iot/outpost/cmd/outpost")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build outpost:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running outpost process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	cfgPath string
	dataDir string
	out     *syncBuffer
	done    chan struct{}
	waitErr error
}

// syncBuffer collects a process's output for the test to read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startOutpost writes cfg (YAML; "%DATA%" is replaced by a fresh data
// directory) and runs `outpost run -c` on it with args, waiting until the
// start-up summary has been printed. The process is stopped by t.Cleanup.
func startOutpost(t testing.TB, cfg string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	return startOutpostIn(t, dir, data, cfg, args...)
}

func startOutpostIn(t testing.TB, dir, data, cfg string, args ...string) *proc {
	t.Helper()
	return startOutpostEnv(t, dir, data, cfg, nil, args...)
}

// startOutpostEnv is startOutpostIn with extra environment variables
// ("NAME=value") for the process.
func startOutpostEnv(t testing.TB, dir, data, cfg string, env []string, args ...string) *proc {
	t.Helper()
	cfgPath := filepath.Join(dir, "outpost.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(cfg, "%DATA%", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cfgPath: cfgPath, dataDir: data, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(outpostBin, append([]string{"run", "-c", cfgPath}, args...)...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start outpost: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	p.waitFor("MQTT broker listening on", 20*time.Second)
	return p
}

// waitFor polls the output until it contains s.
func (p *proc) waitFor(s string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.out.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("outpost exited (%v) before printing %q; output:\n%s", p.waitErr, s, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("outpost did not print %q within %v; output:\n%s", s, d, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var addrRE = regexp.MustCompile(`(?m)^(.+?) listening on (\S+)`)

// addr returns the address printed for the part whose summary line starts
// with prefix, e.g. "MQTT broker".
func (p *proc) addr(prefix string) string {
	p.t.Helper()
	// The summary may still be arriving when the broker's first line has.
	for deadline := time.Now().Add(10 * time.Second); !time.Now().After(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range addrRE.FindAllStringSubmatch(p.out.String(), -1) {
			if strings.HasPrefix(m[1], prefix) {
				return m[2]
			}
		}
	}
	p.t.Fatalf("no %q address in output within 10s:\n%s", prefix, p.out.String())
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("outpost did not stop within 30s after SIGTERM")
	}
}

// kill9 kills the process with SIGKILL, as a power cut would.
func (p *proc) kill9() {
	p.cmd.Process.Kill()
	<-p.done
}

// eventually polls f until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// lines reads r line by line into a channel until it closes.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

var _ = context.Background
