package brokercore

import (
	"time"

	"github.com/outpost-iot/outpost/brokercore/listener"
)

// Config is the broker section of outpost.yaml (key "broker"). The zero
// value of every field means its documented default; the configs package
// fills it from YAML, OUTPOST_BROKER_* variables and flags.
type Config struct {
	// Listeners; empty means one plain listener on 127.0.0.1:1883.
	Listeners []listener.Config `mapstructure:"listeners" yaml:"listeners"`
	// AllowAnonymous: nil means true while every listener is loopback and
	// false otherwise, as Mosquitto 2.0.
	AllowAnonymous *bool  `mapstructure:"allow_anonymous" yaml:"allow_anonymous"`
	PasswordFile   string `mapstructure:"password_file" yaml:"password_file"` // mosquitto_passwd format
	ACLFile        string `mapstructure:"acl_file" yaml:"acl_file"`           // mosquitto acl_file format
	// MaxInflight is the per-client window of unacknowledged QoS 1/2
	// deliveries (and the v5 Receive Maximum the broker announces). 0 = 20.
	MaxInflight int `mapstructure:"max_inflight" yaml:"max_inflight"`
	// MaxQueued bounds the messages queued per offline persistent session;
	// older ones are dropped, counted and logged. For an online client it
	// is the flow-control mark: its publishers are held (not dropped)
	// while this many messages wait for it. 0 = 10000.
	MaxQueued int `mapstructure:"max_queued" yaml:"max_queued"`
	// MaxKeepalive caps a client's keepalive; a v5 client asking for more
	// is told the Server Keep Alive. 0 = 65535.
	MaxKeepalive int `mapstructure:"max_keepalive" yaml:"max_keepalive"`
	// MaxPacketSize bounds an incoming packet. 0 = 268435455.
	MaxPacketSize int `mapstructure:"max_packet_size" yaml:"max_packet_size"`
	// MaxConnections; 0 = unlimited.
	MaxConnections int `mapstructure:"max_connections" yaml:"max_connections"`
	// ConnectTimeout closes a connection that has not sent CONNECT. 0 = 10s.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout" yaml:"connect_timeout"`
	// SysInterval is how often $SYS topics are published; 0 = 10s, negative = off.
	SysInterval time.Duration `mapstructure:"sys_interval" yaml:"sys_interval"`
}
