package adapters

import (
	"fmt"
	"sort"
	"strings"

	"github.com/outpost-iot/outpost/adapters/bme280"
	"github.com/outpost-iot/outpost/adapters/ds18b20"
	"github.com/outpost-iot/outpost/adapters/gpiocounter"
	"github.com/outpost-iot/outpost/adapters/gpioinput"
	"github.com/outpost-iot/outpost/adapters/gpiooutput"
	"github.com/outpost-iot/outpost/adapters/sensor"
)

// driver describes one driver name: what buses and addresses it accepts, how
// to check its options, how to open it and which quantities it can simulate.
type driver struct {
	name     string
	buses    []string  // bus types, the first is the default
	addrs    [2]uint16 // I²C address range (0,0: no I²C)
	defAddr  uint16    // default I²C address
	check    func(map[string]any) error
	open     func(sensor.Spec, sensor.Buses) (sensor.Sensor, error)
	simulate []string // quantities a simulate: map may set ("*": any)
	command  bool     // takes commands
	doc      string
}

func opener[S sensor.Sensor](f func(sensor.Spec, sensor.Buses) (S, error)) func(sensor.Spec, sensor.Buses) (sensor.Sensor, error) {
	return func(s sensor.Spec, b sensor.Buses) (sensor.Sensor, error) {
		d, err := f(s, b)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
}

func checker[C any](f func(map[string]any) (C, error)) func(map[string]any) error {
	return func(m map[string]any) error { _, err := f(m); return err }
}

// drivers returns the driver table (built on each call: no package state).
func drivers() map[string]driver {
	list := []driver{
		{name: "bme280", buses: []string{"i2c", "spi"}, addrs: [2]uint16{0x76, 0x77}, defAddr: 0x76,
			check: checker(bme280.Parse), open: opener(bme280.Open), simulate: bme280.Quantities,
			doc: "Bosch BME280 temperature, humidity, pressure"},
		{name: "bmp280", buses: []string{"i2c", "spi"}, addrs: [2]uint16{0x76, 0x77}, defAddr: 0x76,
			check: checker(bme280.Parse), open: opener(bme280.Open), simulate: []string{"temperature", "pressure"},
			doc: "Bosch BMP280 temperature, pressure"},
		{name: "ds18b20", buses: []string{"onewire", "i2c"}, addrs: [2]uint16{0x18, 0x1B}, defAddr: 0x18,
			check: checker(ds18b20.Parse), open: opener(ds18b20.Open), simulate: []string{"*"},
			doc: "Maxim DS18B20 probes on 1-Wire or a DS2482 bridge"},
		{name: "gpio-counter", buses: []string{"gpio"},
			check: checker(gpiocounter.Parse), open: opener(gpiocounter.Open), simulate: []string{"rate", "bounce", "width"},
			doc: "pulse counter: rain gauge, flow or energy meter"},
		{name: "gpio-input", buses: []string{"gpio"},
			check: checker(gpioinput.Parse), open: opener(gpioinput.Open), simulate: []string{"state"},
			doc: "digital input: door, float switch"},
		{name: "gpio-output", buses: []string{"gpio"}, command: true,
			check: checker(gpiooutput.Parse), open: opener(gpiooutput.Open),
			doc: "digital output driven by a command topic: relay, valve"},
	}
	list = append(list, moreDrivers()...)
	m := make(map[string]driver, len(list))
	for _, d := range list {
		m[d.name] = d
	}
	return m
}

// DriverNames lists the known driver names, sorted.
func DriverNames() []string {
	var out []string
	for n := range drivers() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (d driver) takesBus(t string) bool {
	for _, b := range d.buses {
		if b == t {
			return true
		}
	}
	return false
}

func (d driver) busList() string { return strings.Join(d.buses, " or ") }

func (d driver) simulates(q string) bool {
	for _, s := range d.simulate {
		if s == q || s == "*" {
			return true
		}
	}
	return false
}

func (d driver) address(b BusConfig) uint16 {
	if b.Type == "i2c" && b.Address == 0 {
		return d.defAddr
	}
	return b.Address
}

func unknownDriver(name string) error {
	return fmt.Errorf("unknown driver %q (known: %s)", name, strings.Join(DriverNames(), ", "))
}
