package storeforward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

const (
	// readBatch is how many records one queue read returns.
	readBatch = 256
	// pollInterval bounds how long an idle drain waits without a tap
	// signal (records appended by another writer, a budget day rollover).
	pollInterval = time.Second
	// retryPause is the wait after a send failed with the link still up
	// (the session store could not write: a full disk).
	retryPause = time.Second
)

// User property names the uplink adds to every message in MQTT 5.0
// (section 3.3.2.3.7), so the cloud can drop replayed duplicates and tell
// late data from live.
const (
	// PropID is "<database id>-<lane>-<queue seq>", the same on every resend.
	PropID = "outpost-id"
	// PropTime is when the hub's broker accepted the message, RFC 3339 UTC.
	PropTime = "outpost-ts"
)

// drain sends the queue to the cloud in order until the connection ends
// (its error) or ctx is done (nil).
//
// Order: the client resends what the session holds first (DUP set,
// [MQTT-4.6.0-1]); then the drain carries on where it stopped, after the
// QoS 0 records of the last connection that were not known to be written.
// Each lane's cursor only moves forward in a process: a record is sent
// once by the drain and after that belongs to the client's session until
// its ack. At start the cursors are at the lanes' heads and the records the
// session already held (QoS 2 state from the database) are skipped. Lanes
// drain in priority order; within a lane records go in queue order.
func (f *Forwarder) drain(ctx context.Context, c *client.Client, comp chan<- sent) error {
	if err := f.resendQoS0(ctx, c, comp); err != nil {
		return err
	}
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-c.Done():
			return c.Err()
		default:
		}
		if err := f.resendRefused(ctx, c, comp); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		worked, err := f.drainOnce(ctx, c, comp)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if worked {
			continue
		}
		select {
		case <-f.appended:
		case <-poll.C:
		case <-c.Done():
			return c.Err()
		case <-ctx.Done():
			return nil
		}
	}
}

// drainOnce sends from the highest-priority lane that has records to
// send; it reports whether it found any.
func (f *Forwarder) drainOnce(ctx context.Context, c *client.Client, comp chan<- sent) (bool, error) {
	for i, l := range f.lanes {
		if !f.budgetAllows(i) {
			continue
		}
		recs, err := f.db.Read(l.name, l.next, readBatch)
		if err != nil {
			if errors.Is(err, msg.ErrClosed) {
				return false, err
			}
			f.log.Error("reading the queue", "lane", l.name, "err", err)
			continue
		}
		if len(recs) == 0 {
			continue
		}
		for _, r := range recs {
			if i > 0 && f.higherWaiting(i) {
				return true, nil
			}
			if !f.budgetAllows(i) {
				break
			}
			tag := f.store.tag(l.name, r.Seq)
			if f.skip[tag] || f.store.holds(tag) {
				// The session had it when we started: the client resends it.
				delete(f.skip, tag)
				l.next = r.Seq + 1
				continue
			}
			ok, err := f.send(ctx, c, l, r, tag, comp)
			if err != nil {
				return true, err
			}
			if !ok {
				return true, nil // try again after a pause
			}
			l.next = r.Seq + 1
		}
		return true, nil
	}
	return false, nil
}

// resendQoS0 sends again, first, the QoS 0 records of the previous
// connection that were not known to be written when it ended.
func (f *Forwarder) resendQoS0(ctx context.Context, c *client.Client, comp chan<- sent) error {
	f.mu.Lock()
	retry := f.retry0
	f.retry0 = nil
	f.mu.Unlock()
	for i, tag := range retry {
		lane, rec, ok := f.queuedRecord(tag)
		if !ok {
			continue // acknowledged or dropped meanwhile
		}
		l := &laneCursor{name: lane}
		if ok, err := f.send(ctx, c, l, rec, tag, comp); err != nil || !ok {
			f.mu.Lock()
			f.retry0 = append(retry[i:], f.retry0...)
			f.mu.Unlock()
			return err
		}
	}
	return nil
}

