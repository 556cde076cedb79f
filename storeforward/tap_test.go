package storeforward

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

func tapDB(t *testing.T, o queue.Options) *queue.DB {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	db, err := queue.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func tapCfg(rules ...ForwardRule) Config { return Config{Forward: rules} }

// appendSync calls tap.Append and waits for done.
func appendSync(tap msg.Tap, m msg.Message) error {
	ch := make(chan error, 1)
	tap.Append(m, func(err error) { ch <- err })
	return <-ch
}

func queued(t *testing.T, db *queue.DB, lane string) []Record {
	t.Helper()
	recs, err := db.Read(lane, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, qr := range recs {
		r, err := DecodeRecord(qr.Value)
		if err != nil {
			t.Fatalf("lane %s seq %d: %v", lane, qr.Seq, err)
		}
		out = append(out, r)
	}
	return out
}

func TestTapWants(t *testing.T) {
	tap, err := NewTap(tapCfg(ForwardRule{Filter: "sensors/#", QoS: 1}, ForwardRule{Filter: "+/alarm", QoS: 2}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{
		"sensors": true, "sensors/mast/t": true, "site/alarm": true,
		"site/alarm/x": false, "other": false, "$SYS/broker/uptime": false, "$x/alarm": false,
	} {
		m := msg.Message{Topic: topic}
		if got := tap.Wants(&m); got != want {
			t.Errorf("Wants(%q) = %v, want %v", topic, got, want)
		}
	}
	m := msg.Message{Topic: "sensors/a"}
	if n := testing.AllocsPerRun(100, func() { tap.Wants(&m) }); n != 0 {
		t.Errorf("Wants allocates %v times", n)
	}
}

func TestTapQueuesDurablyWithEveryField(t *testing.T) {
	db := tapDB(t, queue.Options{})
	tap, err := NewTap(tapCfg(
		ForwardRule{Filter: "sensors/#", QoS: 1, RemotePrefix: "sites/p7/"},
		ForwardRule{Filter: "#", QoS: 2, RemotePrefix: "all/", Priority: 5},
	), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := time.Unix(1_764_000_000, 42)
	m := msg.Message{Topic: "sensors/mast", Payload: []byte("21.5"), QoS: 2, Retain: true, ClientID: "bme",
		Received: recv, PayloadFormat: 1, MessageExpiry: time.Hour, ContentType: "text/plain",
		ResponseTopic: "r", CorrelationData: []byte("c"), UserProperties: []msg.UserProperty{{Key: "unit", Value: "C"}}}
	before := time.Now()
	if err := appendSync(tap, m); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	// First matching rule wins: not also queued by "#".
	if got := queued(t, db, LaneName(5)); len(got) != 0 {
		t.Fatalf("second rule also took it: %+v", got)
	}
	got := queued(t, db, "p0")
	if len(got) != 1 {
		t.Fatalf("lane p0 holds %d records", len(got))
	}
	want := RecordFromMessage(&m, "sites/p7/sensors/mast", 1) // min(rule 1, publish 2)
	// A message with an expiry records how long after its receive time it
	// was queued (for its expiry, measured in queue time by the uplink).
	if qa := got[0].QueuedAfter; qa < before.Sub(recv) || qa > after.Sub(recv) {
		t.Fatalf("queued after %v, want between %v and %v", qa, before.Sub(recv), after.Sub(recv))
	}
	want.QueuedAfter = got[0].QueuedAfter
	if !equalRecords(got[0], want) {
		t.Fatalf("queued\n %+v\nwant %+v", got[0], want)
	}
	// The other rule: its own lane, QoS min(2, 0) = 0.
	if err := appendSync(tap, msg.Message{Topic: "misc", Payload: []byte("x"), QoS: 0, Received: recv}); err != nil {
		t.Fatal(err)
	}
	waitTap(t, "QoS 0 record queued", func() bool { return db.Stat(LaneName(5)).Depth == 1 })
	r := queued(t, db, LaneName(5))[0]
	if r.Topic != "all/misc" || r.QoS != 0 {
		t.Fatalf("QoS 0 record %+v", r)
	}
	if s := tap.Stats(); s.Appended != 2 || s.Failed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTapKeepsOrderPerLane(t *testing.T) {
	db := tapDB(t, queue.Options{})
	tap, err := NewTap(tapCfg(ForwardRule{Filter: "#", QoS: 1}), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		// As the broker does: calls in acceptance order, acks later.
		tap.Append(msg.Message{Topic: "t", Payload: []byte(fmt.Sprint(i)), QoS: 1}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	for i, r := range queued(t, db, "p0") {
		if string(r.Payload) != fmt.Sprint(i) || r.Received.IsZero() {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

// heldQueue is a fake queue that holds every append until released.
type heldQueue struct {
	mu    sync.Mutex
	dones []func(error)
}

func (q *heldQueue) Append(lane string, rec []byte, done func(error)) {
	q.mu.Lock()
	q.dones = append(q.dones, done)
	q.mu.Unlock()
}

func (q *heldQueue) release(err error) {
	q.mu.Lock()
	d := q.dones
	q.dones = nil
	q.mu.Unlock()
	for _, f := range d {
		f(err)
	}
}

func TestTapQoS0DoesNotWaitUnlessDurable(t *testing.T) {
	for _, durable := range []bool{false, true} {
		q := &heldQueue{}
		cfg := tapCfg(ForwardRule{Filter: "#", QoS: 1})
		cfg.Queue.DurableQoS0 = durable
		tap, err := NewTap(cfg, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		var qos0, qos1 []error
		var mu sync.Mutex
		tap.Append(msg.Message{Topic: "a", QoS: 0}, func(err error) { mu.Lock(); qos0 = append(qos0, err); mu.Unlock() })
		tap.Append(msg.Message{Topic: "a", QoS: 1}, func(err error) { mu.Lock(); qos1 = append(qos1, err); mu.Unlock() })
		mu.Lock()
		if (len(qos0) == 1) == durable || len(qos1) != 0 {
			t.Fatalf("durable_qos0=%v before the sync: qos0 done %d times, qos1 %d", durable, len(qos0), len(qos1))
		}
		mu.Unlock()
		q.release(errors.New("sync failed"))
		if len(qos0) != 1 || len(qos1) != 1 || qos1[0] == nil || (qos0[0] != nil) != durable {
			t.Fatalf("durable_qos0=%v after a failed sync: qos0 %v, qos1 %v", durable, qos0, qos1)
		}
		if s := tap.Stats(); s.Failed != 2 {
			t.Fatalf("stats %+v", s)
		}
	}
}

func TestTapRefusalReachesPublisher(t *testing.T) {
	db := tapDB(t, queue.Options{Policy: queue.Policy{MaxBytes: 200, WhenFull: queue.Reject}})
	tap, err := NewTap(tapCfg(ForwardRule{Filter: "#", QoS: 1}), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 120)
	if err := appendSync(tap, msg.Message{Topic: "t", Payload: payload, QoS: 1}); err != nil {
		t.Fatal(err)
	}
	err = appendSync(tap, msg.Message{Topic: "t", Payload: payload, QoS: 1})
	if !errors.Is(err, msg.ErrQuotaExceeded) || !strings.Contains(err.Error(), `"t"`) {
		t.Fatalf("append to a full queue: %v", err)
	}
	if s := tap.Stats(); s.Failed != 1 || s.Appended != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewTapRejectsBadRules(t *testing.T) {
	for _, r := range []ForwardRule{
		{Filter: "a/#/b", QoS: 1},
		{Filter: "", QoS: 1},
		{Filter: "a", QoS: 3},
		{Filter: "a", QoS: 1, RemotePrefix: "x/#/"},
		{Filter: "$share/g/a", QoS: 1},
	} {
		if _, err := NewTap(tapCfg(r), nil, nil); err == nil || !strings.Contains(err.Error(), "uplink.forward[0]") {
			t.Errorf("rule %+v: err %v", r, err)
		}
	}
}

func waitTap(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
