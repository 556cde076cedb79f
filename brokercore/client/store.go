package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Direction says whose packet identifier an Entry holds.
type Direction byte

const (
	// Outgoing entries are this client's QoS 1/2 PUBLISH packets awaiting
	// PUBACK/PUBREC, or PUBREL packets awaiting PUBCOMP.
	Outgoing Direction = 1
	// Incoming entries are the server's QoS 2 packet identifiers this
	// client has sent PUBREC for and awaits PUBREL for; they stop a
	// redelivered PUBLISH from reaching the handler twice (4.3.3).
	Incoming Direction = 2
)

// Entry is one packet of the client's session state (MQTT 5.0 section
// 4.1): what must survive a reconnect, or a restart with a persistent
// Store, for QoS 1 and 2 to keep their promise.
type Entry struct {
	// Seq orders resends: ascending. A PUBLISH keeps the Seq of its first
	// send; its PUBREL gets a new one when PUBREC arrives, so PUBLISHes go
	// out again in their original order [MQTT-4.6.0-1] and PUBRELs in the
	// order their PUBRECs came [MQTT-4.6.0-3].
	Seq uint64
	Dir Direction
	// Packet is, for Outgoing, the *packet.Publish as first sent (full
	// topic, no topic alias, v5 properties) or a PUBREL *packet.Ack; for
	// Incoming, a PUBREC *packet.Ack.
	Packet packet.Packet
	// Tag is the caller's Message.Tag, kept so a resumed message can be
	// tied back to the caller's own record (the uplink's queue sequence).
	Tag uint64
}

// ID is the entry's packet identifier.
func (e Entry) ID() uint16 {
	switch p := e.Packet.(type) {
	case *packet.Publish:
		return p.PacketID
	case *packet.Ack:
		return p.PacketID
	}
	return 0
}

// Store keeps the client's session state between connections and, if it
// is durable, across restarts. The client calls Put before it sends the
// packet the entry describes (a PUBLISH before its first send, a PUBREL
// before it answers PUBREC, an incoming id before its PUBREC), and Delete
// once the exchange is complete. A durable Store must have written the
// entry when Put returns: that is what makes exactly-once survive a power
// cut. Methods may be called from several goroutines.
type Store interface {
	// Load returns every entry, both directions, in ascending Seq.
	Load() ([]Entry, error)
	// Put stores e, replacing the entry with the same Dir and ID.
	Put(e Entry) error
	// Delete removes the entry with that direction and packet id; a
	// missing one is not an error.
	Delete(dir Direction, id uint16) error
	// Reset removes every entry.
	Reset() error
}

// An EndStore is a Store that is told how each outgoing exchange ended.
// For an outgoing entry the client calls End instead of Delete, with the
// reason code of the PUBACK, PUBREC or PUBCOMP that ended it (>= 0x80:
// the server refused the message), before it completes the message's
// Token. A store that keeps refused messages to send again (a
// store-and-forward queue) decides here, in the order the server answered:
// the caller may not have seen the Token yet when the answer arrives.
type EndStore interface {
	Store
	// End removes the outgoing entry with packet id id, whose exchange
	// ended with reason code code; a missing one is not an error.
	End(id uint16, code byte) error
}

// MemoryStore is a Store in memory: session state survives reconnects of
// one process, not restarts. The zero value is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[uint32]Entry
}

var _ Store = (*MemoryStore)(nil)

func storeKey(dir Direction, id uint16) uint32 { return uint32(dir)<<16 | uint32(id) }

// Load implements Store.
func (s *MemoryStore) Load() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Put implements Store.
func (s *MemoryStore) Put(e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = make(map[uint32]Entry)
	}
	s.entries[storeKey(e.Dir, e.ID())] = e
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(dir Direction, id uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, storeKey(dir, id))
	return nil
}

// Reset implements Store.
func (s *MemoryStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = nil
	return nil
}

// Len is the number of entries (for tests and metrics).
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// MarshalEntry encodes e for a durable Store: Seq, Tag (8 bytes each, big
// endian), Dir, then the packet in its MQTT 5.0 wire form (which keeps
// every property). UnmarshalEntry reverses it.
func MarshalEntry(e Entry) ([]byte, error) {
	b := make([]byte, 17, 64)
	binary.BigEndian.PutUint64(b, e.Seq)
	binary.BigEndian.PutUint64(b[8:], e.Tag)
	b[16] = byte(e.Dir)
	b, err := packet.Append(b, e.Packet, packet.V5)
	if err != nil {
		return nil, fmt.Errorf("marshal session entry %d: %w", e.ID(), err)
	}
	return b, nil
}

// UnmarshalEntry decodes what MarshalEntry wrote. The packet's byte fields
// alias b.
func UnmarshalEntry(b []byte) (Entry, error) {
	if len(b) < 17 {
		return Entry{}, errors.New("unmarshal session entry: too short")
	}
	e := Entry{Seq: binary.BigEndian.Uint64(b), Tag: binary.BigEndian.Uint64(b[8:]), Dir: Direction(b[16])}
	p, n, err := packet.Decode(b[17:], packet.V5)
	if err != nil {
		return Entry{}, fmt.Errorf("unmarshal session entry: %w", err)
	}
	if n != len(b)-17 {
		return Entry{}, errors.New("unmarshal session entry: trailing bytes")
	}
	switch {
	case e.Dir == Outgoing && (p.Type() == packet.PUBLISH || p.Type() == packet.PUBREL):
	case e.Dir == Incoming && p.Type() == packet.PUBREC:
	default:
		return Entry{}, fmt.Errorf("unmarshal session entry: %v in direction %d", p.Type(), e.Dir)
	}
	e.Packet = p
	return e, nil
}
