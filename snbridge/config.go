package snbridge

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the mqttsn section of outpost.yaml. The zero value of every
// field is its documented default.
type Config struct {
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Listen is the UDP address; "" = 127.0.0.1:1884.
	Listen string `mapstructure:"listen" yaml:"listen"`
	// Listen6 is an optional UDP over IPv6 address, e.g. "[::1]:1884".
	Listen6 string `mapstructure:"listen6" yaml:"listen6"`
	// Serial is an optional radio modem on a UART.
	Serial *SerialConfig `mapstructure:"serial" yaml:"serial"`
	// DTLS is an optional DTLS 1.2 port (dtls.go).
	DTLS *DTLSConfig `mapstructure:"dtls" yaml:"dtls"`
	// GatewayID is sent in ADVERTISE and GWINFO; 0 = 1.
	GatewayID byte `mapstructure:"gateway_id" yaml:"gateway_id"`
	// AdvertiseInterval between ADVERTISE messages; 0 = 15m, negative = off.
	AdvertiseInterval time.Duration `mapstructure:"advertise_interval" yaml:"advertise_interval"`
	// Broadcast is where ADVERTISE and GWINFO go; "" = 255.255.255.255 on the listen port.
	Broadcast string `mapstructure:"broadcast" yaml:"broadcast"`
	// PredefinedTopics maps predefined topic ids to topic names, for every client.
	PredefinedTopics map[uint16]string `mapstructure:"predefined_topics" yaml:"predefined_topics"`
	// PredefinedTopicsFile is a file in the Paho MQTT-SN gateway's
	// predefined-topic format, merged with PredefinedTopics.
	PredefinedTopicsFile string `mapstructure:"predefined_topics_file" yaml:"predefined_topics_file"`
	// RetryInterval (Tretry) and MaxRetries (Nretry) for gateway-to-client
	// QoS 1/2 PUBLISH and REGISTER; 0 = 10s and 5.
	RetryInterval time.Duration `mapstructure:"retry_interval" yaml:"retry_interval"`
	MaxRetries    int           `mapstructure:"max_retries" yaml:"max_retries"`
	// SleepBuffer bounds the messages buffered per sleeping client; 0 = 100.
	SleepBuffer int `mapstructure:"sleep_buffer" yaml:"sleep_buffer"`
	// MaxClients; 0 = unlimited.
	MaxClients int `mapstructure:"max_clients" yaml:"max_clients"`

	// MaxQueued bounds the messages waiting for an awake client that
	// acknowledges slowly (one QoS 1/2 message is in flight at a time);
	// the oldest is dropped and counted. 0 = 1000.
	MaxQueued int `mapstructure:"max_queued" yaml:"max_queued"`
	// Workers handle datagrams; a client is always served by the same
	// worker, so its messages stay in order. A worker waits while the
	// broker makes a QoS 1/2 message durable, so this is also how many such
	// publishes can wait (and be group-committed) at once. 0 = 64.
	Workers int `mapstructure:"workers" yaml:"workers"`
	// PeerQueue bounds the datagrams one address may have waiting for its
	// worker; more are dropped as a flood. 0 = 64.
	PeerQueue int `mapstructure:"peer_queue" yaml:"peer_queue"`
	// ReadBuffer is the UDP socket receive (and send) buffer; 0 = 4 MiB.
	// Linux caps it at net.core.rmem_max unless the process has CAP_NET_ADMIN.
	ReadBuffer int `mapstructure:"read_buffer" yaml:"read_buffer"`
	// Username is the broker username every SN client's session gets (for
	// ACLs); "" = anonymous. MQTT-SN 1.2 has no credentials of its own.
	Username string `mapstructure:"username" yaml:"username"`

	// Clock replaces time.Now for the keepalive, sleep and retry timers
	// (tests). Not read from the config file.
	Clock func() time.Time `mapstructure:"-" yaml:"-"`
	// TickInterval is how often those timers are checked; 0 = 100ms.
	// Not read from the config file.
	TickInterval time.Duration `mapstructure:"-" yaml:"-"`
}

