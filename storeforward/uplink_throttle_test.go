package storeforward

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// throttlingCloud is a minimal MQTT 5 server that answers the first
// refuse QoS 1 PUBLISHes with PUBACK 0x97 Quota exceeded, as a cloud
// that throttles does (mosquitto never sends 0x97), and accepts the rest.
type throttlingCloud struct {
	ln       net.Listener
	mu       sync.Mutex
	refuse   int
	accepted []string
	wg       sync.WaitGroup
}

func newThrottlingCloud(t *testing.T, refuse int) *throttlingCloud {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &throttlingCloud{ln: ln, refuse: refuse}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *throttlingCloud) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	write := func(p packet.Packet) bool {
		b, err := packet.Append(nil, p, packet.V5)
		if err == nil {
			_, err = c.Write(b)
		}
		return err == nil
	}
	rm := uint16(10)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := packet.ReadPacket(br, packet.V5, 0)
		if err != nil {
			return
		}
		var reply packet.Packet
		switch p := p.(type) {
		case *packet.Connect:
			reply = &packet.ConnAck{SessionPresent: !p.CleanStart, Props: packet.Properties{ReceiveMaximum: &rm}}
		case *packet.Publish:
			if p.QoS != 1 {
				continue
			}
			code := byte(0)
			s.mu.Lock()
			if p.Topic == "sites/a/sensors/t" {
				if s.refuse > 0 {
					s.refuse--
					code = packet.QuotaExceeded
				} else {
					s.accepted = append(s.accepted, string(p.Payload))
				}
			}
			s.mu.Unlock()
			reply = &packet.Ack{PacketType: packet.PUBACK, PacketID: p.PacketID, ReasonCode: code}
		case *packet.PingReq:
			reply = &packet.PingResp{}
		case *packet.Disconnect:
			return
		default:
			continue
		}
		if !write(reply) {
			return
		}
	}
}

func (s *throttlingCloud) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.accepted...)
}

// TestUplinkThrottledNotLost: a cloud over its quota refuses messages
// with 0x97; they stay queued and go again after a pause, none is lost,
// and each arrives once.
func TestUplinkThrottledNotLost(t *testing.T) {
	srv := newThrottlingCloud(t, 25)
	db := openDB(t, t.TempDir())
	defer db.Close()
	// Short pauses: the growing pause is the behaviour under test, not
	// its length (25 refusals can come in many small rounds under load).
	r := startForwarder(t, baseConfig("mqtt://"+srv.ln.Addr().String(), 5),
		Deps{DB: db, ThrottleBackoff: Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	ms, ps := seqMessages("sensors/t", 1, 0, 60)
	publish(t, r.f.Tap(), ms...)
	poll(t, "all 60 accepted", 60*time.Second, func() bool { return len(srv.got()) >= 60 })
	waitDrained(t, r.f, 10*time.Second)
	seen := map[string]int{}
	for _, p := range srv.got() {
		seen[p]++
	}
	for _, p := range ps {
		if seen[p] != 1 {
			t.Errorf("%s accepted %d times", p, seen[p])
		}
	}
	if st := r.f.Status(); st.Throttled != 25 || st.Rejected != 0 || st.Acked != 60 {
		t.Errorf("throttled %d (want 25), rejected %d, acked %d", st.Throttled, st.Rejected, st.Acked)
	}
}
