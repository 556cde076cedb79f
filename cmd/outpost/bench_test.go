package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/brokertest"
	"github.com/outpost-iot/outpost/hub/bench"
)

// TestBenchCommand runs `outpost bench fan-in --json` against an
// in-process broker, then `outpost bench table` over its output.
func TestBenchCommand(t *testing.T) {
	srv := brokertest.NewServerConfig(t, brokercore.Config{}, brokercore.Options{Logger: slog.New(slog.DiscardHandler)})
	_, port, _ := net.SplitHostPort(srv.Addr)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("bench", "fan-in", "-p", port, "-q", "1", "-n", "100", "--publishers", "2", "--broker", "outpost", "--round", "1", "--json", "--strict")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	rs, err := bench.ReadResults(strings.NewReader(out))
	if err != nil || len(rs) != 1 {
		t.Fatalf("bench output %q: %d results, %v", out, len(rs), err)
	}
	if r := rs[0]; r.Case != "fan-in qos1" || r.Expected != 200 || r.Received != 200 || r.Lost != 0 || r.Broker != "outpost" {
		t.Fatalf("result %+v", r)
	}
	file := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := run("bench", "table", file)
	if err != nil || !strings.Contains(table, "| fan-in qos1 | msg |") {
		t.Fatalf("table: %v\n%s", err, table)
	}
	if _, err := run("bench", "fan-sideways"); err == nil || !strings.Contains(err.Error(), "fan-in") {
		t.Fatalf("unknown scenario: err = %v, want the list of scenarios", err)
	}
	if _, err := run("bench", "connections", "-p", port, "-k", "70000"); err == nil || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("keep alive past 65535 s: err = %v, want one naming keepalive", err)
	}
	if out, err := run("bench", "connections", "-p", port, "-n", "20", "-k", "0", "--strict"); err != nil {
		t.Fatalf("bench connections -k 0 (no keep alive): %v\n%s", err, out)
	}
}
