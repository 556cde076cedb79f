// Package listener opens the broker's network listeners from config: plain
// TCP, TLS (1.2 minimum, optional client certificates) and MQTT over
// WebSocket, with per-listener connection rate limits. It hands the broker
// plain net.Listeners and knows nothing of MQTT beyond recognising a
// protocol mix-up in a client's first bytes.
package listener

// Config is one entry of broker.listeners.
type Config struct {
	Address   string     `mapstructure:"address" yaml:"address"` // host:port; ":8883" = every interface
	TLS       *TLSConfig `mapstructure:"tls" yaml:"tls"`
	WebSocket bool       `mapstructure:"websocket" yaml:"websocket"` // MQTT over WebSocket, subprotocol "mqtt"
	// ConnectRate limits new connections per second on this listener; 0 = unlimited.
	ConnectRate float64 `mapstructure:"connect_rate" yaml:"connect_rate"`
}

// TLSConfig turns a listener into TLS (1.2 minimum).
type TLSConfig struct {
	CertFile          string `mapstructure:"cert_file" yaml:"cert_file"`
	KeyFile           string `mapstructure:"key_file" yaml:"key_file"`
	ClientCAFile      string `mapstructure:"client_ca_file" yaml:"client_ca_file"`
	RequireClientCert bool   `mapstructure:"require_client_cert" yaml:"require_client_cert"`
	// UseIdentityAsUsername takes the client certificate's CN as the
	// username, as mosquitto's use_identity_as_username.
	UseIdentityAsUsername bool `mapstructure:"use_identity_as_username" yaml:"use_identity_as_username"`
}
