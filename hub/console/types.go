package console

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Sources is everything the console reads and does, as small funcs the hub
// fills from the real parts (hub/http.go). A nil func means the part is not
// running (e.g. mqttsn disabled, no sensors): the console shows it as absent.
type Sources struct {
	Version string
	Started time.Time // the hub's start, for uptime

	Broker  func() BrokerStats
	Gateway func() GatewayStats // nil: MQTT-SN gateway off
	// Clients lists the MQTT and MQTT-SN sessions. nil: the broker has no
	// per-session accessor; the console then shows the counts only.
	Clients func() []Client
	Sensors func() []Sensor
	Queue   func() QueueState
	Uplink  func() UplinkState

	// Peek returns up to n records at the head of lane ("" = every lane,
	// highest priority first).
	Peek func(lane string, n int) ([]QueueRecord, error)
	// Purge deletes every queued record of lane ("" = every lane) and
	// returns how many it deleted.
	Purge func(lane string) (int64, error)
	// ReadSensor reads a sensor now, without publishing.
	ReadSensor func(ctx context.Context, name string) (SensorReading, error)

	Publish msg.Publisher // the test-message action; nil: action refused
	// MayPublish reports whether a logged-in user may publish to topic
	// (the broker's ACL); nil: no ACL.
	MayPublish func(user, topic string) bool

	Subscribe msg.Subscriber // the live topic tree and sensor history; nil: none

	// Health is /healthz: nil error = 200 "ok", else 503 with the reason.
	Health func() error
}

// BrokerStats are the broker's counters (brokercore.Stats, loaded).
type BrokerStats struct {
	ClientsConnected    int64            `json:"clients_connected"`
	ClientsTotal        int64            `json:"clients_total"`
	ClientsMaximum      int64            `json:"clients_maximum"`
	ClientsDisconnected int64            `json:"clients_disconnected"` // persistent sessions offline
	MessagesReceived    int64            `json:"messages_received"`
	MessagesSent        int64            `json:"messages_sent"`
	ReceivedByQoS       [3]int64         `json:"received_by_qos"` // PUBLISH received at QoS 0, 1, 2
	SentByQoS           [3]int64         `json:"sent_by_qos"`
	BytesReceived       int64            `json:"bytes_received"`
	BytesSent           int64            `json:"bytes_sent"`
	Subscriptions       int64            `json:"subscriptions"`
	Retained            int64            `json:"retained"`
	Queued              int64            `json:"queued"`
	Dropped             map[string]int64 `json:"dropped"` // by reason
}

// GatewayStats are the MQTT-SN gateway's counters (snbridge.Stats).
type GatewayStats struct {
	Clients     map[string]int    `json:"clients"` // by state: active, asleep, awake, lost, disconnected
	MessagesIn  uint64            `json:"messages_in"`
	MessagesOut uint64            `json:"messages_out"`
	PublishIn   uint64            `json:"publish_in"`
	PublishOut  uint64            `json:"publish_out"`
	Drops       map[string]uint64 `json:"drops"`
}

// Client is one MQTT or MQTT-SN session.
type Client struct {
	ID            string         `json:"id"`
	Protocol      string         `json:"protocol"` // "mqtt 3.1.1", "mqtt 5.0", "mqtt-sn 1.2", "in-process"
	State         string         `json:"state"`    // connected | disconnected | asleep | awake | lost
	Username      string         `json:"username,omitempty"`
	Remote        string         `json:"remote,omitempty"`
	Listener      string         `json:"listener,omitempty"`
	Persistent    bool           `json:"persistent"`
	Since         time.Time      `json:"since,omitzero"` // connected or disconnected at
	Subscriptions []Subscription `json:"subscriptions"`
	InFlight      int            `json:"inflight"`
	Queued        int            `json:"queued"`
}

// Subscription is one topic filter of a client.
type Subscription struct {
	Filter string `json:"filter"`
	QoS    byte   `json:"qos"`
}

// Sensor is one configured sensor and its health (adapters.Status).
type Sensor struct {
	Name          string         `json:"name"`
	Driver        string         `json:"driver"`
	Bus           string         `json:"bus"`
	Topic         string         `json:"topic"`
	Interval      Duration       `json:"interval"`
	Simulated     bool           `json:"simulated"`
	State         string         `json:"state"` // starting | ok | error
	Error         string         `json:"error,omitempty"`
	Since         time.Time      `json:"since,omitzero"`
	Last          *SensorReading `json:"last,omitempty"`
	LastPublish   time.Time      `json:"last_publish,omitzero"`
	Reads         uint64         `json:"reads"`
	Errors        uint64         `json:"errors"`
	Publishes     uint64         `json:"publishes"`
	PublishErrors uint64         `json:"publish_errors"`
}

