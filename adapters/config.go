package adapters

import "time"

// SensorConfig is one entry of the sensors list in outpost.yaml.
type SensorConfig struct {
	Name     string        `mapstructure:"name" yaml:"name"`
	Driver   string        `mapstructure:"driver" yaml:"driver"` // bme280 | ds18b20 | ina219 | ads1115 | mcp9808 | gpio-counter | ...
	Bus      BusConfig     `mapstructure:"bus" yaml:"bus"`
	Interval time.Duration `mapstructure:"interval" yaml:"interval"` // 0 = 10s
	Topic    string        `mapstructure:"topic" yaml:"topic"`       // "" = sensors/<name>
	QoS      byte          `mapstructure:"qos" yaml:"qos"`
	Retain   bool          `mapstructure:"retain" yaml:"retain"`
	// Simulate runs the real driver over an emulated bus whose chip model
	// produces these values (quantity name -> base value, or a signal map).
	Simulate map[string]any `mapstructure:"simulate" yaml:"simulate"`
	// Options holds driver-specific settings (channels, scaling, tare, debounce, ...).
	Options map[string]any `mapstructure:"options" yaml:"options"`
}

// BusConfig says where a sensor is attached.
type BusConfig struct {
	Type    string `mapstructure:"type" yaml:"type"`       // i2c | spi | onewire | gpio
	Name    string `mapstructure:"name" yaml:"name"`       // bus or pin name as periph names it, e.g. "1", "SIM-I2C1", "GPIO17"
	Address uint16 `mapstructure:"address" yaml:"address"` // I2C address, 1-Wire ROM as configured by the driver
}
