package sim

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// I2CDevice is a chip model on an emulated I²C bus. Tx is one I²C
// transaction addressed to the chip: a write of w (may be empty), then a
// repeated-start read filling r (may be empty). Returning errNACK makes the bus
// report that the address was not acknowledged.
type I2CDevice interface {
	Tx(w, r []byte) error
}

// errNACK is what a chip model returns for a transfer it does not acknowledge.
var errNACK = errors.New("address not acknowledged")

// errBus is what a chip model returns for a transfer that failed electrically.
var errBus = errors.New("bus error (arbitration lost or SDA held low)")

// I2CBus is an emulated I²C bus (i2c.BusCloser). Transactions are serialised
// as on a real bus adapter.
type I2CBus struct {
	name string
	mu   sync.Mutex
	devs map[uint16]I2CDevice
	err  error // bus-wide fault
	txs  int
}

// NewI2CBus returns an empty bus called name.
func NewI2CBus(name string) *I2CBus {
	return &I2CBus{name: name, devs: map[uint16]I2CDevice{}}
}

// Attach puts d at addr (7-bit), replacing what was there.
func (b *I2CBus) Attach(addr uint16, d I2CDevice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.devs[addr] = d
}

// Device returns the chip at addr (nil if none).
func (b *I2CBus) Device(addr uint16) I2CDevice {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.devs[addr]
}

// Detach removes the chip at addr (it vanishes from the bus).
func (b *I2CBus) Detach(addr uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.devs, addr)
}

// Addresses lists the attached addresses in order.
func (b *I2CBus) Addresses() []uint16 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint16
	for a := range b.devs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// SetBusError makes every transaction fail (nil clears it).
func (b *I2CBus) SetBusError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// Transactions returns how many transactions the bus has seen.
func (b *I2CBus) Transactions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.txs
}

// String implements i2c.Bus.
func (b *I2CBus) String() string { return b.name }

// SetSpeed implements i2c.Bus; the emulated bus runs at any speed.
func (b *I2CBus) SetSpeed(physic.Frequency) error { return nil }

// Close implements i2c.BusCloser. The bus stays usable: it is shared by every
// opener, as a Linux /dev/i2c-N is.
func (b *I2CBus) Close() error { return nil }

// Tx implements i2c.Bus.
func (b *I2CBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.txs++
	if b.err != nil {
		return fmt.Errorf("%s: tx to 0x%02x: %w", b.name, addr, b.err)
	}
	d, ok := b.devs[addr]
	if !ok {
		return fmt.Errorf("%s: tx to 0x%02x: %w", b.name, addr, errNACK)
	}
	if err := d.Tx(w, r); err != nil {
		return fmt.Errorf("%s: tx to 0x%02x: %w", b.name, addr, err)
	}
	return nil
}

var _ i2c.BusCloser = (*I2CBus)(nil)

// faultErr returns the transfer error a chip with fault f gives, or nil.
func faultErr(f Fault) error {
	switch f {
	case FaultNACK:
		return errNACK
	case FaultBusError:
		return errBus
	}
	return nil
}
