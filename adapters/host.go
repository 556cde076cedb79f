package adapters

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/onewire/onewirereg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// BusLister says whether a bus exists and lists buses, for validation and
// `outpost sensors scan`.
type BusLister interface {
	// Has returns nil if the bus or pin exists, else an error naming it and
	// what does exist.
	Has(typ, name string) error
	// List returns the names of the buses (or pins) of a type.
	List(typ string) []string
}

// HostBuses opens real buses through periph's registries (sensor.Buses). The
// first use calls periph's host.Init, which loads the drivers for this board;
// on a machine without hardware it succeeds and registers nothing, and every
// open then fails with an error that says so. Opened buses are shared by the
// sensors on them and closed by Close.
type HostBuses struct {
	mu      sync.Mutex
	inited  bool
	initErr error
	open    map[string]interface{ Close() error }
}

// NewHostBuses returns a HostBuses; nothing is opened yet.
func NewHostBuses() *HostBuses { return &HostBuses{open: map[string]interface{ Close() error }{}} }

func (h *HostBuses) init() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.inited {
		h.inited = true
		if _, err := host.Init(); err != nil {
			h.initErr = fmt.Errorf("initialise periph host drivers: %w", err)
		}
	}
	return h.initErr
}

// Init loads periph's host drivers (idempotent).
func (h *HostBuses) Init() error { return h.init() }

func noHardware(typ, name string, have []string) error {
	if len(have) == 0 {
		hint := map[string]string{
			"i2c":     "enable I²C (raspi-config, or dtparam=i2c_arm=on in config.txt) and check /dev/i2c-*",
			"spi":     "enable SPI (dtparam=spi=on) and check /dev/spidev*",
			"onewire": "periph has no kernel w1 master: put the probes behind a DS2482 on I²C (bus type i2c)",
			"gpio":    "no GPIO driver loaded for this board",
		}[typ]
		return fmt.Errorf("%s bus %q does not exist on this machine: it has no %s buses (%s; or add simulate: to run on an emulated bus)", typ, name, typ, hint)
	}
	return fmt.Errorf("%s bus %q does not exist on this machine (it has: %s)", typ, name, strings.Join(have, ", "))
}

// List implements BusLister.
func (h *HostBuses) List(typ string) []string {
	h.init()
	var out []string
	switch typ {
	case "i2c":
		for _, r := range i2creg.All() {
			out = append(out, r.Name)
		}
	case "spi":
		for _, r := range spireg.All() {
			out = append(out, r.Name)
		}
	case "onewire":
		for _, r := range onewirereg.All() {
			out = append(out, r.Name)
		}
	case "gpio":
		for _, p := range gpioreg.All() {
			out = append(out, p.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Has implements BusLister.
func (h *HostBuses) Has(typ, name string) error {
	if err := h.init(); err != nil {
		return err
	}
	switch typ {
	case "i2c", "spi", "onewire":
		for _, r := range h.refs(typ) {
			if r.name == name || r.number == name || contains(r.aliases, name) {
				return nil
			}
		}
	case "gpio":
		if gpioreg.ByName(name) != nil {
			return nil
		}
	}
	return noHardware(typ, name, h.List(typ))
}

type ref struct {
	name, number string
	aliases      []string
}

func (h *HostBuses) refs(typ string) []ref {
	var out []ref
	num := func(n int) string {
		if n < 0 {
			return ""
		}
		return fmt.Sprint(n)
	}
	switch typ {
	case "i2c":
		for _, r := range i2creg.All() {
			out = append(out, ref{r.Name, num(r.Number), r.Aliases})
		}
	case "spi":
		for _, r := range spireg.All() {
			out = append(out, ref{r.Name, num(r.Number), r.Aliases})
		}
	case "onewire":
		for _, r := range onewirereg.All() {
			out = append(out, ref{r.Name, num(r.Number), r.Aliases})
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// I2C implements sensor.Buses.
func (h *HostBuses) I2C(name string) (i2c.Bus, error) {
	if err := h.Has("i2c", name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.open["i2c:"+name]; ok {
		return b.(i2c.Bus), nil
	}
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, err
	}
	h.open["i2c:"+name] = b
	return b, nil
}

// SPI implements sensor.Buses.
func (h *HostBuses) SPI(name string) (spi.Port, error) {
	if err := h.Has("spi", name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.open["spi:"+name]; ok {
		return p.(spi.Port), nil
	}
	p, err := spireg.Open(name)
	if err != nil {
		return nil, err
	}
	h.open["spi:"+name] = p
	return p, nil
}

// OneWire implements sensor.Buses.
func (h *HostBuses) OneWire(name string) (onewire.Bus, error) {
	if err := h.Has("onewire", name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if b, ok := h.open["onewire:"+name]; ok {
		return b.(onewire.Bus), nil
	}
	b, err := onewirereg.Open(name)
	if err != nil {
		return nil, err
	}
	h.open["onewire:"+name] = b
	return b, nil
}

// GPIO implements sensor.Buses.
func (h *HostBuses) GPIO(name string) (gpio.PinIO, error) {
	if err := h.Has("gpio", name); err != nil {
		return nil, err
	}
	return gpioreg.ByName(name), nil
}

// Close closes every bus opened.
func (h *HostBuses) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first error
	for k, c := range h.open {
		if err := c.Close(); err != nil && first == nil {
			first = fmt.Errorf("close %s: %w", k, err)
		}
		delete(h.open, k)
	}
	return first
}

var _ sensor.Buses = (*HostBuses)(nil)
var _ BusLister = (*HostBuses)(nil)
