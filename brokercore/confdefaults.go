package brokercore

import (
	"fmt"

	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Defaults of Config (DESIGN.md, "Configuration").
const (
	DefaultMaxInflight    = 20
	DefaultMaxQueued      = 10000
	DefaultMaxKeepalive   = 65535
	DefaultConnectTimeout = 10e9 // 10s
	DefaultSysInterval    = 10e9 // 10s
	DefaultAddress        = "127.0.0.1:1883"
)

// withDefaults returns cfg with every zero field replaced by its default.
// An empty listener list stays empty when the broker is only used through
// Serve; Start opens DefaultAddress then (see listenersOrDefault).
func (cfg Config) withDefaults() Config {
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.MaxKeepalive == 0 {
		cfg.MaxKeepalive = DefaultMaxKeepalive
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = packet.MaxRemainingLength
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.SysInterval == 0 {
		cfg.SysInterval = DefaultSysInterval
	}
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = []listener.Config{{Address: DefaultAddress}}
	}
	return cfg
}

// Validate reports the first key with a value out of range, naming it.
func (cfg Config) Validate() error {
	switch {
	case cfg.MaxInflight < 0 || cfg.MaxInflight > 65535:
		return fmt.Errorf("broker.max_inflight: %d is out of range 1..65535", cfg.MaxInflight)
	case cfg.MaxQueued < 0:
		return fmt.Errorf("broker.max_queued: %d is negative", cfg.MaxQueued)
	case cfg.MaxKeepalive < 0 || cfg.MaxKeepalive > 65535:
		return fmt.Errorf("broker.max_keepalive: %d is out of range 1..65535", cfg.MaxKeepalive)
	case cfg.MaxPacketSize < 0 || cfg.MaxPacketSize > packet.MaxRemainingLength:
		return fmt.Errorf("broker.max_packet_size: %d is out of range 1..%d", cfg.MaxPacketSize, packet.MaxRemainingLength)
	case cfg.MaxConnections < 0:
		return fmt.Errorf("broker.max_connections: %d is negative", cfg.MaxConnections)
	case cfg.ConnectTimeout < 0:
		return fmt.Errorf("broker.connect_timeout: %v is negative", cfg.ConnectTimeout)
	}
	for i, l := range cfg.Listeners {
		if l.Address == "" {
			return fmt.Errorf("broker.listeners[%d].address: empty", i)
		}
	}
	return nil
}