// queuedRecord is the record a retry tag names, if it is still queued
// (not acknowledged or dropped meanwhile).
func (f *Forwarder) queuedRecord(tag uint64) (string, queue.Record, bool) {
	lane, seq, ok := f.store.untag(tag)
	if !ok {
		return "", queue.Record{}, false
	}
	recs, err := f.db.Read(lane, seq, 1)
	if err != nil || len(recs) == 0 || recs[0].Seq != seq {
		return "", queue.Record{}, false
	}
	return lane, recs[0], true
}

// resendRefused sends again the records the cloud refused for now (over
// its quota, busy), after a pause that grows while refusals go on. They
// go ahead of what the drain has not sent yet, but after what was in
// flight with them: a throttled burst can arrive out of order, not lost.
func (f *Forwarder) resendRefused(ctx context.Context, c *client.Client, comp chan<- sent) error {
	retry := f.store.takeRetry()
	if len(retry) == 0 {
		return nil
	}
	f.mu.Lock()
	n := f.throttled
	f.throttled++
	f.mu.Unlock()
	tb := f.deps.ThrottleBackoff
	if tb.Min <= 0 || tb.Max <= 0 {
		tb = Backoff{Min: time.Second, Max: time.Minute}
	}
	d := backoff(tb, n)
	f.log.Warn("the cloud refused messages for now (quota or busy); sending them again after a pause",
		"messages", len(retry), "pause", d.Round(time.Millisecond))
	f.setPaused(fmt.Sprintf("the cloud refused %d messages for now; sending again in %v", len(retry), d.Round(time.Millisecond)))
	defer f.setPaused("")
	select {
	case <-time.After(d):
	case <-c.Done():
	case <-ctx.Done():
	}
	for i, tag := range retry {
		lane, rec, ok := f.queuedRecord(tag)
		if !ok {
			continue // dropped meanwhile (queue policy)
		}
		if ok, err := f.send(ctx, c, &laneCursor{name: lane}, rec, tag, comp); err != nil || !ok {
			f.store.requeue(retry[i:])
			return err
		}
	}
	return nil
}

// higherWaiting reports whether a lane of higher priority than lanes[i]
// has records the drain has not read yet.
func (f *Forwarder) higherWaiting(i int) bool {
	for _, h := range f.lanes[:i] {
		st := f.db.Stat(h.name)
		if st.Depth > 0 && st.Next > h.next && f.budgetAllows(0) {
			return true
		}
	}
	return false
}