// SensorReading is one reading: every quantity with its unit.
type SensorReading struct {
	Time   time.Time `json:"time"`
	Values []Value   `json:"values"`
}

// Value is one quantity of a reading.
type Value struct {
	Quantity string  `json:"quantity"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit,omitempty"`
}

// QueueState is the durable store-and-forward queue.
type QueueState struct {
	Depth     int64    `json:"depth"`
	Bytes     int64    `json:"bytes"`
	OldestAge Duration `json:"oldest_age"`
	// Rate is the recent drain rate (messages/s) and ETA the time to drain
	// Depth at that rate; 0 when empty or nothing drains.
	Rate  float64     `json:"rate"`
	ETA   Duration    `json:"eta"`
	Lanes []QueueLane `json:"lanes"`
	// Counters of the database since it was opened.
	Appends    int64 `json:"appends"`
	Acked      int64 `json:"acked"`
	Dropped    int64 `json:"dropped"`  // by the size or age policy
	Rejected   int64 `json:"rejected"` // refused: queue full (reject policy) or disk full
	Syncs      int64 `json:"syncs"`    // committed transactions (one fsync each)
	SyncErrors int64 `json:"sync_errors"`
	DiskBytes  int64 `json:"disk_bytes"` // the database on disk
}

// QueueLane is one lane (forward-rule priority) of the queue.
type QueueLane struct {
	Lane      string   `json:"lane"`
	Depth     int64    `json:"depth"`
	Bytes     int64    `json:"bytes"`
	OldestAge Duration `json:"oldest_age"`
}

// QueueRecord is one queued cloud-bound message, for peek.
type QueueRecord struct {
	Lane     string    `json:"lane"`
	Seq      uint64    `json:"seq"`
	Appended time.Time `json:"appended"`
	Topic    string    `json:"topic"`
	QoS      byte      `json:"qos"`
	Retain   bool      `json:"retain"`
	Size     int       `json:"size"`              // payload bytes
	Payload  string    `json:"payload,omitempty"` // UTF-8 text, at most 1 KiB
	Base64   bool      `json:"base64,omitempty"`  // Payload is base64 (binary payload)
	Error    string    `json:"error,omitempty"`   // the record did not decode
}

// UplinkState is the cloud link.
type UplinkState struct {
	Enabled         bool      `json:"enabled"`
	State           string    `json:"state"` // disabled | connecting | connected | disconnected
	URL             string    `json:"url,omitempty"`
	ClientID        string    `json:"client_id,omitempty"`
	LastConnect     time.Time `json:"last_connect,omitzero"`
	LastDisconnect  time.Time `json:"last_disconnect,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	Connects        int64     `json:"connects"`
	Reconnects      int64     `json:"reconnects"`
	ConnectFailures int64     `json:"connect_failures"`
	InFlight        int       `json:"inflight"`
	Sent            int64     `json:"sent"`
	Acked           int64     `json:"acked"`
	Rejected        int64     `json:"rejected"`
	Paused          string    `json:"paused,omitempty"`
}

// Overview is the front page: one snapshot of everything.
type Overview struct {
	Version      string        `json:"version"`
	Uptime       Duration      `json:"uptime"`
	Time         time.Time     `json:"time"`
	RateIn       float64       `json:"rate_in"`  // messages/s received by the broker
	RateOut      float64       `json:"rate_out"` // messages/s sent by the broker
	Broker       BrokerStats   `json:"broker"`
	Gateway      *GatewayStats `json:"mqttsn,omitempty"`
	Uplink       UplinkState   `json:"uplink"`
	Queue        QueueState    `json:"queue"`
	SensorsOK    int           `json:"sensors_ok"`
	SensorsError int           `json:"sensors_error"`
	Sensors      []SensorBrief `json:"sensors"`
	Healthy      bool          `json:"healthy"`
	Health       string        `json:"health,omitempty"`
}

// SensorBrief is a sensor's line on the overview.
type SensorBrief struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// Duration is a time.Duration that is JSON seconds (a number), which
// JavaScript can format, rather than nanoseconds.
type Duration time.Duration

// MarshalJSON writes d as seconds with millisecond precision.
func (d Duration) MarshalJSON() ([]byte, error) {
	s := float64(time.Duration(d).Milliseconds()) / 1000
	return appendFloat(nil, s), nil
}

// UnmarshalJSON reads seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration in seconds: %w", err)
	}
	*d = Duration(s * float64(time.Second))
	return nil
}
