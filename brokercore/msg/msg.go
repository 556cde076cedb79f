// Package msg is all that the other parts of Outpost see of the broker: the
// Message that flows through it and the small interfaces through which
// snbridge, adapters and storeforward publish into it, subscribe to it, hold
// a broker session, tap cloud-bound messages and share the one durable store.
//
// It imports only the standard library. The broker (package brokercore)
// implements Publisher, Subscriber and Sessions; storeforward implements Tap;
// storeforward/queue implements Store. Nothing here does I/O.
//
// Ordering: an in-process publisher's messages take the same path as a
// network client's and are ordered the same way (MQTT 5.0 section 4.6): for
// one publisher, one topic and one QoS, every subscriber, and the tap, see them
// in publish order.
package msg

import (
	"context"
	"errors"
	"time"
)

// Message is one application message as the broker routes it.
//
// The zero value of every optional field means "absent". A Message handed to
// a callback (Subscribe, Tap) must be treated as read-only: the same Payload
// slice may be shared by every subscriber.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte // 0, 1 or 2
	Retain  bool

	// MQTT 5.0 properties that travel with the message (section 3.3.2.3).
	// They are passed through unchanged to v5 subscribers and dropped for
	// v3.1.1 ones.
	PayloadFormat   byte          // 0 unspecified bytes, 1 UTF-8
	MessageExpiry   time.Duration // 0: never expires
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	UserProperties  []UserProperty

	// Origin, set by the broker on the publish path; publishers leave them
	// empty (an in-process publisher names itself in Publish options).
	ClientID string    // the publishing client (for no-local and logs)
	Received time.Time // when the broker accepted it (for expiry and the uplink's timestamp)
}

// UserProperty is an MQTT 5.0 user property, a name/value pair that may repeat.
type UserProperty struct {
	Key, Value string
}

// Clone returns a deep copy of m, safe to keep and modify.
func (m Message) Clone() Message {
	c := m
	c.Payload = append([]byte(nil), m.Payload...)
	c.CorrelationData = append([]byte(nil), m.CorrelationData...)
	if m.CorrelationData == nil {
		c.CorrelationData = nil
	}
	if m.UserProperties != nil {
		c.UserProperties = append([]UserProperty(nil), m.UserProperties...)
	}
	return c
}

// Expired reports whether m's message expiry interval has passed at now.
func (m *Message) Expired(now time.Time) bool {
	return m.MessageExpiry > 0 && !m.Received.IsZero() && now.Sub(m.Received) >= m.MessageExpiry
}

// Errors a Publisher returns that callers branch on. Implementations wrap
// them with the operation and topic (errors.Is works).
var (
	// ErrNotAuthorized: the ACL denies this publish or subscribe.
	// MQTT-SN maps it to return code 0x01 (rejected: congestion) or 0x03.
	ErrNotAuthorized = errors.New("not authorized")
	// ErrQuotaExceeded: the durable queue is full and its policy is reject
	// (MQTT 5 reason 0x97).
	ErrQuotaExceeded = errors.New("quota exceeded")
	// ErrInvalidTopic: the topic name or filter is not valid MQTT.
	ErrInvalidTopic = errors.New("invalid topic")
	// ErrClosed: the broker (or the session) has shut down.
	ErrClosed = errors.New("closed")
)

// Publisher publishes a message into the broker in-process.
//
// Publish takes the same path as a network PUBLISH: ACL, retained store,
// routing to subscribers, taps. For QoS 1 and 2 it returns only when the
// broker would have acknowledged a network publisher: after every tap that
// wants the message has made it durable (see Tap). It is safe for concurrent
// use; calls from one goroutine are ordered.
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// Subscriber lets an in-process part receive messages.
//
// fn is called from the broker's delivery path, one call at a time per
// subscription and in order; it must not block for long (hand the message to
// a buffered channel or queue). Messages carry the retain flag as
// published (MQTT 5 Retain As Published), so a subscriber can tell a
// retained value from a passing one. cancel removes the subscription and
// waits until no call of fn is running.
type Subscriber interface {
	Subscribe(filter string, qos byte, fn func(Message)) (cancel func(), err error)
}

