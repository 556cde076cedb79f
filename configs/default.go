package configs

import (
	_ "embed"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/snbridge"
)

// Default is the configuration `outpost run` uses with no file: the broker
// on 127.0.0.1:1883, the MQTT-SN gateway on UDP 127.0.0.1:1884, the queue
// and broker state in ./outpost-data, the web console on 127.0.0.1:9883 and
// no uplink. Everything listens on loopback only, as Mosquitto 2.0 does
// without a config file. The sensors are adapters.DefaultSensors: a few
// simulated ones publishing every few seconds, so mosquitto_sub -t
// 'sensors/#' shows data on a machine with no hardware.
func Default() Config {
	return Config{
		DataDir: "./outpost-data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Broker: brokercore.Config{
			Listeners: []listener.Config{{Address: "127.0.0.1:1883"}},
		},
		MQTTSN:  snbridge.Config{Enabled: true, Listen: "127.0.0.1:1884"},
		Sensors: adapters.DefaultSensors(),
		HTTP:    HTTPConfig{Listen: "127.0.0.1:9883"},
	}
}

//go:embed outpost.example.yaml
var example []byte

// Example returns the full commented example configuration, every key with
// its default and what it does (`outpost config example`). The caller gets
// its own copy.
func Example() []byte { return append([]byte(nil), example...) }
