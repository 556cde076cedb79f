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
	// Retain keeps the last reading on the broker for late subscribers;
	// nil (not set) means true. Status topics are always retained.
	Retain *bool `mapstructure:"retain" yaml:"retain"`
	// Simulate runs the real driver over an emulated bus whose chip model
	// produces these values (quantity name -> base value, or a signal map).
	Simulate map[string]any `mapstructure:"simulate" yaml:"simulate"`
	// Options holds driver-specific settings (channels, scaling, tare, debounce, ...).
	Options map[string]any `mapstructure:"options" yaml:"options"`

	// Publishing. A reading is published when any quantity moved by at least
	// its deadband since the last publish, or MaxInterval has passed (0 = every
	// reading is published). Deadband keys are quantity names, "*" for all.
	Deadband    map[string]float64 `mapstructure:"deadband" yaml:"deadband"`
	MaxInterval time.Duration      `mapstructure:"max_interval" yaml:"max_interval"`
	// Average publishes the mean of the last N readings (a sliding window); 0 or 1: no averaging.
	Average int `mapstructure:"average" yaml:"average"`
	// PlainTopics also publishes each quantity as a bare number on
	// <topic>/<quantity>, e.g. sensors/mast/temperature = 21.5.
	PlainTopics bool `mapstructure:"plain_topics" yaml:"plain_topics"`
	// StuckAfter flags a sensor whose every quantity has not changed for this
	// long: its status becomes "error: values unchanged for ..." while its
	// readings are still published (0 = off; a probe in a still tank can
	// legitimately read the same value for hours, so choose it per sensor).
	StuckAfter time.Duration `mapstructure:"stuck_after" yaml:"stuck_after"`
}

// BusConfig says where a sensor is attached.
type BusConfig struct {
	Type    string `mapstructure:"type" yaml:"type"`       // i2c | spi | onewire | gpio
	Name    string `mapstructure:"name" yaml:"name"`       // bus or pin name as periph names it, e.g. "1", "SIM-I2C1", "GPIO17"
	Address uint16 `mapstructure:"address" yaml:"address"` // I2C address, 1-Wire ROM as configured by the driver
}

// RetainLast reports whether readings are published retained (Retain, default true).
func (c SensorConfig) RetainLast() bool { return c.Retain == nil || *c.Retain }
