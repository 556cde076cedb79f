package queue

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKill9KeepsEveryAckedRecord runs a child process (this test binary)
// that appends records from 16 goroutines and prints the sequence of every
// acknowledged one, kills it with SIGKILL mid-stream, reopens the database
// and checks every acknowledged record is there, intact, and the lane's
// accounting matches what is stored.
func TestKill9KeepsEveryAckedRecord(t *testing.T) {
	if dir := os.Getenv("OUTPOST_QUEUE_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	acked := runCrashChild(t, dir, 20000)

	db := openTest(t, dir, Options{})
	stored := map[string]bool{}
	recs := readAll(t, db, "crash")
	var bytes int64
	for _, r := range recs {
		stored[string(r.Value)] = true
		bytes += int64(len(r.Value) + recHeader)
	}
	for _, name := range acked {
		if !stored[name] {
			t.Fatalf("acknowledged record %q lost after kill -9 (%d acked, %d stored)", name, len(acked), len(recs))
		}
	}
	if st := db.Stat("crash"); st.Depth != int64(len(recs)) || st.Bytes != bytes {
		t.Fatalf("lane state %+v does not match %d stored records of %d bytes", st, len(recs), bytes)
	}
	// The lane goes on where it stopped.
	mustAppend(t, db, "crash", "after")
	t.Logf("%d acknowledged before kill -9, %d stored after", len(acked), len(recs))
}

// runCrashChild runs the crash child on dir until it has acknowledged n
// records, kills it with SIGKILL and returns the acknowledged records.
func runCrashChild(t *testing.T, dir string, n int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsEveryAckedRecord$")
	cmd.Env = append(os.Environ(), "OUTPOST_QUEUE_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < n {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "ack" {
			acked = append(acked, f[1]+"/"+f[2]) // producer/index, the record's content
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(acked) < n/2 {
		t.Fatalf("child acknowledged only %d records before the kill", len(acked))
	}
	return acked
}

func crashChild(dir string) {
	db, err := Open(dir, Options{Logger: testLogger(nil)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	lines := make(chan string, 4096)
	go func() {
		for l := range lines {
			w.WriteString(l)
			w.Flush()
		}
	}()
	for p := range 16 {
		go func() {
			for i := 0; ; i++ {
				name := strconv.Itoa(p) + " " + strconv.Itoa(i)
				if err := db.AppendSync("crash", []byte(strings.Replace(name, " ", "/", 1))); err != nil {
					lines <- "error " + err.Error() + "\n"
					return
				}
				lines <- "ack " + name + "\n"
			}
		}()
	}
	time.Sleep(time.Minute) // killed long before
	os.Exit(2)
}
