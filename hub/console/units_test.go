package console

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

func TestRing(t *testing.T) {
	r := newRing(time.Minute, 3)
	t0 := time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC)
	r.add(t0, 1)
	r.add(t0.Add(30*time.Second), 3) // same bucket: mean 2
	r.add(t0.Add(-time.Minute), 100) // older than the newest bucket: dropped
	r.add(t0.Add(time.Minute), 5)
	r.add(t0.Add(2*time.Minute), 6)
	r.add(t0.Add(3*time.Minute), 7) // full: the first bucket goes
	got := r.points(time.Time{})
	want := [][2]float64{{float64(t0.Add(time.Minute).Unix()), 5}, {float64(t0.Add(2 * time.Minute).Unix()), 6}, {float64(t0.Add(3 * time.Minute).Unix()), 7}}
	if len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Fatalf("points = %v, want %v", got, want)
	}
	if p := r.points(t0.Add(2 * time.Minute)); len(p) != 2 {
		t.Errorf("points since = %v", p)
	}
	r2 := newRing(time.Minute, 3)
	r2.add(t0, 1)
	r2.add(t0.Add(time.Second), 3)
	if v, _ := r2.last(); v != 2 {
		t.Errorf("bucket mean = %v, want 2", v)
	}
}

// TestParseReading reads the adapters' payload (adapters.AppendPayload).
func TestParseReading(t *testing.T) {
	r, ok := parseReading([]byte(`{"time":"2026-11-28T13:05:00.000Z","temperature":{"value":21.5,"unit":"°C"},"state":{"value":1},"bad":{"value":null}}`))
	if !ok || !r.Time.Equal(time.Date(2026, 11, 28, 13, 5, 0, 0, time.UTC)) || len(r.Values) != 2 ||
		r.Values[0] != (Value{"temperature", 21.5, "°C"}) || r.Values[1] != (Value{"state", 1, ""}) {
		t.Fatalf("parseReading = %+v %v", r, ok)
	}
	for _, p := range []string{``, `21.5`, `online`, `{"time":"x"}`, `{"a":`} {
		if _, ok := parseReading([]byte(p)); ok {
			t.Errorf("parseReading(%q) accepted", p)
		}
	}
}

func TestTopicPayloads(t *testing.T) {
	s := newTopicStore(10)
	now := time.Now()
	long := strings.Repeat("é", 200) // 400 bytes: cut inside a rune at 256
	s.update(&msg.Message{Topic: "a", Payload: []byte(long)}, now)
	e := s.byName["a"]
	if !e.Truncated || e.Base64 || len(e.Payload) != 256 || e.Size != 400 {
		t.Fatalf("long UTF-8 payload: truncated %v base64 %v len %d", e.Truncated, e.Base64, len(e.Payload))
	}
	// The rate decays: one message a minute ago counts less than one now.
	s.update(&msg.Message{Topic: "b"}, now.Add(-time.Minute))
	if r := s.byName["b"].snapshot(now).Rate; r <= 0 || r >= 1/rateTau {
		t.Errorf("decayed rate = %v", r)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:9883": true, "[::1]:9883": true, "localhost:1": true, ":9883": false, "0.0.0.0:9883": false, "192.168.1.5:80": false, "bad": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}
