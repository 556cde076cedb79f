// Package configs is the only user of viper in Outpost: it reads the YAML
// file, OUTPOST_<SECTION>_<KEY> environment variables and command-line flags
// into one typed Config made of the components' own Config structs, and
// validates it, naming the key, the value and why it is wrong.
package configs

import (
	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/storeforward"
)

// Config is the whole of outpost.yaml.
type Config struct {
	DataDir string                  `mapstructure:"data_dir" yaml:"data_dir"` // "" = ./outpost-data
	Site    string                  `mapstructure:"site" yaml:"site"`         // used in default topics and the uplink client id
	Log     LogConfig               `mapstructure:"log" yaml:"log"`
	Broker  brokercore.Config       `mapstructure:"broker" yaml:"broker"`
	MQTTSN  snbridge.Config         `mapstructure:"mqttsn" yaml:"mqttsn"`
	Sensors []adapters.SensorConfig `mapstructure:"sensors" yaml:"sensors"`
	Uplink  storeforward.Config     `mapstructure:"uplink" yaml:"uplink"`
	HTTP    HTTPConfig              `mapstructure:"http" yaml:"http"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `mapstructure:"level" yaml:"level"`   // debug | info | warn | error; "" = info
	Format string `mapstructure:"format" yaml:"format"` // text | json; "" = text
}

// HTTPConfig is the web console, /metrics and /healthz listener.
//
// On a loopback address the console needs no login. On any other address
// (or when Users is set) it asks for a login: a user named in Users with
// that user's password from PasswordFile (the broker's password file by
// default, written by `outpost passwd` or mosquitto_passwd).
type HTTPConfig struct {
	Listen string `mapstructure:"listen" yaml:"listen"` // "" = 127.0.0.1:9883; "off" disables it
	// Users may log in to the console (and scrape /metrics with basic auth).
	Users []string `mapstructure:"users" yaml:"users"`
	// PasswordFile holds their passwords; "" = broker.password_file.
	PasswordFile string `mapstructure:"password_file" yaml:"password_file"`
	// TLS serves the console over HTTPS (both files, or neither).
	TLS HTTPTLSConfig `mapstructure:"tls" yaml:"tls"`
}

// HTTPTLSConfig is the console's certificate and key (PEM).
type HTTPTLSConfig struct {
	CertFile string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile  string `mapstructure:"key_file" yaml:"key_file"`
}
