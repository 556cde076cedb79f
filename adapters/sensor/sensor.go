// Package sensor holds the small contract between the adapters scheduler and
// the per-chip driver packages (adapters/bme280, adapters/ds18b20, ...): what a
// sensor is, what a reading is, and how a driver reaches its bus.
//
// It exists so that the chip packages do not import package adapters (which
// imports them). It imports periph conn only; no I/O happens here.
package sensor

import (
	"context"
	"fmt"
	"math"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/onewire"
	"periph.io/x/conn/v3/spi"
)

// Value is one quantity of a reading in SI-derived units, e.g.
// {Quantity: "temperature", Value: 21.5, Unit: "°C"}.
type Value struct {
	Quantity string
	Value    float64
	Unit     string
}

// Sensor is one configured device that can be read.
//
// Read is called by the scheduler with the device's bus locked, one call at a
// time. A driver that must wait for a conversion without holding the bus (a
// DS18B20 takes 750 ms) calls w.Wait, which unlocks the bus while it waits.
// Read returns every quantity of one reading, in a stable order.
type Sensor interface {
	Read(ctx context.Context, w Waiter) ([]Value, error)
	// Close releases the device (pins, bus handles). The scheduler calls it
	// before reopening a failed device and on shutdown.
	Close() error
}

// Watcher is implemented by sensors that react to events between polls (a
// GPIO input or pulse counter). The scheduler runs Watch in its own goroutine
// until ctx is done; Watch calls changed whenever the sensor wants its state
// published now (publish on change) and returns when ctx is done.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}

// Commander is implemented by sensors that take commands (a relay on a GPIO
// output). The scheduler subscribes CommandTopic and passes each payload to
// Command; a nil error means the new state should be published.
type Commander interface {
	Command(payload []byte) error
}

// Waiter lets a driver wait between the steps of one reading.
type Waiter interface {
	// Wait waits d on the scheduler's clock with the bus unlocked, then
	// relocks it. It returns ctx.Err() if ctx ends first (the bus is then
	// relocked as well, so the caller's unlock stays balanced).
	Wait(ctx context.Context, d time.Duration) error
}

// Clock is the time source drivers and the scheduler use; tests inject a fake.
type Clock interface {
	Now() time.Time
	// SleepUntil blocks until the clock reaches t or ctx is done, returning
	// ctx.Err() in the latter case.
	SleepUntil(ctx context.Context, t time.Time) error
}

// Buses opens buses and pins by the names periph gives them ("1", "SPI0.0",
// "GPIO17", ...). The adapters package provides one over periph's registries
// (real hardware) and package sim one over emulated buses.
type Buses interface {
	I2C(name string) (i2c.Bus, error)
	SPI(name string) (spi.Port, error)
	OneWire(name string) (onewire.Bus, error)
	GPIO(name string) (gpio.PinIO, error)
}

// Spec is what a driver is told about the sensor it opens: the name, where it
// is attached and its driver options (the options: map of the config).
type Spec struct {
	Name    string
	Bus     BusRef
	Options map[string]any
	// StateDir is where a driver may keep state that must survive restarts
	// (the pulse counter's total). Empty: keep nothing.
	StateDir string
	Clock    Clock
}

// BusRef names a bus and an address on it.
type BusRef struct {
	Type    string // i2c | spi | onewire | gpio
	Name    string
	Address uint16
}

func (b BusRef) String() string {
	if b.Type == "i2c" {
		return fmt.Sprintf("%s %s @0x%02x", b.Type, b.Name, b.Address)
	}
	return b.Type + " " + b.Name
}

// Range is the span of values a quantity can physically have on a chip. A
// reading outside it is rejected as a fault (a stuck-at-all-ones register, a
// disconnected probe), not published.
type Range struct{ Min, Max float64 }

// Check returns an error naming q if v is outside r or not a number.
func (r Range) Check(q string, v float64, unit string) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s is not a number", q)
	}
	if v < r.Min || v > r.Max {
		return fmt.Errorf("%s %g %s out of range %g..%g", q, v, unit, r.Min, r.Max)
	}
	return nil
}

// SoftError marks a read error that leaves the device usable: the values
// returned with it are published, the status shows the error, and the device
// is not closed and reopened (a pulse counter that could not save its total
// must keep counting).
type SoftError struct{ Err error }

func (e *SoftError) Error() string { return e.Err.Error() }
func (e *SoftError) Unwrap() error { return e.Err }
