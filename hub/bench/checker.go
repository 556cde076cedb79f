package bench

// checker keeps one subscriber's account of what arrived, per publisher
// stream: which sequence numbers (to tell loss from duplicates) and in what
// order ([MQTT-4.6.0-5]: for one publisher, topic and QoS every subscriber
// sees messages in the order they were published). One goroutine owns it.
type checker struct {
	streams map[uint32]*stream
	lat     hist
	bad     uint64 // payloads without a readable stamp
}

type stream struct {
	seen     []uint64 // bitset of received sequence numbers
	next     uint64   // one past the highest sequence number seen
	unique   uint64
	dups     uint64
	reorders uint64 // arrived after a higher sequence number
}

func newChecker() *checker { return &checker{streams: make(map[uint32]*stream)} }

// observe accounts for one received payload; now is ns since the epoch.
// It reports whether the message was new (not a duplicate).
func (c *checker) observe(payload []byte, now int64) bool {
	s, err := readStamp(payload)
	if err != nil {
		c.bad++
		return false
	}
	st := c.streams[s.pub]
	if st == nil {
		st = &stream{}
		c.streams[s.pub] = st
	}
	w, bit := s.seq/64, uint64(1)<<(s.seq%64)
	for uint64(len(st.seen)) <= w {
		st.seen = append(st.seen, 0)
	}
	if st.seen[w]&bit != 0 {
		st.dups++
		return false
	}
	st.seen[w] |= bit
	st.unique++
	if s.seq+1 < st.next {
		st.reorders++
	} else {
		st.next = s.seq + 1
	}
	c.lat.record(now - s.sent)
	return true
}

// tally is the sum of checkers' accounts against what was expected.
type tally struct {
	Expected uint64 `json:"expected"`
	Received uint64 `json:"received"` // unique messages
	Lost     uint64 `json:"lost"`
	Dups     uint64 `json:"duplicates"`
	Reorders uint64 `json:"reordered"`
	Bad      uint64 `json:"bad_payloads,omitempty"`
	Extra    uint64 `json:"unexpected,omitempty"` // from publishers nobody expected, or beyond their count
}

// account adds c to t; want maps each publisher this subscriber should
// have heard to how many messages it sent.
func (t *tally) account(c *checker, want map[uint32]uint64) {
	for pub, n := range want {
		t.Expected += n
		st := c.streams[pub]
		if st == nil {
			t.Lost += n
			continue
		}
		got := st.unique
		// Sequence numbers at or beyond n were never sent.
		var beyond uint64
		for seq := n; seq < uint64(len(st.seen))*64; seq++ {
			if st.seen[seq/64]&(1<<(seq%64)) != 0 {
				beyond++
			}
		}
		got -= beyond
		t.Extra += beyond
		t.Received += got
		t.Lost += n - got
		t.Dups += st.dups
		t.Reorders += st.reorders
	}
	for pub, st := range c.streams {
		if _, ok := want[pub]; !ok {
			t.Extra += st.unique
		}
	}
	t.Bad += c.bad
}
