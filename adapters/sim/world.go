package sim

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/onewire/onewirereg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Prefix starts the name of every emulated bus and pin, so that they never
// collide with a real one in periph's registries ("SIM-I2C1", "SIM-GPIO17").
const Prefix = "SIM-"

// World is a set of emulated buses and pins with their chip models: the
// hardware of one simulated hub. It implements sensor.Buses, so drivers open
// its buses exactly as they open real ones. A World is not global: tests make
// as many as they like.
type World struct {
	now func() time.Time

	mu   sync.Mutex
	i2c  map[string]*I2CBus
	spi  map[string]*SPIPort
	ow   map[string]*OneWireBus
	pins map[string]gpio.PinIO
}

// NewWorld returns an empty world whose chip models read time from now.
func NewWorld(now func() time.Time) *World {
	if now == nil {
		now = time.Now
	}
	return &World{now: now, i2c: map[string]*I2CBus{}, spi: map[string]*SPIPort{},
		ow: map[string]*OneWireBus{}, pins: map[string]gpio.PinIO{}}
}

// Now is the world's clock.
func (w *World) Now() time.Time { return w.now() }

// Name maps a configured bus or pin name to the emulated one: "1" on i2c is
// "SIM-I2C1", "GPIO17" is "SIM-GPIO17", "0.0" on spi is "SIM-SPI0.0"; a name
// that already starts with SIM- is kept.
func Name(typ, name string) string {
	if strings.HasPrefix(name, Prefix) {
		return name
	}
	switch typ {
	case "i2c":
		return Prefix + "I2C" + strings.TrimPrefix(strings.ToUpper(name), "I2C")
	case "spi":
		return Prefix + "SPI" + strings.TrimPrefix(strings.ToUpper(name), "SPI")
	case "onewire":
		return Prefix + "W1-" + name
	case "gpio":
		n := strings.ToUpper(name)
		if !strings.HasPrefix(n, "GPIO") {
			n = "GPIO" + n
		}
		return Prefix + n
	}
	return Prefix + name
}

// AddI2C returns the I²C bus called name (SIM- prefixed), creating it.
func (w *World) AddI2C(name string) *I2CBus {
	name = Name("i2c", name)
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.i2c[name]
	if !ok {
		b = NewI2CBus(name)
		w.i2c[name] = b
	}
	return b
}

// AddSPI returns the SPI port called name, creating it with nothing selected.
func (w *World) AddSPI(name string) *SPIPort {
	name = Name("spi", name)
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.spi[name]
	if !ok {
		p = NewSPIPort(name, nil)
		w.spi[name] = p
	}
	return p
}

// AddOneWire returns the 1-Wire bus called name, creating it.
func (w *World) AddOneWire(name string) *OneWireBus {
	name = Name("onewire", name)
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.ow[name]
	if !ok {
		b = NewOneWireBus(name, NewOneWireLink())
		w.ow[name] = b
	}
	return b
}

// AddPin returns the pin called name, creating it.
func (w *World) AddPin(name string) *Pin {
	name = Name("gpio", name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.pins[name].(*Pin); ok {
		return p
	}
	var n int
	fmt.Sscanf(strings.TrimPrefix(name, Prefix+"GPIO"), "%d", &n)
	p := NewPin(name, n)
	w.pins[name] = p
	return p
}

// AttachPin puts a chip-driven pin (an HX711's DOUT) in the world under its
// name, replacing what was there.
func (w *World) AttachPin(p gpio.PinIO) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pins[p.Name()] = p
}

// I2C implements sensor.Buses.
func (w *World) I2C(name string) (i2c.Bus, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b, ok := w.i2c[Name("i2c", name)]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no simulated i2c bus %q", name)
}

// SPI implements sensor.Buses.
func (w *World) SPI(name string) (spi.Port, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.spi[Name("spi", name)]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("no simulated spi port %q", name)
}

// OneWire implements sensor.Buses.
func (w *World) OneWire(name string) (onewire.Bus, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b, ok := w.ow[Name("onewire", name)]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("no simulated 1-wire bus %q", name)
}

// GPIO implements sensor.Buses.
func (w *World) GPIO(name string) (gpio.PinIO, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.pins[Name("gpio", name)]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("no simulated gpio pin %q", name)
}

// BusNames lists the world's buses and pins by type, sorted.
func (w *World) BusNames() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for n := range w.i2c {
		out["i2c"] = append(out["i2c"], n)
	}
	for n := range w.spi {
		out["spi"] = append(out["spi"], n)
	}
	for n := range w.ow {
		out["onewire"] = append(out["onewire"], n)
	}
	for n := range w.pins {
		out["gpio"] = append(out["gpio"], n)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// Register adds the world's buses and pins to periph's registries (i2creg,
// spireg, onewirereg, gpioreg), so that any periph program (and `outpost
// sensors scan`) finds them by name like hardware. periph's registries are
// process-global, so this is for the hub to call once at start, never from
// init(); it is idempotent: names already registered are left alone.
func Register(w *World) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	have := map[string]bool{}
	for _, r := range i2creg.All() {
		have["i2c:"+r.Name] = true
	}
	for _, r := range spireg.All() {
		have["spi:"+r.Name] = true
	}
	for _, r := range onewirereg.All() {
		have["onewire:"+r.Name] = true
	}
	for n, b := range w.i2c {
		if have["i2c:"+n] {
			continue
		}
		b := b
		if err := i2creg.Register(n, nil, -1, func() (i2c.BusCloser, error) { return b, nil }); err != nil {
			return fmt.Errorf("register %s: %w", n, err)
		}
	}
	for n, p := range w.spi {
		if have["spi:"+n] {
			continue
		}
		p := p
		if err := spireg.Register(n, nil, -1, func() (spi.PortCloser, error) { return p, nil }); err != nil {
			return fmt.Errorf("register %s: %w", n, err)
		}
	}
	for n, b := range w.ow {
		if have["onewire:"+n] {
			continue
		}
		b := b
		if err := onewirereg.Register(n, nil, -1, func() (onewire.BusCloser, error) { return b, nil }); err != nil {
			return fmt.Errorf("register %s: %w", n, err)
		}
	}
	for n, p := range w.pins {
		if gpioreg.ByName(n) != nil {
			continue
		}
		if err := gpioreg.Register(p); err != nil {
			return fmt.Errorf("register %s: %w", n, err)
		}
	}
	return nil
}

var _ sensor.Buses = (*World)(nil)
