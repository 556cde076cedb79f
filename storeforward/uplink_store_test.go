package storeforward

import (
	"log/slog"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

func pubEntry(seq uint64, id uint16, qos byte, tag uint64) client.Entry {
	return client.Entry{Seq: seq, Dir: client.Outgoing, Tag: tag,
		Packet: &packet.Publish{PacketID: id, QoS: qos, Topic: "t", Payload: []byte("p")}}
}

func relEntry(seq uint64, id uint16, tag uint64) client.Entry {
	return client.Entry{Seq: seq, Dir: client.Outgoing, Tag: tag, Packet: &packet.Ack{PacketType: packet.PUBREL, PacketID: id}}
}

// storeWithRecords appends n records to lane and opens the session store.
func storeWithRecords(t *testing.T, db *queue.DB, lane string, n int) *sessionStore {
	t.Helper()
	for range n {
		if err := db.AppendSync(lane, []byte("rec")); err != nil {
			t.Fatal(err)
		}
	}
	s, err := openSessionStore(db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSessionStoreDurability: QoS 2 state survives a reopen with its lane
// and seq, QoS 1 state does not (the queue record is its durable copy),
// and the end of an exchange acknowledges its record in the same
// transaction that removes the state.
func TestSessionStoreDurability(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	s := storeWithRecords(t, db, "p5", 4)
	must := func(err error) { mustOK(t, err) }
	var err error
	must(s.Put(pubEntry(1, 10, 1, s.tag("p5", 1))))
	must(s.Put(pubEntry(2, 11, 2, s.tag("p5", 2))))
	must(s.Put(pubEntry(3, 12, 2, s.tag("p5", 3))))
	must(s.Put(relEntry(4, 12, s.tag("p5", 3)))) // PUBREC for 12
	must(s.Put(client.Entry{Seq: 5, Dir: client.Incoming, Packet: &packet.Ack{PacketType: packet.PUBREC, PacketID: 7}}))
	if !s.holds(s.tag("p5", 1)) || s.outgoing() != 3 {
		t.Fatalf("holds/outgoing wrong: %d", s.outgoing())
	}
	// A crash here: reopen from the database.
	must(db.Close())
	db = openDB(t, dir)
	defer db.Close()
	s, err = openSessionStore(db, slog.New(slog.DiscardHandler))
	must(err)
	es, _ := s.Load()
	if len(es) != 3 {
		t.Fatalf("after reopen %d entries, want 3 (two outgoing QoS 2, one incoming): %+v", len(es), es)
	}
	if p, ok := es[0].Packet.(*packet.Publish); !ok || p.PacketID != 11 || p.QoS != 2 {
		t.Fatalf("first entry %+v", es[0])
	}
	if lane, seq, ok := s.untag(es[0].Tag); !ok || lane != "p5" || seq != 2 {
		t.Fatalf("tag of first entry: %s %d %v", lane, seq, ok)
	}
	if _, ok := es[1].Packet.(*packet.Ack); !ok || es[1].ID() != 12 {
		t.Fatalf("second entry %+v, want the PUBREL for 12", es[1])
	}
	// PUBCOMP for 12: state and record 3 go together.
	must(s.Delete(client.Outgoing, 12))
	must(s.Delete(client.Incoming, 7))
	must(s.flush())
	recs, err := db.Read("p5", 0, 10)
	must(err)
	if len(recs) != 3 || recs[0].Seq != 1 || recs[1].Seq != 2 || recs[2].Seq != 4 {
		t.Fatalf("records after the ack of 3: %+v", recs)
	}
	s2, err := openSessionStore(db, slog.New(slog.DiscardHandler))
	must(err)
	if es, _ := s2.Load(); len(es) != 1 || es[0].ID() != 11 {
		t.Fatalf("stored state after PUBCOMP: %+v", es)
	}
}

// TestSessionStoreReset: the cloud lost our session; a PUBREL entry's
// message had reached it, so its record is acknowledged; a PUBLISH entry's
// record stays for the client to publish again.
func TestSessionStoreReset(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	for range 2 {
		if err := db.AppendSync("p0", []byte("rec")); err != nil {
			t.Fatal(err)
		}
	}
	s, err := openSessionStore(db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(relEntry(1, 1, s.tag("p0", 1))); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(pubEntry(2, 2, 2, s.tag("p0", 2))); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	recs, _ := db.Read("p0", 0, 10)
	if len(recs) != 1 || recs[0].Seq != 2 {
		t.Fatalf("records after reset: %+v", recs)
	}
	s2, _ := openSessionStore(db, slog.New(slog.DiscardHandler))
	if es, _ := s2.Load(); len(es) != 0 {
		t.Fatalf("state after reset: %+v", es)
	}
}

// TestSessionStoreEndRefused: the client reports how each exchange ended
// before anyone sees the message's token. A refusal for now (0x97, the
// QoS 2 PUBREC refusal too) keeps the record and lists it for sending
// again, with its durable state gone; a refusal for good (0x87) and a
// success acknowledge the record. This is the order a quick cloud answers
// in: a refusal taken for an ack was a lost message.
func TestSessionStoreEndRefused(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	s := storeWithRecords(t, db, "p1", 4)
	must := func(err error) { mustOK(t, err) }
	must(s.Put(pubEntry(1, 1, 1, s.tag("p1", 1))))
	must(s.Put(pubEntry(2, 2, 2, s.tag("p1", 2))))
	must(s.Put(pubEntry(3, 3, 1, s.tag("p1", 3))))
	must(s.Put(pubEntry(4, 4, 1, s.tag("p1", 4))))
	must(s.End(1, packet.QuotaExceeded))
	must(s.End(2, packet.QuotaExceeded)) // a refused PUBREC
	must(s.End(3, packet.NotAuthorized))
	must(s.End(4, packet.Success))
	must(s.flush())
	recs, err := db.Read("p1", 0, 10)
	must(err)
	if len(recs) != 2 || recs[0].Seq != 1 || recs[1].Seq != 2 {
		t.Fatalf("records left %+v, want 1 and 2 (refused for now)", recs)
	}
	retry := s.takeRetry()
	if len(retry) != 2 || retry[0] != s.tag("p1", 1) || retry[1] != s.tag("p1", 2) {
		t.Fatalf("retry list %v, want the tags of 1 and 2 in order", retry)
	}
	if s.outgoing() != 0 {
		t.Fatalf("session still holds %d outgoing entries", s.outgoing())
	}
	s2, err := openSessionStore(db, slog.New(slog.DiscardHandler))
	must(err)
	if es, _ := s2.Load(); len(es) != 0 {
		t.Fatalf("stored state after the refused PUBREC: %+v", es)
	}
}
