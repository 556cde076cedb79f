package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/test/mosquittotest"
)

// bytesStore is a Store that keeps entries only in MarshalEntry form, the
// way a durable (Badger) store does: a resume through it proves the
// encoding keeps everything a resend needs.
type bytesStore struct {
	mu sync.Mutex
	m  map[uint32][]byte
}

func (s *bytesStore) Load() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for _, b := range s.m {
		e, err := UnmarshalEntry(b)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (s *bytesStore) Put(e Entry) error {
	b, err := MarshalEntry(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint32][]byte{}
	}
	s.m[storeKey(e.Dir, e.ID())] = b
	return nil
}

func (s *bytesStore) Delete(dir Direction, id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, storeKey(dir, id))
	return nil
}

func (s *bytesStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = nil
	return nil
}

func (s *bytesStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

type lenStore interface {
	Store
	Len() int
}

// TestSessionResume cuts the link while QoS 1 and 2 messages are in every
// stage of their exchange, dials again with the same Store and checks the
// resend: unacknowledged PUBLISH packets again with DUP and their packet
// ids in their original order, PUBRELs in PUBREC order [MQTT-4.6.0-1]
// [MQTT-4.6.0-3], every token completed, QoS 2 delivered exactly once.
func TestSessionResume(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	for _, tc := range []struct {
		name  string
		v     byte
		store lenStore
	}{
		{"v3.1.1 memory store", packet.V311, &MemoryStore{}},
		{"v5 marshalled store", packet.V5, &bytesStore{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("resume/%d", tc.v)
			var got collector
			sub := dial(t, Config{URL: "mqtt://" + b.Addr(), ClientID: fmt.Sprintf("rsub%d", tc.v), ProtocolVersion: tc.v, CleanStart: true})
			if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: topic, QoS: 2}}, got.handle); err != nil {
				t.Fatal(err)
			}
			px := newProxy(t, b.Addr(), tc.v)
			cfg := Config{URL: "mqtt://" + px.addr(), ClientID: fmt.Sprintf("rpub%d", tc.v), ProtocolVersion: tc.v,
				SessionExpiry: 300, Store: tc.store}
			c1 := dial(t, cfg)

			// Stage 1: PUBACK and PUBCOMP held back, so QoS 1 waits for
			// PUBACK and QoS 2 gets to the PUBREL stage.
			px.setDrop(true, packet.PUBACK, packet.PUBCOMP)
			var toks []*Token
			pub := func(i int, qos byte) {
				tok, err := c1.PublishAsync(ctxT(t), &Message{Topic: topic, QoS: qos, Payload: []byte(fmt.Sprint(i)), Tag: uint64(i)})
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
			}
			pub(1, 1)
			pub(2, 2)
			pub(3, 1)
			pub(4, 2)
			waitFor(t, "two PUBRELs", func() bool { return countType(px.upstream(0), packet.PUBREL) == 2 })
			// Stage 2: PUBREC held too, so QoS 2 waits at PUBLISH.
			px.setDrop(true, packet.PUBREC)
			pub(5, 2)
			pub(6, 1)
			waitFor(t, "six PUBLISHes", func() bool { return countType(px.upstream(0), packet.PUBLISH) == 6 })
			px.cut()
			<-c1.Done()
			for i, tok := range toks {
				<-tok.Done()
				if !errors.Is(tok.Err(), ErrConnectionLost) {
					t.Errorf("token %d: %v, want ErrConnectionLost", i+1, tok.Err())
				}
			}
			if n := tc.store.Len(); n != 6 {
				t.Fatalf("store holds %d entries after the cut, want 6", n)
			}
			px.setDrop(false, packet.PUBACK, packet.PUBCOMP, packet.PUBREC)

			c2 := dial(t, cfg)
			if !c2.Limits().SessionPresent {
				t.Fatal("server did not resume the session")
			}
			resumed := c2.Resumed()
			if len(resumed) != 6 {
				t.Fatalf("%d resumed tokens, want 6", len(resumed))
			}
			tags := map[uint64]bool{}
			for _, tok := range resumed {
				if err := tok.Wait(ctxT(t)); err != nil {
					t.Errorf("resumed tag %d: %v", tok.Message().Tag, err)
				}
				tags[tok.Message().Tag] = true
			}
			if len(tags) != 6 {
				t.Errorf("resumed tags %v, want 1..6", tags)
			}
			if n := tc.store.Len(); n != 0 {
				t.Errorf("store holds %d entries after resume, want 0", n)
			}

			// What went on the wire, in order.
			var pubIDs, relIDs []uint16
			for _, p := range px.upstream(1) {
				switch p := p.(type) {
				case *packet.Publish:
					if !p.Dup {
						t.Errorf("resent PUBLISH %d without DUP [MQTT-3.3.1-1]", p.PacketID)
					}
					pubIDs = append(pubIDs, p.PacketID)
				case *packet.Ack:
					if p.PacketType == packet.PUBREL {
						relIDs = append(relIDs, p.PacketID)
					}
				}
			}
			id := func(i int) uint16 { return toks[i-1].PacketID() }
			wantPub := []uint16{id(1), id(3), id(5), id(6)}
			if fmt.Sprint(pubIDs) != fmt.Sprint(wantPub) {
				t.Errorf("resent PUBLISH ids %v, want %v (original order)", pubIDs, wantPub)
			}
			// PUBRELs: the two from before the cut, then the one for
			// message 5 after its new PUBREC.
			if len(relIDs) != 3 || relIDs[0] != id(2) || relIDs[1] != id(4) || relIDs[2] != id(5) {
				t.Errorf("PUBREL ids %v, want [%d %d %d]", relIDs, id(2), id(4), id(5))
			}

			// Delivery: a marker after everything bounds the wait.
			if err := c2.Publish(ctxT(t), &Message{Topic: topic, QoS: 2, Payload: []byte("end")}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "marker", func() bool {
				msgs := got.all()
				return len(msgs) > 0 && string(msgs[len(msgs)-1].Payload) == "end"
			})
			var q1, q2 []string
			seen1 := map[string]bool{}
			for _, m := range got.all() {
				if m.QoS == 1 {
					// QoS 1 may be delivered again by the resend; the
					// first deliveries keep the publish order.
					if !seen1[string(m.Payload)] {
						seen1[string(m.Payload)] = true
						q1 = append(q1, string(m.Payload))
					}
				} else {
					q2 = append(q2, string(m.Payload))
				}
			}
			if fmt.Sprint(q1) != "[1 3 6]" {
				t.Errorf("QoS 1 deliveries %v, want [1 3 6] (at least once, in order)", q1)
			}
			if fmt.Sprint(q2) != "[2 4 5 end]" {
				t.Errorf("QoS 2 deliveries %v, want [2 4 5 end] (exactly once, in order)", q2)
			}
		})
	}
}

