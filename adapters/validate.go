package adapters

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/outpost-iot/outpost/adapters/sim"
)

// DefaultInterval is the poll interval of a sensor that sets none.
const DefaultInterval = 10 * time.Second

// MinInterval is the shortest poll interval accepted.
const MinInterval = 100 * time.Millisecond

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate checks a sensors list without touching hardware and returns every
// problem found, each naming the sensor: unknown driver, a bus type the
// driver cannot use, an address out of range, two sensors on one bus and
// address, an emulated bus named without simulate:, bad options or
// simulate: keys, a bad topic, interval or QoS.
func Validate(cfgs []SensorConfig) error {
	return ValidateOn(cfgs, nil)
}

// ValidateOn is Validate that also checks that each hardware (non-simulated)
// sensor's bus exists on hw (see HostBuses). hw nil skips that check.
func ValidateOn(cfgs []SensorConfig, hw BusLister) error {
	var errs []error
	seen := map[string]int{}
	type key struct {
		sim  bool
		typ  string
		bus  string
		addr uint16
	}
	used := map[key]string{}
	table := drivers()
	for i, c := range cfgs {
		label := fmt.Sprintf("sensor %q", c.Name)
		if c.Name == "" {
			label = fmt.Sprintf("sensors[%d]", i)
		}
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf(label+": "+format, a...))
		}
		switch {
		case c.Name == "":
			fail("name is empty")
		case !nameRE.MatchString(c.Name):
			fail("name %q: use letters, digits, '.', '_' or '-' (it is part of the topic)", c.Name)
		}
		if j, dup := seen[c.Name]; dup && c.Name != "" {
			fail("name used twice (sensors[%d] and sensors[%d])", j, i)
		}
		seen[c.Name] = i
		if c.Interval < 0 || (c.Interval > 0 && c.Interval < MinInterval) {
			fail("interval %s is shorter than %s", c.Interval, MinInterval)
		}
		if c.QoS > 2 {
			fail("qos %d: must be 0, 1 or 2", c.QoS)
		}
		if c.Topic != "" && (strings.ContainsAny(c.Topic, "+#\x00") || strings.HasPrefix(c.Topic, "$")) {
			fail("topic %q: a publish topic cannot contain + or # or start with $", c.Topic)
		}
		if c.Average < 0 {
			fail("average %d: must be 0 or more readings", c.Average)
		}
		for q, d := range c.Deadband {
			if d < 0 {
				fail("deadband %s: %g is negative", q, d)
			}
		}
		if c.StuckAfter < 0 {
			fail("stuck_after %s is negative", c.StuckAfter)
		}
		if c.MaxInterval < 0 {
			fail("max_interval %s is negative", c.MaxInterval)
		}
		d, ok := table[c.Driver]
		if !ok {
			if c.Driver == "" {
				fail("driver is empty (known: %s)", strings.Join(DriverNames(), ", "))
			} else {
				fail("%v", unknownDriver(c.Driver))
			}
			continue
		}
		b := c.Bus
		if b.Type == "" {
			fail("bus type is empty (%s takes %s)", d.name, d.busList())
			continue
		}
		if !d.takesBus(b.Type) {
			fail("driver %s does not work on a %s bus (use %s)", d.name, b.Type, d.busList())
			continue
		}
		if b.Name == "" {
			fail("bus name is empty (e.g. %s)", exampleBus(b.Type))
			continue
		}
		addr := d.address(b)
		if b.Type == "i2c" {
			switch {
			case addr < 0x08 || addr > 0x77:
				fail("i2c address 0x%02x out of range: 7-bit addresses are 0x08-0x77", addr)
			case addr < d.addrs[0] || addr > d.addrs[1]:
				fail("i2c address 0x%02x out of range for %s (0x%02x-0x%02x)", addr, d.name, d.addrs[0], d.addrs[1])
			}
		} else if b.Address != 0 {
			fail("address 0x%02x given on a %s bus: only i2c takes an address", b.Address, b.Type)
		}
		if strings.HasPrefix(b.Name, "/dev/") {
			fail("%s bus %q: name the bus as periph does, not its device file (%s)", b.Type, b.Name, devHint(b.Name))
			continue
		}
		simulated := c.Simulate != nil
		if strings.HasPrefix(b.Name, sim.Prefix) && !simulated {
			fail("%s bus %q is an emulated bus: add simulate: to this sensor or name a hardware bus", b.Type, b.Name)
		}
		if !simulated && hw != nil {
			if err := hw.Has(b.Type, b.Name); err != nil {
				fail("%v", err)
			}
		}
		k := key{sim: simulated, typ: b.Type, bus: b.Name, addr: addr}
		if b.Type == "onewire" {
			k.addr = 0xFFFF // several ds18b20 sensors may share a 1-Wire bus
		}
		if other, dup := used[k]; dup && b.Type != "onewire" {
			where := fmt.Sprintf("%s bus %s", b.Type, b.Name)
			if b.Type == "i2c" {
				where += fmt.Sprintf(" at address 0x%02x", addr)
			}
			fail("same %s as sensor %q", where, other)
		} else {
			used[k] = c.Name
		}
		if err := d.check(c.Options); err != nil {
			fail("%v", err)
		}
		if simulated {
			if err := checkSimulate(d, c.Simulate); err != nil {
				fail("simulate: %v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// devHint turns a device file into the name periph uses for it.
func devHint(dev string) string {
	var n, m int
	if _, err := fmt.Sscanf(dev, "/dev/i2c-%d", &n); err == nil {
		return fmt.Sprintf(`"%d" for %s`, n, dev)
	}
	if _, err := fmt.Sscanf(dev, "/dev/spidev%d.%d", &n, &m); err == nil {
		return fmt.Sprintf(`"%d.%d" for %s`, n, m, dev)
	}
	if _, err := fmt.Sscanf(dev, "/dev/gpiochip%d", &n); err == nil {
		return `a pin name like "GPIO17"`
	}
	return `e.g. "1" for /dev/i2c-1`
}

func exampleBus(t string) string {
	switch t {
	case "i2c":
		return `"1"`
	case "spi":
		return `"0.0"`
	case "gpio":
		return `"GPIO17"`
	}
	return `"w1"`
}

func checkSimulate(d driver, m map[string]any) error {
	for k, v := range m {
		if k == "fault" {
			s, _ := v.(string)
			if _, err := sim.ParseFault(s); err != nil {
				return err
			}
			continue
		}
		if !d.simulates(k) {
			if len(d.simulate) == 0 {
				return fmt.Errorf("%s takes no simulated quantities (got %q)", d.name, k)
			}
			return fmt.Errorf("unknown quantity %q for %s (%s)", k, d.name, strings.Join(d.simulate, ", "))
		}
		if _, err := sim.ParseSignal(v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}
