package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEventsOutliveServerTimeouts: an /api/events stream keeps going past
// the server's read and write timeouts (the hub sets 30 s for both).
func TestEventsOutliveServerTimeouts(t *testing.T) {
	b := newFakeBroker()
	c, err := New(newFakeParts().sources(b), Options{Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewUnstartedServer(c)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ch := readEvents(t, resp.Body)
	waitEvent(t, ch, "overview", 2*time.Second, func(string) bool { return true })
	// Well past both timeouts the stream still delivers.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		waitEvent(t, ch, "overview", 2*time.Second, func(string) bool { return true })
	}
}

// TestImportsStaySmall: the console reads the parts only through Sources;
// of Outpost it imports brokercore/msg and brokercore/auth (and topic,
// which auth uses), never the parts (DESIGN.md package table).
func TestImportsStaySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/outpost-iot/outpost/"
	allowed := map[string]bool{mod + "brokercore/msg": true, mod + "brokercore/auth": true, mod + "brokercore/topic": true, mod + "hub/console": true}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, mod) && !allowed[p] {
			t.Errorf("hub/console depends on %s", p)
		}
	}
}
