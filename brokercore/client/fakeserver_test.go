package client

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// fakeServer is a scripted MQTT 5 server for what mosquitto will not do on
// request: send topic aliases, refuse a PUBLISH with a reason code, send
// garbage. script runs once per connection after CONNACK.
type fakeServer struct {
	ln  net.Listener
	wg  sync.WaitGroup
	mu  sync.Mutex
	got []packet.Packet // client packets after CONNECT
}

type fakeConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
	s  *fakeServer
}

func (f *fakeConn) send(p packet.Packet) {
	b, err := packet.Append(nil, p, packet.V5)
	if err != nil {
		f.t.Errorf("fake server: %v", err)
		return
	}
	f.c.Write(b)
}

func (f *fakeConn) sendRaw(b []byte) { f.c.Write(b) }

// read returns the client's next packet, nil when the connection ended.
func (f *fakeConn) read() packet.Packet {
	p, err := packet.ReadPacket(f.br, packet.V5, 0)
	if err != nil {
		return nil
	}
	f.s.mu.Lock()
	f.s.got = append(f.s.got, p)
	f.s.mu.Unlock()
	return p
}

func newFakeServer(t *testing.T, connack *packet.ConnAck, script func(*fakeConn)) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln}
	var conns []net.Conn
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			conns = append(conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				fc := &fakeConn{t: t, c: c, br: bufio.NewReader(c), s: s}
				if _, err := packet.ReadPacket(fc.br, packet.V5, 0); err != nil {
					return
				}
				fc.send(connack)
				script(fc)
				for fc.read() != nil { // drain until the client goes
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) url() string { return "mqtt://" + s.ln.Addr().String() }

func (s *fakeServer) packets() []packet.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]packet.Packet(nil), s.got...)
}

func u16(v uint16) *uint16 { return &v }

// TestIncomingTopicAliases: a server's aliases (within the Topic Alias
// Maximum we announced) resolve to their topics; an unknown alias ends the
// connection with DISCONNECT 0x94 (3.3.2.3.4).
func TestIncomingTopicAliases(t *testing.T) {
	s := newFakeServer(t, &packet.ConnAck{}, func(f *fakeConn) {
		f.send(&packet.Publish{Topic: "long/topic/name", Payload: []byte("1"), Props: packet.Properties{TopicAlias: u16(3)}})
		f.send(&packet.Publish{Payload: []byte("2"), Props: packet.Properties{TopicAlias: u16(3)}})
		f.send(&packet.Publish{Payload: []byte("3"), Props: packet.Properties{TopicAlias: u16(4)}})
	})
	var got collector
	c := dial(t, Config{URL: s.url(), ClientID: "ta", ProtocolVersion: packet.V5, CleanStart: true,
		TopicAliasMaximum: 5, OnMessage: got.handle})
	<-c.Done()
	msgs := got.all()
	if len(msgs) != 2 || msgs[0].Topic != "long/topic/name" || msgs[1].Topic != "long/topic/name" || msgs[1].Props.TopicAlias != nil {
		t.Fatalf("messages %+v", msgs)
	}
	if !errors.Is(c.Err(), packet.ErrProtocol) {
		t.Errorf("Err = %v, want a protocol error", c.Err())
	}
	waitFor(t, "DISCONNECT", func() bool {
		ps := s.packets()
		return len(ps) > 0 && ps[len(ps)-1].Type() == packet.DISCONNECT
	})
	ps := s.packets()
	if d := ps[len(ps)-1].(*packet.Disconnect); d.ReasonCode != packet.TopicAliasInvalid {
		t.Errorf("DISCONNECT reason 0x%02X, want 0x94", d.ReasonCode)
	}
}

