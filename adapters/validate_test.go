package adapters

import (
	"strings"
	"testing"
	"time"
)

func good() SensorConfig {
	return SensorConfig{Name: "mast", Driver: "bme280", Bus: BusConfig{Type: "i2c", Name: "1", Address: 0x76}, Interval: 10 * time.Second}
}

// Each bad config gives exactly this error text, naming the sensor and the problem.
func TestValidateBadInput(t *testing.T) {
	cases := []struct {
		name string
		mod  func(c *SensorConfig)
		want string
	}{
		{"unknown driver", func(c *SensorConfig) { c.Driver = "bme281" },
			`sensor "mast": unknown driver "bme281" (known: ` + strings.Join(DriverNames(), ", ") + `)`},
		{"empty driver", func(c *SensorConfig) { c.Driver = "" },
			`sensor "mast": driver is empty (known: ` + strings.Join(DriverNames(), ", ") + `)`},
		{"address out of chip range", func(c *SensorConfig) { c.Bus.Address = 0x48 },
			`sensor "mast": i2c address 0x48 out of range for bme280 (0x76-0x77)`},
		{"address not 7-bit", func(c *SensorConfig) { c.Bus.Address = 0x80 },
			`sensor "mast": i2c address 0x80 out of range: 7-bit addresses are 0x08-0x77`},
		{"wrong bus type", func(c *SensorConfig) { c.Bus.Type = "onewire" },
			`sensor "mast": driver bme280 does not work on a onewire bus (use i2c or spi)`},
		{"empty bus type", func(c *SensorConfig) { c.Bus.Type = "" },
			`sensor "mast": bus type is empty (bme280 takes i2c or spi)`},
		{"empty bus name", func(c *SensorConfig) { c.Bus.Name = "" },
			`sensor "mast": bus name is empty (e.g. "1")`},
		{"emulated bus without simulate", func(c *SensorConfig) { c.Bus.Name = "SIM-I2C1" },
			`sensor "mast": i2c bus "SIM-I2C1" is an emulated bus: add simulate: to this sensor or name a hardware bus`},
		{"short interval", func(c *SensorConfig) { c.Interval = 10 * time.Millisecond },
			`sensor "mast": interval 10ms is shorter than 100ms`},
		{"qos", func(c *SensorConfig) { c.QoS = 3 },
			`sensor "mast": qos 3: must be 0, 1 or 2`},
		{"wildcard topic", func(c *SensorConfig) { c.Topic = "sensors/+/x" },
			`sensor "mast": topic "sensors/+/x": a publish topic cannot contain + or # or start with $`},
		{"bad name", func(c *SensorConfig) { c.Name = "a/b" },
			`sensor "a/b": name "a/b": use letters, digits, '.', '_' or '-' (it is part of the topic)`},
		{"empty name", func(c *SensorConfig) { c.Name = "" },
			`sensors[0]: name is empty`},
		{"bad option", func(c *SensorConfig) { c.Options = map[string]any{"oversampling": 3} },
			`sensor "mast": option oversampling: 3 is not 1, 2, 4, 8 or 16`},
		{"unknown option", func(c *SensorConfig) { c.Options = map[string]any{"filter": 4} },
			`sensor "mast": unknown option filter`},
		{"simulate typo", func(c *SensorConfig) { c.Simulate = map[string]any{"temprature": 20} },
			`sensor "mast": simulate: unknown quantity "temprature" for bme280 (temperature, humidity, pressure)`},
		{"simulate bad signal", func(c *SensorConfig) { c.Simulate = map[string]any{"temperature": "warm"} },
			`sensor "mast": simulate: temperature: warm is neither a number nor a signal map`},
		{"simulate bad fault", func(c *SensorConfig) { c.Simulate = map[string]any{"fault": "fire"} },
			`sensor "mast": simulate: unknown fault "fire" (want none, nack, bus-error, stuck, out-of-range or power-on)`},
		{"address on gpio", func(c *SensorConfig) {
			c.Driver, c.Bus = "gpio-input", BusConfig{Type: "gpio", Name: "GPIO4", Address: 3}
		}, `sensor "mast": address 0x03 given on a gpio bus: only i2c takes an address`},
		{"device file for i2c", func(c *SensorConfig) { c.Bus.Name = "/dev/i2c-1" },
			`sensor "mast": i2c bus "/dev/i2c-1": name the bus as periph does, not its device file ("1" for /dev/i2c-1)`},
		{"device file for spi", func(c *SensorConfig) { c.Bus = BusConfig{Type: "spi", Name: "/dev/spidev0.1"} },
			`sensor "mast": spi bus "/dev/spidev0.1": name the bus as periph does, not its device file ("0.1" for /dev/spidev0.1)`},
		{"negative average", func(c *SensorConfig) { c.Average = -1 },
			`sensor "mast": average -1: must be 0 or more readings`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mod(&c)
			err := Validate([]SensorConfig{c})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestValidatePairs(t *testing.T) {
	a, b := good(), good()
	b.Name = "mast2"
	if err := Validate([]SensorConfig{a, b}); err == nil || err.Error() != `sensor "mast2": same i2c bus 1 at address 0x76 as sensor "mast"` {
		t.Fatalf("two on one address: %v", err)
	}
	b.Bus.Address = 0 // the default address of bme280 is 0x76: still a clash
	if err := Validate([]SensorConfig{a, b}); err == nil || !strings.Contains(err.Error(), `same i2c bus 1 at address 0x76`) {
		t.Fatalf("default address clash: %v", err)
	}
	b.Bus.Address = 0x77
	if err := Validate([]SensorConfig{a, b}); err != nil {
		t.Fatalf("two addresses: %v", err)
	}
	b.Name = "mast"
	if err := Validate([]SensorConfig{a, b}); err == nil || err.Error() != `sensor "mast": name used twice (sensors[0] and sensors[1])` {
		t.Fatalf("duplicate name: %v", err)
	}
	// A simulated sensor and a real one with the same bus name do not clash.
	b.Name, b.Bus.Address, b.Simulate = "sim", 0x76, map[string]any{}
	if err := Validate([]SensorConfig{a, b}); err != nil {
		t.Fatalf("sim and real on bus 1: %v", err)
	}
	// Every error is reported, not only the first.
	c, d := good(), good()
	c.Driver, d.Name, d.QoS = "x", "other", 5
	err := Validate([]SensorConfig{c, d})
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Fatalf("two errors: %v", err)
	}
}

// A bus that does not exist on this machine is named with what exists.
func TestValidateOnHardware(t *testing.T) {
	hw := fakeHW{"i2c": {"1", "20"}}
	c := good()
	c.Bus.Name = "7"
	err := ValidateOn([]SensorConfig{c}, hw)
	if err == nil || err.Error() != `sensor "mast": i2c bus "7" does not exist on this machine (it has: 1, 20)` {
		t.Fatalf("got %v", err)
	}
	c.Driver, c.Bus = "gpio-input", BusConfig{Type: "gpio", Name: "GPIO4"}
	err = ValidateOn([]SensorConfig{c}, hw)
	if err == nil || !strings.HasPrefix(err.Error(), `sensor "mast": gpio bus "GPIO4" does not exist on this machine: it has no gpio buses (`) {
		t.Fatalf("got %v", err)
	}
	c.Simulate = map[string]any{}
	if err := ValidateOn([]SensorConfig{c}, hw); err != nil {
		t.Fatalf("simulated sensor checked against hardware: %v", err)
	}
}

func TestDefaultSensorsValid(t *testing.T) {
	if err := Validate(DefaultSensors()); err != nil {
		t.Fatal(err)
	}
}

type fakeHW map[string][]string

func (f fakeHW) List(typ string) []string { return f[typ] }
func (f fakeHW) Has(typ, name string) error {
	for _, n := range f[typ] {
		if n == name {
			return nil
		}
	}
	return noHardware(typ, name, f[typ])
}
