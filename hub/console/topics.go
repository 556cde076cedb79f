package console

import (
	"container/list"
	"encoding/base64"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

const (
	// DefaultMaxTopics bounds the topics the console keeps (Options.MaxTopics).
	DefaultMaxTopics = 2000
	// maxShownPayload is the most of a payload the console keeps per topic.
	maxShownPayload = 256
	// rateTau is the time constant of the per-topic message rate (an
	// exponentially weighted moving average).
	rateTau = 60.0
)

// Topic is one topic seen since the console started, as /api/topics and
// the "topics" event give it.
type Topic struct {
	Topic     string `json:"topic"`
	Payload   string `json:"payload"`          // at most 256 bytes; base64 when not UTF-8
	Base64    bool   `json:"base64,omitempty"` // Payload is base64
	Size      int    `json:"size"`             // the whole payload's length
	Truncated bool   `json:"truncated,omitempty"`
	QoS       byte   `json:"qos"`
	Retain    bool   `json:"retain"` // the last message's retain flag as delivered
	// Retained: a message with the retain flag was seen for this topic,
	// i.e. the broker holds (or held) a retained message. The console's
	// in-process subscription gets live messages without the flag
	// ([MQTT-3.3.1-9]: no Retain As Published), so it is sticky.
	Retained bool      `json:"retained"`
	Count    uint64    `json:"count"`
	Rate     float64   `json:"rate"` // messages/s, averaged over about a minute
	Updated  time.Time `json:"updated"`
}

// topicEntry is a Topic with its bookkeeping. Memory: the struct (~150 B),
// the topic string, at most 256 payload bytes, a list element and a map
// entry (~100 B): under 600 B per topic with typical names, so the default
// 2000 topics cost at most about 1.2 MiB.
type topicEntry struct {
	Topic
	rate  float64 // EWMA value at Updated
	dirty bool    // changed since the last event
	elem  *list.Element
}

// topicStore keeps the last message of each topic, evicting the topic
// updated longest ago when full. Not safe for concurrent use (live.mu).
type topicStore struct {
	max     int
	byName  map[string]*topicEntry
	lru     *list.List // front: most recently updated
	dirty   []*topicEntry
	evicted uint64
	reset   bool // an eviction happened since the last event: clients refetch
}

func newTopicStore(max int) *topicStore {
	return &topicStore{max: max, byName: make(map[string]*topicEntry), lru: list.New()}
}

func (s *topicStore) update(m *msg.Message, now time.Time) {
	e := s.byName[m.Topic]
	if e == nil {
		if len(s.byName) >= s.max {
			old := s.lru.Back().Value.(*topicEntry)
			s.lru.Remove(old.elem)
			delete(s.byName, old.Topic.Topic)
			old.dirty = false
			s.evicted++
			s.reset = true
		}
		e = &topicEntry{Topic: Topic{Topic: strings.Clone(m.Topic)}}
		e.elem = s.lru.PushFront(e)
		s.byName[e.Topic.Topic] = e
	} else {
		s.lru.MoveToFront(e.elem)
	}
	// EWMA of the rate: each message adds 1/tau, decaying with e^(-dt/tau).
	if e.Count > 0 {
		dt := now.Sub(e.Updated).Seconds()
		if dt < 0 {
			dt = 0
		}
		e.rate = e.rate*math.Exp(-dt/rateTau) + 1/rateTau
	} else {
		e.rate = 1 / rateTau
	}
	e.Count++
	e.Updated = now
	e.QoS, e.Retain, e.Size = m.QoS, m.Retain, len(m.Payload)
	if m.Retain {
		e.Retained = len(m.Payload) > 0 // an empty retained message clears it [MQTT-3.3.1-10]
	}
	p := m.Payload
	e.Truncated = len(p) > maxShownPayload
	if e.Truncated {
		p = p[:maxShownPayload]
	}
	if utf8.Valid(p) || (e.Truncated && utf8.Valid(trimPartialRune(p))) {
		e.Payload, e.Base64 = string(trimPartialRune(p)), false
	} else {
		e.Payload, e.Base64 = base64.StdEncoding.EncodeToString(p), true
	}
	if !e.dirty {
		e.dirty = true
		s.dirty = append(s.dirty, e)
	}
}

// trimPartialRune drops an incomplete UTF-8 sequence cut at the end.
func trimPartialRune(p []byte) []byte {
	for i := 0; i < utf8.UTFMax && i < len(p); i++ {
		if utf8.RuneStart(p[len(p)-1-i]) {
			if !utf8.FullRune(p[len(p)-1-i:]) {
				return p[:len(p)-1-i]
			}
			break
		}
	}
	return p
}

func (e *topicEntry) snapshot(now time.Time) Topic {
	t := e.Topic
	t.Rate = round4(e.rate * math.Exp(-now.Sub(e.Updated).Seconds()/rateTau))
	return t
}

// list returns the topics containing filter (case-insensitive; "" = all),
// sorted by name.
func (s *topicStore) list(filter string, now time.Time) []Topic {
	filter = strings.ToLower(filter)
	out := make([]Topic, 0, len(s.byName))
	for name, e := range s.byName {
		if filter != "" && !strings.Contains(strings.ToLower(name), filter) {
			continue
		}
		out = append(out, e.snapshot(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

// changes returns the topics updated since the last call (at most max;
// reset is true when the client should refetch the whole list because
// topics were evicted or there were more changes than max).
func (s *topicStore) changes(now time.Time, max int) (ts []Topic, reset bool) {
	reset = s.reset || len(s.dirty) > max
	if !reset {
		ts = make([]Topic, 0, len(s.dirty))
		for _, e := range s.dirty {
			ts = append(ts, e.snapshot(now))
		}
	}
	for _, e := range s.dirty {
		e.dirty = false
	}
	s.dirty = s.dirty[:0]
	s.reset = false
	return ts, reset
}
