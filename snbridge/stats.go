package snbridge

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DropReason names why a datagram or a message was dropped.
type DropReason int

// Drop reasons, as counted in Stats.Drops.
const (
	DropMalformed      DropReason = iota // not a well-formed MQTT-SN message (section 5)
	DropLengthMismatch                   // Length field disagrees with the datagram size
	DropUnknownType                      // reserved MsgType
	DropNotConnected                     // a message that needs a connection from an unknown client
	DropUnexpected                       // a message the gateway does not expect from a client (e.g. CONNACK)
	DropFlood                            // one address had too many datagrams waiting
	DropOverload                         // every worker was busy
	DropTooManyPeers                     // too many addresses without a connection
	DropQueueFull                        // an awake client's outbound queue overflowed
	DropSleepBuffer                      // a sleeping client's buffer overflowed (section 6.14)
	DropRetries                          // Nretry exhausted for a PUBLISH or REGISTER to the client (section 6.13)
	DropRejected                         // the client refused a PUBLISH or REGISTER with a return code
	DropWriteError                       // sending to the peer failed
	DropQoSMinus1                        // QoS -1 PUBLISH that could not be published
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"malformed", "length_mismatch", "unknown_type", "not_connected", "unexpected",
	"flood", "overload", "too_many_peers", "queue_full", "sleep_buffer_full",
	"retries_exhausted", "rejected_by_client", "write_error", "qos_minus1_failed",
}

func (r DropReason) String() string {
	if r >= 0 && r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Stats is a snapshot of the gateway for metrics and the console.
type Stats struct {
	// Clients by state (section 6.14, Figure 4). Disconnected clients with
	// clean session false are kept (their topic ids and queue) and counted.
	Active, Asleep, Awake, Lost, Disconnected int
	// MessagesIn / MessagesOut count MQTT-SN messages received and sent.
	MessagesIn, MessagesOut uint64
	// PublishIn counts PUBLISH messages from clients published into the
	// broker; PublishOut PUBLISH messages sent to clients (first sends).
	PublishIn, PublishOut uint64
	// Drops by DropReason name.
	Drops map[string]uint64
}

type counters struct {
	in, out, pubIn, pubOut atomic.Uint64
	drops                  [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r DropReason) { c.drops[r].Add(1) }

// rateLog logs a warning once per (reason, address) per interval, so that a
// flood of bad datagrams costs one log line a minute, not one each.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	seen  map[string]time.Time
}

func (l *rateLog) warn(now time.Time, reason DropReason, addr string, msg string, attrs ...any) {
	key := reason.String() + "|" + addr
	l.mu.Lock()
	if last, ok := l.seen[key]; ok && now.Sub(last) < l.every {
		l.mu.Unlock()
		return
	}
	if len(l.seen) > 4096 {
		clear(l.seen)
	}
	l.seen[key] = now
	l.mu.Unlock()
	l.log.Warn(msg, append([]any{"reason", reason.String(), "addr", addr}, attrs...)...)
}
