package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/configs"
)

func runConfig(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newConfigCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

func TestConfigCheckOK(t *testing.T) {
	p := filepath.Join(t.TempDir(), "outpost.yaml")
	os.WriteFile(p, []byte("broker:\n  listeners:\n    - address: \"127.0.0.1:1883\"\n"), 0o644)
	out, errOut, err := runConfig(t, "check", "-c", p)
	if err != nil || out != p+": OK\n" || errOut != "" {
		t.Fatalf("check = %q, %q, %v", out, errOut, err)
	}
}

func TestConfigCheckPrintsEveryError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "outpost.yaml")
	os.WriteFile(p, []byte("broker:\n  listners: []\nuplink:\n  queue: {when_full: drop_newest}\n"), 0o644)
	out, errOut, err := runConfig(t, "check", "-c", p)
	want := p + ":2: broker.listners: unknown key; did you mean broker.listeners?\n" +
		p + ":4: uplink.queue.when_full: \"drop_newest\": must be drop_oldest or reject\n"
	if err == nil || err.Error() != p+": 2 problems" || errOut != want || out != "" {
		t.Fatalf("check = stdout %q, stderr %q, err %v\nwant stderr %q", out, errOut, err, want)
	}
}

func TestConfigCheckPositionalAndPrint(t *testing.T) {
	p := filepath.Join(t.TempDir(), "outpost.yaml")
	os.WriteFile(p, []byte("log: {level: debug}\n"), 0o644)
	out, _, err := runConfig(t, "check", "--print", p)
	if err != nil || out != p+": OK\nlog:\n  level: debug\n" {
		t.Fatalf("check --print = %q, %v", out, err)
	}
}

func TestConfigCheckPackagedFile(t *testing.T) {
	out, errOut, err := runConfig(t, "check", "-c", "../../systemd/outpost.yaml")
	if err != nil || !strings.HasSuffix(out, ": OK\n") {
		t.Fatalf("packaged config: %q %q %v", out, errOut, err)
	}
}

func TestConfigExample(t *testing.T) {
	out, _, err := runConfig(t, "example")
	if err != nil || out != string(configs.Example()) {
		t.Fatalf("example = %d bytes, %v", len(out), err)
	}
}
