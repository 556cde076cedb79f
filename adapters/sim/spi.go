package sim

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// SPIDevice is a chip model behind one chip select: SPITx is one full-duplex
// transfer with CS asserted (len(r) == len(w) or r empty).
type SPIDevice interface {
	SPITx(w, r []byte) error
}

// SPIPort is an emulated SPI port (one bus and one chip select, periph's
// spi.PortCloser), with the chip model it selects.
type SPIPort struct {
	name string
	mu   sync.Mutex
	dev  SPIDevice
}

// NewSPIPort returns a port called name with d behind its chip select (d may
// be nil: nothing answers, MISO reads all ones).
func NewSPIPort(name string, d SPIDevice) *SPIPort { return &SPIPort{name: name, dev: d} }

// SetDevice replaces the chip behind the chip select.
func (p *SPIPort) SetDevice(d SPIDevice) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dev = d
}

// String implements spi.Port.
func (p *SPIPort) String() string { return p.name }

// Close implements spi.PortCloser.
func (p *SPIPort) Close() error { return nil }

// LimitSpeed implements spi.PortCloser.
func (p *SPIPort) LimitSpeed(physic.Frequency) error { return nil }

// Connect implements spi.Port.
func (p *SPIPort) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	if bits != 8 {
		return nil, fmt.Errorf("%s: %d bits per word not supported", p.name, bits)
	}
	return &spiConn{p: p}, nil
}

type spiConn struct{ p *SPIPort }

func (c *spiConn) String() string      { return c.p.name }
func (c *spiConn) Duplex() conn.Duplex { return conn.Full }
func (c *spiConn) TxPackets(pk []spi.Packet) error {
	for _, x := range pk {
		if err := c.Tx(x.W, x.R); err != nil {
			return err
		}
	}
	return nil
}

func (c *spiConn) Tx(w, r []byte) error {
	if len(r) != 0 && len(r) != len(w) {
		return fmt.Errorf("%s: full duplex transfer needs equal buffers, got w=%d r=%d", c.p.name, len(w), len(r))
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.p.dev == nil {
		for i := range r {
			r[i] = 0xFF
		}
		return nil
	}
	if err := c.p.dev.SPITx(w, r); err != nil {
		return fmt.Errorf("%s: %w", c.p.name, err)
	}
	return nil
}

var _ spi.PortCloser = (*SPIPort)(nil)