// TestSessionLostRepublishes: when the server has no session any more
// (here: CleanStart on the second connection), stored PUBLISH packets go
// out again as new messages rather than being dropped.
func TestSessionLostRepublishes(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	var got collector
	sub := dial(t, Config{URL: "mqtt://" + b.Addr(), ClientID: "lsub", ProtocolVersion: packet.V5, CleanStart: true})
	if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: "lost", QoS: 1}}, got.handle); err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, b.Addr(), packet.V5)
	store := &MemoryStore{}
	cfg := Config{URL: "mqtt://" + px.addr(), ClientID: "lpub", ProtocolVersion: packet.V5, Store: store, SessionExpiry: 60}
	c1 := dial(t, cfg)
	px.setDrop(true, packet.PUBACK)
	for i := range 2 {
		if _, err := c1.PublishAsync(ctxT(t), &Message{Topic: "lost", QoS: 1, Payload: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two PUBLISHes", func() bool { return countType(px.upstream(0), packet.PUBLISH) == 2 })
	px.cut()
	<-c1.Done()
	px.setDrop(false, packet.PUBACK)
	cfg.CleanStart = true
	c2 := dial(t, cfg)
	if c2.Limits().SessionPresent {
		t.Fatal("session present after clean start")
	}
	for _, tok := range c2.Resumed() {
		if err := tok.Wait(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c2.Resumed()) != 2 {
		t.Fatalf("%d resumed, want 2", len(c2.Resumed()))
	}
	for _, p := range px.upstream(1) {
		if p, ok := p.(*packet.Publish); ok && p.Dup {
			t.Errorf("republished message %d has DUP set: it is a new message", p.PacketID)
		}
	}
	got.waitN(t, 4) // both messages twice: before the cut and again
	if store.Len() != 0 {
		t.Errorf("store holds %d entries", store.Len())
	}
}

// TestInflightWindow: the number of unacknowledged QoS 1/2 PUBLISH packets
// on the wire never exceeds the server's Receive Maximum (v5) or
// MaxInflight (3.1.1); PublishAsync waits for a slot.
func TestInflightWindow(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{Extra: []string{"max_inflight_messages 3"}})
	for _, tc := range []struct {
		name        string
		v           byte
		maxInflight int
		want        int
	}{
		{"v5 receive maximum", packet.V5, 0, 3},
		{"v5 smaller MaxInflight", packet.V5, 2, 2},
		{"v3.1.1 MaxInflight", packet.V311, 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := newProxy(t, b.Addr(), tc.v)
			c := dial(t, Config{URL: "mqtt://" + px.addr(), ClientID: "win", ProtocolVersion: tc.v, CleanStart: true, MaxInflight: tc.maxInflight})
			if w := c.Limits().Window; w != tc.want {
				t.Fatalf("window %d, want %d", w, tc.want)
			}
			px.setHold(true, packet.PUBACK, packet.PUBREC)
			var toks []*Token
			for i := range tc.want {
				tok, err := c.PublishAsync(ctxT(t), &Message{Topic: "win", QoS: byte(1 + i%2)})
				if err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
			}
			waitFor(t, "window full on the wire", func() bool { return countType(px.upstream(0), packet.PUBLISH) == tc.want })
			short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := c.PublishAsync(short, &Message{Topic: "win", QoS: 1}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("PublishAsync beyond the window: %v, want it to wait", err)
			}
			if n := countType(px.upstream(0), packet.PUBLISH); n != tc.want {
				t.Errorf("%d PUBLISH on the wire, window %d", n, tc.want)
			}
			px.setHold(false, packet.PUBACK, packet.PUBREC)
			for _, tok := range toks {
				if err := tok.Wait(ctxT(t)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Publish(ctxT(t), &Message{Topic: "win", QoS: 1}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTopicAliases: v5 PUBLISH packets reuse a topic alias after the first
// use of a topic, never create more than allowed, and subscribers see the
// full topics.
func TestTopicAliases(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{Listeners: []mosquittotest.Listener{{Lines: []string{"max_topic_alias 5"}}}})
	var got collector
	sub := dial(t, Config{URL: "mqtt://" + b.Addr(), ClientID: "asub", ProtocolVersion: packet.V5, CleanStart: true})
	if _, err := sub.Subscribe(ctxT(t), []packet.Subscription{{Filter: "alias/#", QoS: 1}}, got.handle); err != nil {
		t.Fatal(err)
	}
	px := newProxy(t, b.Addr(), packet.V5)
	c := dial(t, Config{URL: "mqtt://" + px.addr(), ClientID: "apub", ProtocolVersion: packet.V5, CleanStart: true, MaxTopicAliases: 2})
	if got := c.Limits().TopicAliasMaximum; got != 2 {
		t.Fatalf("TopicAliasMaximum %d, want 2 (min of ours and the server's 5)", got)
	}
	topics := []string{"alias/a", "alias/a", "alias/b", "alias/c", "alias/a", "alias/c", "alias/b"}
	for i, tp := range topics {
		if err := c.Publish(ctxT(t), &Message{Topic: tp, QoS: byte(i % 2), Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every PUBLISH through the proxy", func() bool { return countType(px.upstream(0), packet.PUBLISH) == len(topics) })
	type wire struct {
		topic string
		alias uint16
	}
	want := []wire{{"alias/a", 1}, {"", 1}, {"alias/b", 2}, {"alias/c", 0}, {"", 1}, {"alias/c", 0}, {"", 2}}
	var sent []wire
	for _, p := range px.upstream(0) {
		if p, ok := p.(*packet.Publish); ok {
			w := wire{topic: p.Topic}
			if p.Props.TopicAlias != nil {
				w.alias = *p.Props.TopicAlias
			}
			sent = append(sent, w)
		}
	}
	if fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Errorf("on the wire %v, want %v", sent, want)
	}
	msgs := got.waitN(t, len(topics))
	for i, m := range msgs {
		if m.Topic != topics[i] || m.Payload[0] != byte(i) {
			t.Errorf("message %d: %q %v, want %q", i, m.Topic, m.Payload, topics[i])
		}
	}
}

// TestIncomingQoS2Persistent: a persistent subscriber that drops after
// PUBREC gets the PUBREL on the next connection and does not deliver the
// message twice.
func TestIncomingQoS2Persistent(t *testing.T) {
	b := startMosquitto(t, mosquittotest.Options{})
	px := newProxy(t, b.Addr(), packet.V311)
	store := &MemoryStore{}
	var got collector
	cfg := Config{URL: "mqtt://" + px.addr(), ClientID: "isub", Store: store, OnMessage: got.handle}
	s1 := dial(t, cfg)
	if _, err := s1.Subscribe(ctxT(t), []packet.Subscription{{Filter: "in2", QoS: 2}}, got.handle); err != nil {
		t.Fatal(err)
	}
	px.setDrop(true, packet.PUBREL)
	pub := dial(t, Config{URL: "mqtt://" + b.Addr(), ClientID: "ipub", CleanStart: true})
	if err := pub.Publish(ctxT(t), &Message{Topic: "in2", QoS: 2, Payload: []byte("once")}); err != nil {
		t.Fatal(err)
	}
	got.waitN(t, 1)
	waitFor(t, "PUBREC", func() bool { return countType(px.upstream(0), packet.PUBREC) == 1 })
	px.cut()
	<-s1.Done()
	px.setDrop(false, packet.PUBREL)
	if store.Len() != 1 {
		t.Fatalf("store holds %d entries, want the incoming id", store.Len())
	}
	s2 := dial(t, cfg)
	waitFor(t, "PUBCOMP", func() bool { return countType(px.upstream(1), packet.PUBCOMP) == 1 })
	if n := len(got.all()); n != 1 {
		t.Errorf("delivered %d times, want once", n)
	}
	if store.Len() != 0 {
		t.Errorf("store holds %d entries after PUBREL", store.Len())
	}
	_ = s2
}
