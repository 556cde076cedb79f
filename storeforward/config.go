package storeforward

import "time"

// Config is the uplink section of outpost.yaml.
type Config struct {
	Enabled         bool           `mapstructure:"enabled" yaml:"enabled"`
	URL             string         `mapstructure:"url" yaml:"url"`                           // mqtt://, mqtts://, ws://, wss://
	ProtocolVersion int            `mapstructure:"protocol_version" yaml:"protocol_version"` // 4 (3.1.1) or 5; 0 = 5
	ClientID        string         `mapstructure:"client_id" yaml:"client_id"`               // "" = outpost-<site>
	Username        string         `mapstructure:"username" yaml:"username"`
	PasswordFile    string         `mapstructure:"password_file" yaml:"password_file"`
	TLS             TLSConfig      `mapstructure:"tls" yaml:"tls"`
	KeepAlive       time.Duration  `mapstructure:"keepalive" yaml:"keepalive"`       // 0 = 60s
	MaxInflight     int            `mapstructure:"max_inflight" yaml:"max_inflight"` // v3.1.1 window; v5 uses the cloud's Receive Maximum; 0 = 20
	Forward         []ForwardRule  `mapstructure:"forward" yaml:"forward"`
	Downlink        []DownlinkRule `mapstructure:"downlink" yaml:"downlink"`
	Queue           QueueConfig    `mapstructure:"queue" yaml:"queue"`
	Reconnect       Backoff        `mapstructure:"reconnect" yaml:"reconnect"`
	// StatusTopic carries the retained birth "online" and the will "offline"; "" = <first remote_prefix>status.
	StatusTopic string `mapstructure:"status_topic" yaml:"status_topic"`
	// Budget caps what the uplink sends per day on a metered link.
	Budget Budget `mapstructure:"budget" yaml:"budget"`
}

// Budget is a daily cap on the bytes the uplink sends (estimated PUBLISH
// packet sizes, counted from local midnight). When it is reached the queue
// keeps filling and drains again the next day.
type Budget struct {
	DailyBytes string `mapstructure:"daily_bytes" yaml:"daily_bytes"` // e.g. "50MB"; "" = no cap
	// Reserve is the part of DailyBytes only the highest-priority lane
	// may use (alarms still go when bulk telemetry has used its share).
	Reserve string `mapstructure:"reserve" yaml:"reserve"`
}

// TLSConfig for the cloud connection.
type TLSConfig struct {
	CAFile   string `mapstructure:"ca_file" yaml:"ca_file"`
	CertFile string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string `mapstructure:"key_file" yaml:"key_file"`
	// ServerName overrides the name checked against the cloud's certificate.
	ServerName string `mapstructure:"server_name" yaml:"server_name"`
}

// ForwardRule sends local messages matching Filter to the cloud through the durable queue.
type ForwardRule struct {
	Filter       string `mapstructure:"filter" yaml:"filter"`
	QoS          byte   `mapstructure:"qos" yaml:"qos"`
	RemotePrefix string `mapstructure:"remote_prefix" yaml:"remote_prefix"`
	// Priority lane: higher drains first; each lane keeps its own order.
	Priority int `mapstructure:"priority" yaml:"priority"`
}

// DownlinkRule subscribes on the cloud and publishes locally.
type DownlinkRule struct {
	Filter      string `mapstructure:"filter" yaml:"filter"`
	QoS         byte   `mapstructure:"qos" yaml:"qos"`
	StripPrefix string `mapstructure:"strip_prefix" yaml:"strip_prefix"`
	LocalPrefix string `mapstructure:"local_prefix" yaml:"local_prefix"`
}

// QueueConfig bounds the durable queue.
type QueueConfig struct {
	MaxBytes string        `mapstructure:"max_bytes" yaml:"max_bytes"` // e.g. "1GiB"; "" = 1GiB
	MaxAge   time.Duration `mapstructure:"max_age" yaml:"max_age"`     // 0 = 720h
	WhenFull string        `mapstructure:"when_full" yaml:"when_full"` // drop_oldest (default) | reject
	// DurableQoS0: QoS 0 appends also wait for the sync before routing completes.
	DurableQoS0 bool `mapstructure:"durable_qos0" yaml:"durable_qos0"`
}

// Backoff is the reconnect delay range (exponential with jitter).
type Backoff struct {
	Min time.Duration `mapstructure:"min" yaml:"min"` // 0 = 1s
	Max time.Duration `mapstructure:"max" yaml:"max"` // 0 = 5m
}
