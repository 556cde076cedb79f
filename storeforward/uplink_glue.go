package storeforward

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// queueRecord is a record read from the queue.
type queueRecord = queue.Record

// signalTap wraps the forward tap: it never takes a message the downlink
// published (its client id is skipClient), which would loop back to the
// cloud, and it wakes the drain when an append is durable.
type signalTap struct {
	inner      msg.Tap
	skipClient string
	appended   chan struct{}
}

var _ msg.Tap = (*signalTap)(nil)

// Wants implements msg.Tap.
func (t *signalTap) Wants(m *msg.Message) bool {
	if m.ClientID != "" && m.ClientID == t.skipClient {
		return false
	}
	return t.inner.Wants(m)
}

// Append implements msg.Tap.
func (t *signalTap) Append(m msg.Message, done func(error)) {
	t.inner.Append(m, func(err error) {
		done(err)
		if err == nil {
			select {
			case t.appended <- struct{}{}:
			default:
			}
		}
	})
}

// loadIdentity returns the database's random id (u/id), creating it on
// first use. It makes outpost-id unique across a database that was
// replaced (a damaged card moved aside restarts the queue's sequences).
func loadIdentity(db msg.Store) (string, error) {
	var id string
	err := db.Scan([]byte(keyIdentity), func(k, v []byte) error {
		if string(k) == keyIdentity {
			id = string(v)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("load uplink identity: %w", err)
	}
	if id != "" {
		return id, nil
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id = hex.EncodeToString(b[:])
	if err := msg.CommitSync(db, []msg.Op{{Key: []byte(keyIdentity), Value: []byte(id)}}); err != nil {
		return "", fmt.Errorf("store uplink identity: %w", err)
	}
	return id, nil
}

// decodeQueued decodes a queue record into the message to send.
func decodeQueued(b []byte) (msg.Message, time.Duration, error) {
	r, err := DecodeRecord(b)
	if err != nil {
		return msg.Message{}, 0, err
	}
	return r.Message(), r.QueuedAfter, nil
}

// sinceReceived is how long ago m was received, for its Message Expiry:
// the tap's delay before queueing plus the time waited in the queue
// (appended: the queue's stamp on the system clock as the queue reads it
// now, so a step of the system clock since is not counted), or, for a
// record without the tap's delay, by the system clock from m.Received.
func sinceReceived(m *msg.Message, queuedAfter time.Duration, appended, now time.Time) time.Duration {
	if queuedAfter > 0 && !appended.IsZero() {
		return queuedAfter + max(now.Sub(appended), 0)
	}
	if m.Received.IsZero() {
		return 0
	}
	return max(now.Sub(m.Received), 0)
}

// laneCursors lists the lanes to drain, highest priority first: one per
// forward-rule priority, then any lane left in the database by an older
// configuration (by the priority in its name), so nothing queued is
// stranded.
func (f *Forwarder) laneCursors() []*laneCursor {
	seen := map[string]bool{}
	var out, old []*laneCursor
	for _, r := range f.cfg.Forward {
		n := LaneName(r.Priority)
		if !seen[n] {
			seen[n] = true
			out = append(out, &laneCursor{name: n, prio: r.Priority})
		}
	}
	for _, ls := range f.db.Lanes() {
		if !seen[ls.Lane] {
			p, _ := strconv.Atoi(strings.TrimPrefix(ls.Lane, "p"))
			old = append(old, &laneCursor{name: ls.Lane, prio: p})
		}
	}
	byPrio := func(a []*laneCursor) {
		sort.SliceStable(a, func(i, j int) bool { return a[i].prio > a[j].prio })
	}
	byPrio(out)
	byPrio(old)
	return append(out, old...)
}
