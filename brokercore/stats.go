package brokercore

import (
	"sync/atomic"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

type atomicInt32 = atomic.Int32

// Stats are the broker's counters, read by $SYS, /metrics and the web
// console. Every field is an atomic 64-bit counter (aligned on 32-bit
// platforms); read them with Load.
type Stats struct {
	ClientsConnected    counter // now
	ClientsTotal        counter // connections accepted since start
	ClientsMaximum      counter // most connected at once
	ClientsDisconnected counter // persistent sessions without a connection (see Broker.Stats)

	MessagesReceived counter // PUBLISH received (all QoS), wills and in-process publishes
	MessagesSent     counter // PUBLISH sent (all QoS), in-process deliveries
	BytesReceived    counter
	BytesSent        counter
	ReceivedByQoS    [3]counter
	SentByQoS        [3]counter

	Subscriptions counter // current
	Retained      counter // current retained messages
	Queued        counter // messages waiting in session queues now
	FlowHeld      counter // times a subscriber's backlog reached max_queued and held its publishers (flow.go)

	Dropped DropStats
}

// DropStats counts messages not delivered, by reason.
type DropStats struct {
	QueueFull     counter // an offline persistent session's max_queued reached: its oldest message dropped
	SlowClient    counter // unused since online subscribers get flow control (kept for /metrics)
	Expired       counter // message expiry passed while queued
	TooLarge      counter // over the client's Maximum Packet Size
	NotAuthorized counter // ACL denied publish or delivery
	NoSubscribers counter // nobody subscribed
	TapFailed     counter // a tap or the store refused a QoS 1/2 message
	Malformed     counter // connections closed for a bad packet
}

// Stats returns the broker's live counters (a pointer: the fields are
// atomics; read them with Load).
func (b *Broker) Stats() *Stats {
	b.mu.Lock()
	var off int64
	for _, s := range b.sessions {
		s.mu.Lock()
		if !s.online() && s.persistent {
			off++
		}
		s.mu.Unlock()
	}
	b.mu.Unlock()
	b.stats.ClientsDisconnected.Store(off)
	return &b.stats
}

func (st *Stats) clientConnected() {
	n := st.ClientsConnected.Add(1)
	st.ClientsTotal.Add(1)
	for {
		m := st.ClientsMaximum.Load()
		if n <= m || st.ClientsMaximum.CompareAndSwap(m, n) {
			return
		}
	}
}

func (st *Stats) clientDisconnected() { st.ClientsConnected.Add(-1) }

func (st *Stats) countReceived(m *msg.Message) {
	st.MessagesReceived.Add(1)
	if m.QoS <= 2 {
		st.ReceivedByQoS[m.QoS].Add(1)
	}
}

// countSent counts an in-process delivery (the writer counts network ones).
func (st *Stats) countSent(om *outMsg) {
	st.MessagesSent.Add(1)
	st.SentByQoS[om.qos%3].Add(1)
}

// countPublishSent counts a PUBLISH as the writer sends it.
func (st *Stats) countPublishSent(qos byte, n int) {
	st.MessagesSent.Add(1)
	if qos <= 2 {
		st.SentByQoS[qos].Add(1)
	}
}
