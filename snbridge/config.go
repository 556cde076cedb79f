package snbridge

import "time"

// Config is the mqttsn section of outpost.yaml.
type Config struct {
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Listen is the UDP address; "" = 127.0.0.1:1884.
	Listen string `mapstructure:"listen" yaml:"listen"`
	// Listen6 is an optional UDP over IPv6 address, e.g. "[::1]:1884".
	Listen6 string `mapstructure:"listen6" yaml:"listen6"`
	// Serial is an optional radio modem on a UART.
	Serial *SerialConfig `mapstructure:"serial" yaml:"serial"`
	// GatewayID is sent in ADVERTISE and GWINFO; 0 = 1.
	GatewayID byte `mapstructure:"gateway_id" yaml:"gateway_id"`
	// AdvertiseInterval between ADVERTISE messages; 0 = 15m, negative = off.
	AdvertiseInterval time.Duration `mapstructure:"advertise_interval" yaml:"advertise_interval"`
	// Broadcast is where ADVERTISE and GWINFO go; "" = 255.255.255.255 on the listen port.
	Broadcast string `mapstructure:"broadcast" yaml:"broadcast"`
	// PredefinedTopics maps predefined topic ids to topic names.
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
}

// SerialConfig is a serial transport for MQTT-SN frames.
type SerialConfig struct {
	Device string `mapstructure:"device" yaml:"device"` // e.g. /dev/ttyUSB0
	Baud   int    `mapstructure:"baud" yaml:"baud"`     // 0 = 9600
}
