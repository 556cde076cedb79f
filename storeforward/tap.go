package storeforward

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// Appender is what the tap needs of the queue (*queue.DB implements it).
type Appender interface {
	Append(lane string, rec []byte, done func(error))
}

// LaneName is the queue lane of forward rules with this priority: one lane
// per priority, each drained in order, higher priorities first.
func LaneName(priority int) string { return "p" + strconv.Itoa(priority) }

// Tap implements msg.Tap for the uplink.forward rules: it makes every
// cloud-bound message durable in the queue before the broker acknowledges
// its publisher (DESIGN.md, the durable-ack invariant).
//
// Rules are tried in configuration order and the first whose filter
// matches takes the message (a message is queued at most once). The record
// goes to the cloud as remote_prefix + topic at QoS min(rule qos, publish
// qos): the rule's qos is the most the cloud link uses, as in a Mosquitto
// bridge's "topic <filter> out <qos>" line, where a QoS 0 publish stays
// QoS 0. QoS 0 publishes are queued too; their done is called at once,
// without waiting for the sync, unless DurableQoS0 is set (a QoS 0 publisher
// gets no acknowledgement to hold).
type Tap struct {
	rules       []tapRule
	q           Appender
	durableQoS0 bool
	log         *slog.Logger
	now         func() time.Time

	appended, failed, tooLarge atomic.Int64
}

type tapRule struct {
	ForwardRule
	lane string
}

// TapStats are the tap's counters since NewTap.
type TapStats struct {
	Appended int64 // records queued durably (QoS 0 ones counted when their sync completed)
	Failed   int64 // appends the queue refused or failed (full, disk full, sync error)
	TooLarge int64 // messages that could not be encoded (never queued)
}

// NewTap checks the forward rules of cfg and returns their tap, appending
// to q. log may be nil.
func NewTap(cfg Config, q Appender, log *slog.Logger) (*Tap, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tap{q: q, durableQoS0: cfg.Queue.DurableQoS0, log: log.With("component", "tap"), now: time.Now}
	for i, r := range cfg.Forward {
		if err := topic.ValidFilter(r.Filter); err != nil {
			return nil, fmt.Errorf("uplink.forward[%d]: filter %q: %w", i, r.Filter, err)
		}
		if strings.HasPrefix(r.Filter, "$share/") {
			return nil, fmt.Errorf("uplink.forward[%d]: filter %q: a shared subscription cannot be a forward rule", i, r.Filter)
		}
		if r.QoS > 2 {
			return nil, fmt.Errorf("uplink.forward[%d]: qos %d: want 0, 1 or 2", i, r.QoS)
		}
		if strings.ContainsAny(r.RemotePrefix, "+#\x00") {
			return nil, fmt.Errorf("uplink.forward[%d]: remote_prefix %q: must not contain '+', '#' or NUL [MQTT-3.3.2-2]", i, r.RemotePrefix)
		}
		t.rules = append(t.rules, tapRule{ForwardRule: r, lane: LaneName(r.Priority)})
	}
	return t, nil
}

func (t *Tap) rule(m *msg.Message) *tapRule {
	for i := range t.rules {
		if topic.Match(t.rules[i].Filter, m.Topic) {
			return &t.rules[i]
		}
	}
	return nil
}

// Wants implements msg.Tap: m's topic matches a forward rule. It does not
// allocate.
func (t *Tap) Wants(m *msg.Message) bool { return t.rule(m) != nil }

// Append implements msg.Tap: it encodes m as a Record and appends it to its
// rule's lane; done is called after the group commit that made it durable
// (at once for QoS 0 unless DurableQoS0). A refusal by the queue (full
// under when_full reject: msg.ErrQuotaExceeded; disk full; failed sync) is
// passed to done, so the broker refuses the publisher.
func (t *Tap) Append(m msg.Message, done func(error)) {
	r := t.rule(&m)
	if r == nil {
		done(nil)
		return
	}
	if m.Received.IsZero() {
		m.Received = t.now()
	}
	rec := RecordFromMessage(&m, r.RemotePrefix+m.Topic, min(r.QoS, m.QoS))
	if m.MessageExpiry > 0 {
		rec.QueuedAfter = max(t.now().Sub(m.Received), 0)
	}
	b, err := AppendRecord(nil, &rec)
	if err == nil && len(rec.Topic) > 65535 {
		err = fmt.Errorf("cloud topic of %d bytes is longer than MQTT allows (65535) [MQTT-1.5.4-1]", len(rec.Topic))
	}
	if err != nil {
		t.tooLarge.Add(1)
		done(fmt.Errorf("tap %q: %w", m.Topic, err))
		return
	}
	if m.QoS == 0 && !t.durableQoS0 {
		done(nil)
		done = nil
	}
	t.q.Append(r.lane, b, func(err error) {
		if err != nil {
			n := t.failed.Add(1)
			err = fmt.Errorf("queue %q for the cloud: %w", m.Topic, err)
			if done == nil && (n == 1 || n%1000 == 0) { // nobody else hears of it; do not flood the journal
				t.log.Warn("QoS 0 message not queued", "topic", m.Topic, "lane", r.lane, "failed_total", n, "err", err)
			}
		} else {
			t.appended.Add(1)
		}
		if done != nil {
			done(err)
		}
	})
}

// Stats returns the tap's counters.
func (t *Tap) Stats() TapStats {
	return TapStats{Appended: t.appended.Load(), Failed: t.failed.Load(), TooLarge: t.tooLarge.Load()}
}

var _ msg.Tap = (*Tap)(nil)
