package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

func runQueueCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"queue"}, args...))
	err := root.Execute()
	return out.String(), err
}

// fillQueue queues messages through the forwarder's tap, as the hub does.
func fillQueue(t *testing.T, dir string) {
	t.Helper()
	db, err := queue.Open(dir, queue.Options{Logger: slog.New(slog.DiscardHandler), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tap, err := storeforward.NewTap(storeforward.Config{Forward: []storeforward.ForwardRule{
		{Filter: "sensors/#", QoS: 1, RemotePrefix: "sites/a/"},
		{Filter: "alarm/#", QoS: 2, RemotePrefix: "sites/a/", Priority: 10},
	}}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 20)
	for i := range 15 {
		tap.Append(msg.Message{Topic: "sensors/t", Payload: fmt.Appendf(nil, "reading %d", i), QoS: 1, Received: time.Now()}, func(err error) { done <- err })
	}
	for range 3 {
		tap.Append(msg.Message{Topic: "alarm/door", Payload: []byte{0xff, 0x00}, QoS: 2, Received: time.Now()}, func(err error) { done <- err })
	}
	for range 18 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueStatPeekPurge(t *testing.T) {
	dir := t.TempDir()
	fillQueue(t, dir)

	out, err := runQueueCmd(t, "stat", "--data-dir", dir)
	if err != nil {
		t.Fatalf("stat: %v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[0], "LANE") || !strings.HasPrefix(strings.TrimSpace(lines[1]), "p10") ||
		!strings.Contains(lines[1], " 3 ") || !strings.Contains(lines[2], " 15 ") || !strings.Contains(lines[3], " 18 ") {
		t.Fatalf("stat output:\n%s", out)
	}

	out, err = runQueueCmd(t, "peek", "--data-dir", dir, "-n", "2")
	if err != nil {
		t.Fatalf("peek: %v\n%s", err, out)
	}
	for _, want := range []string{"lane p10: 3 queued", "sites/a/alarm/door  q2", "ff 00", "lane p0: 15 queued",
		`sites/a/sensors/t  q1  (9 bytes) "reading 0"`, "... 13 more"} {
		if !strings.Contains(out, want) {
			t.Fatalf("peek output lacks %q:\n%s", want, out)
		}
	}

	out, err = runQueueCmd(t, "purge", "--data-dir", dir, "--lane", "p0")
	var ee exitError
	if !errors.As(err, &ee) || !strings.Contains(out, "would delete 15 queued messages") {
		t.Fatalf("purge without --yes: %v\n%s", err, out)
	}
	out, err = runQueueCmd(t, "purge", "--data-dir", dir, "--lane", "p0", "--yes")
	if err != nil || !strings.Contains(out, "lane p0: deleted 15 messages") {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	out, _ = runQueueCmd(t, "stat", "--data-dir", dir)
	if !strings.Contains(strings.Split(out, "\n")[3], " 3 ") {
		t.Fatalf("after purge of p0:\n%s", out)
	}
}

// TestQueueLockedByRunningHub: the database is open elsewhere (here, in
// this process, as a running outpost would hold it): the command says so.
func TestQueueLockedByRunningHub(t *testing.T) {
	dir := t.TempDir()
	db, err := queue.Open(dir, queue.Options{Logger: slog.New(slog.DiscardHandler), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = runQueueCmd(t, "stat", "--data-dir", dir)
	want := fmt.Sprintf("is open by a running outpost (pid %d); stop it", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to say %q", err, want)
	}
	if _, err := os.Stat(dir + "/db"); err != nil {
		t.Fatalf("the locked database was moved: %v", err)
	}
}