// TestServerRefusals: v5 failure reason codes end exchanges with a
// ServerError: PUBACK 0x87, PUBREC 0x97 (no PUBREL follows), a refused
// SUBACK filter; a malformed packet ends the connection with DISCONNECT
// 0x81.
func TestServerRefusals(t *testing.T) {
	s := newFakeServer(t, &packet.ConnAck{}, func(f *fakeConn) {
		for {
			p := f.read()
			switch p := p.(type) {
			case nil:
				return
			case *packet.Publish:
				if p.QoS == 1 {
					f.send(&packet.Ack{PacketType: packet.PUBACK, PacketID: p.PacketID, ReasonCode: packet.NotAuthorized,
						Props: packet.Properties{ReasonString: "acl"}})
				} else {
					f.send(&packet.Ack{PacketType: packet.PUBREC, PacketID: p.PacketID, ReasonCode: packet.QuotaExceeded})
				}
			case *packet.Subscribe:
				f.send(&packet.SubAck{PacketID: p.PacketID, ReasonCodes: []byte{packet.GrantedQoS1, packet.NotAuthorized}})
			case *packet.Unsubscribe:
				f.sendRaw([]byte{0x36, 0x00}) // PUBLISH with QoS 3: malformed
			}
		}
	})
	c := dial(t, Config{URL: s.url(), ClientID: "ref", ProtocolVersion: packet.V5, CleanStart: true})
	var se *ServerError
	err := c.Publish(ctxT(t), &Message{Topic: "a", QoS: 1})
	if !errors.As(err, &se) || se.Code != packet.NotAuthorized || se.Reason != "acl" {
		t.Errorf("QoS 1 refused: %v", err)
	}
	err = c.Publish(ctxT(t), &Message{Topic: "a", QoS: 2})
	if !errors.As(err, &se) || se.Code != packet.QuotaExceeded {
		t.Errorf("QoS 2 refused: %v", err)
	}
	codes, err := c.Subscribe(ctxT(t), []packet.Subscription{{Filter: "ok", QoS: 1}, {Filter: "no"}}, func(*Message) {})
	if !errors.As(err, &se) || se.Code != packet.NotAuthorized || len(codes) != 2 {
		t.Errorf("Subscribe: %v %v", codes, err)
	}
	if _, err := c.Unsubscribe(ctxT(t), "ok"); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Unsubscribe answered by garbage: %v, want ErrConnectionLost", err)
	}
	<-c.Done()
	if !errors.Is(c.Err(), packet.ErrMalformed) {
		t.Errorf("Err = %v, want malformed", c.Err())
	}
	waitFor(t, "DISCONNECT at the server", func() bool { return countType(s.packets(), packet.DISCONNECT) == 1 })
	var rels int
	var last packet.Packet
	for _, p := range s.packets() {
		if p.Type() == packet.PUBREL {
			rels++
		}
		last = p
	}
	if rels != 0 {
		t.Errorf("%d PUBREL after a refused PUBREC [MQTT-4.3.3]", rels)
	}
	if d, ok := last.(*packet.Disconnect); !ok || d.ReasonCode != packet.MalformedPacket {
		t.Errorf("last client packet %#v, want DISCONNECT 0x81", last)
	}
}

// TestServerDisconnect: a v5 DISCONNECT from the server ends the
// connection with a ServerError carrying its reason.
func TestServerDisconnect(t *testing.T) {
	s := newFakeServer(t, &packet.ConnAck{}, func(f *fakeConn) {
		f.send(&packet.Disconnect{ReasonCode: packet.ServerShuttingDown, Props: packet.Properties{ReasonString: "bye"}})
	})
	lost := make(chan error, 1)
	c := dial(t, Config{URL: s.url(), ClientID: "sd", ProtocolVersion: packet.V5, CleanStart: true,
		OnConnectionLost: func(err error) { lost <- err }})
	<-c.Done()
	var se *ServerError
	if !errors.As(c.Err(), &se) || se.Code != packet.ServerShuttingDown || se.Reason != "bye" {
		t.Errorf("Err = %v", c.Err())
	}
	if err := <-lost; !errors.As(err, &se) {
		t.Errorf("OnConnectionLost(%v)", err)
	}
	_ = s
}

