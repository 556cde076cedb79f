package adapters

import "time"

// DefaultSensors is the embedded default: three simulated sensors publishing
// every few seconds, so `mosquitto_sub -t 'sensors/#' -v` shows live data on a
// machine with no hardware.
//
//   - weather: a BME280 on I²C bus 1 at 0x76 (temperature with a daily
//     cycle, humidity, pressure), every 5 s
//   - water: a DS18B20 probe on 1-Wire bus w1, every 5 s
//   - rain: a tipping-bucket rain gauge on GPIO17 (0.2794 mm per tip, a tip
//     every 10 s with contact bounce), every 10 s
func DefaultSensors() []SensorConfig {
	return []SensorConfig{
		{
			Name: "weather", Driver: "bme280",
			Bus:      BusConfig{Type: "i2c", Name: "1", Address: 0x76},
			Interval: 5 * time.Second, QoS: 0,
			Simulate: map[string]any{
				"temperature": map[string]any{"base": 18.0, "daily": 6.0, "noise": 0.05, "min": -40.0, "max": 85.0},
				"humidity":    map[string]any{"base": 55.0, "daily": -15.0, "noise": 0.3, "min": 0.0, "max": 100.0},
				"pressure":    map[string]any{"base": 101325.0, "drift": -50.0, "noise": 5.0},
			},
		},
		{
			Name: "water", Driver: "ds18b20",
			Bus:      BusConfig{Type: "onewire", Name: "w1"},
			Interval: 5 * time.Second, QoS: 0,
			Simulate: map[string]any{"temperature": map[string]any{"base": 11.5, "daily": 0.5, "noise": 0.02}},
		},
		{
			Name: "rain", Driver: "gpio-counter",
			Bus:      BusConfig{Type: "gpio", Name: "GPIO17"},
			Interval: 10 * time.Second, QoS: 0,
			Options:  map[string]any{"scale": 0.2794, "unit": "mm", "debounce": "20ms"},
			Simulate: map[string]any{"rate": 6.0, "bounce": 2.0},
		},
	}
}