// send publishes record r. ok false: not sent, try again later; an error
// ends the session (the connection is gone or ctx is done).
func (f *Forwarder) send(ctx context.Context, c *client.Client, l *laneCursor, r queueRecord, tag uint64, comp chan<- sent) (ok bool, err error) {
	m, queuedAfter, err := decodeQueued(r.Value)
	if err != nil {
		f.log.Error("dropping a queue record that does not decode", "lane", l.name, "seq", r.Seq, "err", err)
		f.count(func(st *Status) { st.Corrupt++ })
		f.store.ack(l.name, r.Seq)
		return true, nil
	}
	now := f.now()
	if m.Received.IsZero() {
		m.Received = r.Appended
	}
	age := sinceReceived(&m, queuedAfter, r.Appended, now)
	if m.MessageExpiry > 0 && age >= m.MessageExpiry {
		// MQTT 5.0 3.3.2.3.3: an expired message is not delivered.
		f.count(func(st *Status) { st.Expired++ })
		f.store.ack(l.name, r.Seq)
		return true, nil
	}
	lim := c.Limits()
	cm := &client.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain, Tag: tag}
	var why []string // downgrades, one count per message
	if cm.QoS > lim.MaxQoS {
		// [MQTT-3.2.2-11]: never above the cloud's Maximum QoS.
		cm.QoS = lim.MaxQoS
		why = append(why, fmt.Sprintf("the cloud's Maximum QoS is %d: messages above it are sent at QoS %d", lim.MaxQoS, lim.MaxQoS))
	}
	if cm.Retain && !lim.RetainAvailable {
		// [MQTT-3.2.2-14]
		cm.Retain = false
		why = append(why, "the cloud does not support retained messages: messages are sent without retain")
	}
	if len(why) > 0 {
		f.downgraded(why)
	}
	if f.ccfg.ProtocolVersion == packet.V5 {
		cm.Props = v5Props(&m, age, f.msgID(l.name, r.Seq))
	}
	size := wireSize(cm)
	tok, err := c.PublishAsync(ctx, cm)
	switch {
	case err == nil:
		f.count(func(st *Status) {
			st.Sent++
			f.addBytes(st, now, size)
		})
		comp <- sent{tok: tok, tag: tag, qos: cm.QoS, size: size}
		return true, nil
	case errors.Is(err, client.ErrNotSupported), errors.Is(err, client.ErrInvalid):
		// Larger than the cloud's Maximum Packet Size, or a topic the
		// cloud cannot take: it will never go; drop it and say so.
		f.count(func(st *Status) { st.Refused++ })
		f.log.Warn("dropping a message the cloud cannot take", "topic", cm.Topic, "lane", l.name, "seq", r.Seq, "err", err)
		f.store.ack(l.name, r.Seq)
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, client.ErrConnectionLost), errors.Is(err, client.ErrClosed):
		return false, err
	}
	select {
	case <-c.Done():
		return false, c.Err()
	default:
	}
	// The link is up but the message could not be taken (its session
	// state could not be written): wait and try the same record again.
	f.log.Warn("cannot send a queued message yet", "topic", cm.Topic, "err", err, "retry_in", retryPause)
	select {
	case <-time.After(retryPause):
	case <-c.Done():
	case <-ctx.Done():
	}
	return false, nil
}

// v5Props carries m's MQTT 5 properties to the cloud, with the remaining
// expiry [MQTT-3.3.2-6] (age: since m was received) and the outpost-id and
// outpost-ts user properties.
func v5Props(m *msg.Message, age time.Duration, id string) packet.Properties {
	var p packet.Properties
	if m.PayloadFormat != 0 {
		v := m.PayloadFormat
		p.PayloadFormat = &v
	}
	if m.MessageExpiry > 0 {
		left := m.MessageExpiry - age
		secs := uint32(min(math.Ceil(left.Seconds()), math.MaxUint32))
		p.MessageExpiry = &secs
	}
	p.ContentType = m.ContentType
	p.ResponseTopic = m.ResponseTopic
	p.CorrelationData = m.CorrelationData
	p.User = make([]packet.UserProperty, 0, len(m.UserProperties)+2)
	for _, u := range m.UserProperties {
		p.User = append(p.User, packet.UserProperty{Key: u.Key, Value: u.Value})
	}
	p.User = append(p.User,
		packet.UserProperty{Key: PropID, Value: id},
		packet.UserProperty{Key: PropTime, Value: m.Received.UTC().Format(time.RFC3339Nano)})
	return p
}

// msgID is the outpost-id of record seq of lane.
func (f *Forwarder) msgID(lane string, seq uint64) string {
	return f.dbID + "-" + lane + "-" + strconv.FormatUint(seq, 10)
}

// wireSize estimates the bytes a PUBLISH puts on the link: fixed header,
// topic, packet id, properties, payload (a topic alias makes it smaller).
func wireSize(m *client.Message) int {
	n := 5 + 2 + len(m.Topic) + len(m.Payload)
	if m.QoS > 0 {
		n += 2
	}
	for _, u := range m.Props.User {
		n += 5 + len(u.Key) + len(u.Value)
	}
	return n + len(m.Props.ContentType) + len(m.Props.ResponseTopic) + len(m.Props.CorrelationData)
}