// Sessions lets a gateway (snbridge) give each of its clients a full broker
// session: client id, persistent subscriptions, a will, ACLs as a username.
type Sessions interface {
	// Open starts (or resumes) the session of opts.ClientID, taking it over
	// from any other connection with that id, as a network CONNECT would.
	// present reports whether a stored session was resumed.
	Open(ctx context.Context, opts SessionOptions) (s Session, present bool, err error)
}

// SessionOptions describe an in-process client, as a CONNECT packet would.
type SessionOptions struct {
	ClientID string
	Username string // for ACLs; empty = anonymous
	// Listener names where the client came from, for logs and $SYS (e.g. "mqtt-sn udp 127.0.0.1:1884").
	Listener   string
	RemoteAddr string
	// CleanStart discards any stored session; with SessionExpiry 0 the
	// session also ends when it is closed (MQTT 3.1.1 clean session = true).
	CleanStart    bool
	SessionExpiry time.Duration
	Will          *Message      // published when the session closes without a clean disconnect
	WillDelay     time.Duration // MQTT 5 will delay interval
	// Deliver is called for every message routed to the session, in order,
	// one call at a time; while the session is resumed these include the
	// messages queued while it was away. The message counts as delivered when
	// Deliver returns (the gateway owns its own retransmission). It must not
	// block for long.
	Deliver func(Message)
}

// Session is an open in-process broker session.
type Session interface {
	Publisher
	// Subscribe adds or replaces a subscription; granted is the QoS granted.
	// Retained messages matching filter are delivered through Deliver.
	Subscribe(filter string, qos byte) (granted byte, err error)
	Unsubscribe(filter string) error
	// SetWill replaces (nil removes) the will, as MQTT-SN WILLTOPICUPD/WILLMSGUPD do.
	SetWill(will *Message)
	// Close ends the connection: with sendWill the will is published
	// (keepalive lapsed, lost sleeper), without it is a clean DISCONNECT.
	// A persistent session stays stored and queues messages until its
	// expiry; Deliver is not called after Close returns.
	Close(sendWill bool) error
}

// Tap sees every message the broker accepts, before the publisher is
// acknowledged. storeforward implements it to make cloud-bound messages
// durable.
type Tap interface {
	// Wants reports whether the tap takes m. It is called on the publish path
	// for every message and must be cheap and must not block.
	Wants(m *Message) bool
	// Append takes a message the tap wants. The broker holds the publisher's
	// PUBACK / PUBREC (and an in-process Publish) until done is called; with
	// an error the publisher is refused (MQTT 5: the reason code of
	// ErrQuotaExceeded or 0x80; MQTT 3.1.1: the connection is closed, the only
	// refusal 3.1.1 has). done may be called from any goroutine, exactly once.
	// Append must not block the caller for long: durable work happens
	// elsewhere and reports through done. Calls come in the order the broker
	// accepted the messages.
	Append(m Message, done func(error))
}

// Op is one write to a Store: set Key to Value, or delete Key.
type Op struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// Store is the one durable key-value store the parts share (a Badger
// database in the field, memory in tests). Keys carry the DESIGN.md
// prefixes: q/ queue, u/ uplink, s/ sessions, r/ retained, m/ metadata.
type Store interface {
	// Commit applies ops atomically and durably (fsynced) and then calls done
	// exactly once, from any goroutine. Commits are applied in call order;
	// concurrent commits are group-committed by the implementation.
	Commit(ops []Op, done func(error))
	// Scan calls fn for every key with prefix, in key order, with slices
	// valid only during the call. An error from fn stops the scan and is returned.
	Scan(prefix []byte, fn func(key, value []byte) error) error
}

// CommitSync is Commit that waits for done.
func CommitSync(s Store, ops []Op) error {
	ch := make(chan error, 1)
	s.Commit(ops, func(err error) { ch <- err })
	return <-ch
}