// SerialConfig is a serial transport for MQTT-SN frames (SLIP framing; see
// the package documentation).
type SerialConfig struct {
	Device string `mapstructure:"device" yaml:"device"` // e.g. /dev/ttyUSB0
	Baud   int    `mapstructure:"baud" yaml:"baud"`     // 0 = 9600
}

const defaultPort = "1884"

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:" + defaultPort
	}
	if c.GatewayID == 0 {
		c.GatewayID = 1
	}
	if c.AdvertiseInterval == 0 {
		c.AdvertiseInterval = 15 * time.Minute
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = 10 * time.Second
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.SleepBuffer == 0 {
		c.SleepBuffer = 100
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = 1000
	}
	if c.Workers == 0 {
		c.Workers = 64
	}
	if c.PeerQueue == 0 {
		c.PeerQueue = 64
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = 4 << 20
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.TickInterval == 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.Serial != nil && c.Serial.Baud == 0 {
		s := *c.Serial
		s.Baud = 9600
		c.Serial = &s
	}
	return c
}

// Validate checks c and names the key and value that are wrong.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, v any, why string) {
		errs = append(errs, fmt.Errorf("mqttsn.%s %v: %s", key, v, why))
	}
	if c.Listen != "" {
		if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil {
			bad("listen", fmt.Sprintf("%q", c.Listen), err.Error())
		}
	}
	if c.Listen6 != "" {
		if _, err := net.ResolveUDPAddr("udp6", c.Listen6); err != nil {
			bad("listen6", fmt.Sprintf("%q", c.Listen6), err.Error())
		}
	}
	if c.Broadcast != "" {
		if _, err := net.ResolveUDPAddr("udp", c.Broadcast); err != nil {
			bad("broadcast", fmt.Sprintf("%q", c.Broadcast), err.Error())
		}
	}
	if c.Serial != nil {
		if c.Serial.Device == "" {
			bad("serial.device", `""`, "is required when mqttsn.serial is set")
		}
		if c.Serial.Baud < 0 {
			bad("serial.baud", c.Serial.Baud, "must not be negative")
		}
	}
	if c.DTLS != nil {
		if err := c.DTLS.Validate(); err != nil {
			errs = append(errs, err)
		} else if _, err := net.ResolveUDPAddr("udp", c.DTLS.Listen); err != nil {
			bad("dtls.listen", fmt.Sprintf("%q", c.DTLS.Listen), err.Error())
		}
	}
	if c.AdvertiseInterval > 0 && c.AdvertiseInterval < time.Second {
		bad("advertise_interval", c.AdvertiseInterval, "must be at least 1s (ADVERTISE carries whole seconds, section 5.4.1)")
	}
	if c.AdvertiseInterval > 65535*time.Second {
		bad("advertise_interval", c.AdvertiseInterval, "must fit the 16-bit Duration field of ADVERTISE (18h12m15s)")
	}
	for _, kv := range []struct {
		key string
		v   int
	}{{"max_retries", c.MaxRetries}, {"sleep_buffer", c.SleepBuffer}, {"max_clients", c.MaxClients},
		{"max_queued", c.MaxQueued}, {"workers", c.Workers}, {"peer_queue", c.PeerQueue}, {"read_buffer", c.ReadBuffer}} {
		if kv.v < 0 {
			bad(kv.key, kv.v, "must not be negative")
		}
	}
	if c.RetryInterval < 0 {
		bad("retry_interval", c.RetryInterval, "must not be negative")
	}
	for id, name := range c.PredefinedTopics {
		if err := checkPredefined(id, name); err != nil {
			bad(fmt.Sprintf("predefined_topics.%d", id), fmt.Sprintf("%q", name), err.Error())
		}
	}
	return errors.Join(errs...)
}
