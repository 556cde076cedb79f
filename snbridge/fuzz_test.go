package snbridge

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/internal/fakebroker"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// sinkTransport records what the gateway sends, for tests without sockets.
type sinkTransport struct {
	mu  sync.Mutex
	out [][]byte
}

func (s *sinkTransport) ReadPacket([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (s *sinkTransport) WritePacket(b []byte, _ net.Addr) error {
	s.mu.Lock()
	s.out = append(s.out, append([]byte(nil), b...))
	s.mu.Unlock()
	return nil
}
func (s *sinkTransport) LocalAddr() net.Addr { return serialAddr("sink") }
func (s *sinkTransport) Close() error        { return nil }

// FuzzGatewayDatagrams feeds a sequence of datagrams (split at 0xFF 0xFF)
// from one address straight into the gateway's handler, with a broker
// behind it and the clock moving between datagrams: whatever arrives, the
// gateway must not panic, and everything it sends must decode.
func FuzzGatewayDatagrams(f *testing.F) {
	enc := func(ps ...snpacket.Packet) []byte {
		var out []byte
		for i, p := range ps {
			if i > 0 {
				out = append(out, 0xFF, 0xFF)
			}
			b, _ := snpacket.Encode(p)
			out = append(out, b...)
		}
		return out
	}
	connect := &snpacket.Connect{Flags: snpacket.Flags{CleanSession: true}, ProtocolID: 1, Duration: 10, ClientID: "fz"}
	f.Add(enc(connect, &snpacket.Register{MsgID: 1, TopicName: "a/b"}, &snpacket.Publish{Flags: snpacket.Flags{QoS: 1}, TopicID: 1, MsgID: 2, Data: []byte("x")}))
	f.Add(enc(connect, &snpacket.Subscribe{Flags: snpacket.Flags{QoS: 2}, MsgID: 1, TopicName: "a/#"}, &snpacket.Publish{Flags: snpacket.Flags{QoS: 2, TopicIDType: snpacket.TopicShort}, TopicID: 0x6162, MsgID: 3}))
	f.Add(enc(&snpacket.Connect{Flags: snpacket.Flags{Will: true}, ProtocolID: 1, ClientID: "w"}, &snpacket.WillTopic{Topic: "w/t"}, &snpacket.WillMsg{Msg: []byte("m")}, &snpacket.Disconnect{HasDuration: true, Duration: 5}, &snpacket.Pingreq{ClientID: "w"}))
	f.Add(enc(&snpacket.Publish{Flags: snpacket.Flags{QoS: -1, TopicIDType: snpacket.TopicPredefined}, TopicID: 1}, &snpacket.SearchGW{}))
	f.Add([]byte{0x05, 0xFE, 0x01, 0xAA, 0xBB, 0x02, 0x16})
	f.Add([]byte{0x01, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		clk := newFakeClock()
		b := fakebroker.New()
		cfg := Config{Listen: "127.0.0.1:0", Clock: clk.Now, PredefinedTopics: map[uint16]string{1: "p/1"}, RetryInterval: time.Second, MaxRetries: 2}.withDefaults()
		qs, _, err := b.Open(context.Background(), msgSessionOptions{ClientID: "qos-1", CleanStart: true, Deliver: func(msgT) {}})
		if err != nil {
			t.Fatal(err)
		}
		g := &Gateway{cfg: cfg, sessions: b, qosm1: qs, log: slog.New(slog.DiscardHandler), now: clk.Now, predef: newPredefined(),
			ctx: context.Background(), peers: map[peerKey]*peer{}, clients: map[string]*client{}}
		g.predef.add("", 1, "p/1")
		g.rl = rateLog{log: g.log, every: time.Minute, seen: map[string]time.Time{}}
		g.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
		sink := &sinkTransport{}
		tr := &trEntry{t: sink, name: "fuzz", datagram: true}
		g.trs = []*trEntry{tr}
		g.work = make([]chan job, 1)
		_, _ = b.Subscribe("#", 2, func(m msgT) {})
		for _, d := range bytes.Split(in, []byte{0xFF, 0xFF}) {
			key := peerKey{addr: serialAddr("node")}
			var e *snpacket.Encapsulated
			if len(d) >= 2 && d[0] != 1 && d[1] == 0xFE {
				if p, _, err := snpacket.Decode(d); err == nil {
					e = p.(*snpacket.Encapsulated)
					key.node = string(e.NodeID)
					d = e.Msg
				}
			}
			p := g.peerFor(key, tr, e)
			p.pending.Add(-1) // handled here, not by a worker
			g.handle(p, d)
			clk.Advance(3 * time.Second)
			g.tick(clk.Now())
			_ = b.Publish(context.Background(), msgOf("a/b", 1, "in"))
		}
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, o := range sink.out {
			if len(o) >= 2 && o[1] == byte(snpacket.TypeEncapsulated) {
				p, _, err := snpacket.Decode(o)
				if err != nil {
					t.Fatalf("gateway sent undecodable % X: %v", o, err)
				}
				o = p.(*snpacket.Encapsulated).Msg
			}
			if _, n, err := snpacket.Decode(o); err != nil || n != len(o) {
				t.Fatalf("gateway sent undecodable % X: %v", o, err)
			}
		}
	})
}
