package brokercore

import (
	"sort"
	"time"
)

// ClientInfo describes one session for the web console and scripts: a
// network client (connected or, for a persistent session, away) or an
// in-process client opened through msg.Sessions (an MQTT-SN node, the
// uplink's downlink). Plain in-process subscribers are not listed.
type ClientInfo struct {
	ClientID      string
	Username      string
	Protocol      byte // 3, 4 or 5; 0 for an in-process session
	RemoteAddr    string
	Connected     bool
	Persistent    bool
	OfflineSince  time.Time // when the last connection ended (zero while connected)
	KeepAlive     time.Duration
	Subscriptions []SubscriptionInfo // sorted by filter
	InFlight      int                // QoS 1/2 deliveries sent and not acknowledged (connected clients)
	Queued        int                // deliveries waiting for the window or, away, for the client
}

// SubscriptionInfo is one subscription of a ClientInfo.
type SubscriptionInfo struct {
	Filter string
	QoS    byte
}

// Clients lists the sessions, sorted by client id.
func (b *Broker) Clients() []ClientInfo {
	ss := b.sessionList()
	out := make([]ClientInfo, 0, len(ss))
	for _, s := range ss {
		s.mu.Lock()
		if s.gone || (s.inproc && s.owner == nil && !s.persistent) {
			s.mu.Unlock()
			continue
		}
		ci := ClientInfo{
			ClientID:   s.id,
			Username:   s.username,
			Persistent: s.persistent,
			InFlight:   len(s.inflight),
			Queued:     len(s.queue) + len(s.pending),
		}
		switch {
		case s.conn != nil:
			ci.Connected = true
			ci.Protocol = s.conn.version
			ci.RemoteAddr = s.conn.addr
			ci.KeepAlive = s.conn.keepAlive
		case s.owner != nil:
			ci.Connected = true
		default:
			// Away: everything waits for the client, in-flight ones included
			// (they are re-sent with DUP on reconnect [MQTT-4.6.0-1]).
			ci.OfflineSince = s.offSince
			ci.Queued += ci.InFlight
			ci.InFlight = 0
		}
		for f, o := range s.subs.all() {
			ci.Subscriptions = append(ci.Subscriptions, SubscriptionInfo{Filter: f, QoS: o.QoS})
		}
		s.mu.Unlock() // subscriptions come in filter order (subSet)
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out
}
