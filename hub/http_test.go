package hub

import (
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/hub/console"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// TestConsoleQueueAdapters runs peek, purge and the queue state against a
// real database with records the way the tap writes them.
func TestConsoleQueueAdapters(t *testing.T) {
	db, err := queue.Open(t.TempDir(), queue.Options{Logger: slog.New(slog.DiscardHandler), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	add := func(lane, topic string, payload []byte) {
		r := storeforward.RecordFromMessage(&msg.Message{Topic: topic, Payload: payload, QoS: 1, Received: time.Now()}, "cloud/"+topic, 1)
		b, err := storeforward.AppendRecord(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AppendSync(lane, b); err != nil {
			t.Fatal(err)
		}
	}
	add("p0", "sensors/a", []byte("21.5"))
	add("p0", "sensors/b", []byte{0xff, 0x00})
	add("p10", "site/alarm", []byte("fire"))
	if err := db.AppendSync("p0", []byte("not a record")); err != nil {
		t.Fatal(err)
	}

	recs, err := peekQueue(db, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	// Highest priority lane first, then p0 in order; the bad record named.
	if len(recs) != 4 || recs[0].Lane != "p10" || recs[0].Topic != "cloud/site/alarm" || recs[0].Payload != "fire" ||
		recs[1].Topic != "cloud/sensors/a" || recs[2].Payload != "/wA=" || !recs[2].Base64 || recs[3].Error == "" {
		t.Fatalf("peek = %+v", recs)
	}
	if recs, _ := peekQueue(db, "p0", 1); len(recs) != 1 || recs[0].Seq != 1 {
		t.Errorf("peek p0 n=1 = %+v", recs)
	}
	if _, err := peekQueue(db, "p7", 1); err == nil {
		t.Error("peek of an unknown lane: no error")
	}

	st := &httpState{}
	q := st.queueState(db)
	if q.Depth != 4 || len(q.Lanes) != 2 || q.Lanes[0].Lane != "p10" || q.Appends != 4 || q.DiskBytes <= 0 {
		t.Errorf("queue state = %+v", q)
	}

	n, err := purgeQueue(db, "p10")
	if err != nil || n != 1 || db.Stat("p10").Depth != 0 || db.Stat("p0").Depth != 3 {
		t.Fatalf("purge p10 = %d, %v; depths %d %d", n, err, db.Stat("p10").Depth, db.Stat("p0").Depth)
	}
	if n, err := purgeQueue(db, ""); err != nil || n != 3 || db.Stat("p0").Depth != 0 {
		t.Fatalf("purge all = %d, %v", n, err)
	}
	if _, err := purgeQueue(db, "nope"); err == nil {
		t.Error("purge of an unknown lane: no error")
	}
}

func TestUplinkStateConversion(t *testing.T) {
	now := time.Now()
	u := uplinkState(storeforward.Status{State: storeforward.StateConnected, URL: "mqtts://c:8883", LastConnect: now,
		LastError: "eof", Connects: 2, InFlight: 3, Sent: 10, Acked: 7, Rejected: 1, Refused: 1}, true)
	if !u.Enabled || u.State != "connected" || !u.LastConnect.Equal(now) || u.LastError != "eof" || u.InFlight != 3 || u.Rejected != 2 {
		t.Errorf("uplinkState = %+v", u)
	}
	q := queueFromUplink(consoleQueue(5), storeforward.QueueStatus{Rate: 2.5, ETA: 2 * time.Second})
	if q.Rate != 2.5 || time.Duration(q.ETA) != 2*time.Second || q.Depth != 5 {
		t.Errorf("queueFromUplink = %+v", q)
	}
	h := &Hub{}
	if s := h.consoleUplink(); s.State != storeforward.StateDisabled || s.Enabled {
		t.Errorf("disabled uplink = %+v", s)
	}
	h.cfg.Uplink.Enabled = true
	if s := h.consoleUplink(); s.State == storeforward.StateConnected || s.LastError == "" {
		t.Errorf("enabled but not running uplink = %+v", s)
	}
}

func consoleQueue(depth int64) console.QueueState { return console.QueueState{Depth: depth} }