// TestMaxPacketSizeAnnounced: a packet over the Maximum Packet Size we
// announced ends the connection with DISCONNECT 0x95 [MQTT-3.1.2-25].
func TestMaxPacketSizeAnnounced(t *testing.T) {
	s := newFakeServer(t, &packet.ConnAck{}, func(f *fakeConn) {
		f.send(&packet.Publish{Topic: "small", Payload: make([]byte, 10)})
		f.send(&packet.Publish{Topic: "big", Payload: make([]byte, 200)})
	})
	var got collector
	c := dial(t, Config{URL: s.url(), ClientID: "mps", ProtocolVersion: packet.V5, CleanStart: true,
		MaxPacketSize: 100, OnMessage: got.handle})
	<-c.Done()
	if !errors.Is(c.Err(), packet.ErrPacketTooLarge) {
		t.Errorf("Err = %v, want ErrPacketTooLarge", c.Err())
	}
	if msgs := got.all(); len(msgs) != 1 || msgs[0].Topic != "small" {
		t.Errorf("delivered %d messages, want only the small one", len(msgs))
	}
	waitFor(t, "DISCONNECT at the server", func() bool { return countType(s.packets(), packet.DISCONNECT) == 1 })
	for _, p := range s.packets() {
		if d, ok := p.(*packet.Disconnect); ok && d.ReasonCode != packet.PacketTooLarge {
			t.Errorf("DISCONNECT 0x%02X, want 0x95", d.ReasonCode)
		}
	}
}

// endStore records how each outgoing exchange ended (client.EndStore).
type endStore struct {
	MemoryStore
	mu    sync.Mutex
	ends  map[uint16]byte
	toks  map[uint16]*Token
	early int // End called after the token was already complete
}

func (s *endStore) End(id uint16, code byte) error {
	s.mu.Lock()
	if t := s.toks[id]; t != nil {
		select {
		case <-t.Done():
			s.early++
		default:
		}
	}
	s.ends[id] = code
	s.mu.Unlock()
	return s.MemoryStore.Delete(Outgoing, id)
}

// TestEndStoreTold: a store that implements EndStore learns the reason
// code of every PUBACK and PUBREC/PUBCOMP that ends an exchange, before the
// token completes, so a queue can keep what the server refused for now.
func TestEndStoreTold(t *testing.T) {
	s := newFakeServer(t, &packet.ConnAck{}, func(f *fakeConn) {
		for {
			switch p := f.read().(type) {
			case nil:
				return
			case *packet.Publish:
				switch string(p.Payload) {
				case "quota":
					f.send(&packet.Ack{PacketType: packet.PUBACK, PacketID: p.PacketID, ReasonCode: packet.QuotaExceeded})
				case "qos2-refused":
					f.send(&packet.Ack{PacketType: packet.PUBREC, PacketID: p.PacketID, ReasonCode: packet.PacketIdentifierInUse})
				case "qos2":
					f.send(&packet.Ack{PacketType: packet.PUBREC, PacketID: p.PacketID})
				default:
					f.send(&packet.Ack{PacketType: packet.PUBACK, PacketID: p.PacketID})
				}
			case *packet.Ack:
				if p.PacketType == packet.PUBREL {
					f.send(&packet.Ack{PacketType: packet.PUBCOMP, PacketID: p.PacketID})
				}
			}
		}
	})
	st := &endStore{ends: map[uint16]byte{}, toks: map[uint16]*Token{}}
	c := dial(t, Config{URL: s.url(), ClientID: "end", ProtocolVersion: packet.V5, CleanStart: true, Store: st})
	want := map[string]byte{"ok": packet.Success, "quota": packet.QuotaExceeded, "qos2-refused": packet.PacketIdentifierInUse, "qos2": packet.Success}
	for _, payload := range []string{"ok", "quota", "qos2-refused", "qos2"} {
		qos := byte(1)
		if strings.HasPrefix(payload, "qos") {
			qos = 2
		}
		st.mu.Lock() // End cannot run before the token is known here
		tok, err := c.PublishAsync(ctxT(t), &Message{Topic: "a", QoS: qos, Payload: []byte(payload)})
		if err != nil {
			st.mu.Unlock()
			t.Fatal(err)
		}
		st.toks[tok.PacketID()] = tok
		st.mu.Unlock()
		tok.Wait(ctxT(t))
		st.mu.Lock()
		code, ok := st.ends[tok.PacketID()]
		st.mu.Unlock()
		if !ok || code != want[payload] {
			t.Errorf("%s: End told %#x (called %v), want %#x", payload, code, ok, want[payload])
		}
	}
	if st.early != 0 {
		t.Errorf("End called %d times after the token completed", st.early)
	}
}
