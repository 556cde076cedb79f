package sim

import "sync"

// DS2482 models a Maxim DS2482-100 I²C to 1-Wire bridge (addresses
// 0x18-0x1B) driving link. Datasheet 19-4931 rev 10: function commands
// (page 9-13: 0xF0 device reset, 0xE1 set read pointer, 0xD2 write
// configuration, 0xB4 1-Wire reset, 0xA5 write byte, 0x96 read byte, 0x87
// single bit, 0x78 triplet), status register bits (page 8: 1WB, PPD, SD, LL,
// RST, SBR, TSB, DIR), read pointer codes (page 9: F0 status, E1 data, C3
// configuration; others are not acknowledged by the -100).
type DS2482 struct {
	mu     sync.Mutex
	link   *OneWireLink
	status byte
	data   byte
	config byte
	ptr    byte
	bit    int
	fault  Fault
}

// NewDS2482 returns a bridge on link.
func NewDS2482(link *OneWireLink) *DS2482 {
	d := &DS2482{link: link}
	d.reset()
	return d
}

// SetFault makes the bridge itself fail (FaultNACK: it vanishes from I²C).
func (d *DS2482) SetFault(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
}

func (d *DS2482) reset() {
	d.status = 0x18 // RST | LL (page 8: after device reset)
	d.config = 0
	d.ptr = 0xF0
}

// Tx implements I2CDevice.
func (d *DS2482) Tx(w, r []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := faultErr(d.fault); err != nil {
		return err
	}
	if len(w) > 0 {
		if err := d.command(w[0], w[1:]); err != nil {
			return err
		}
	}
	for i := range r {
		switch d.ptr {
		case 0xF0:
			r[i] = d.status
		case 0xE1:
			r[i] = d.data
		case 0xC3:
			r[i] = d.config
		}
	}
	return nil
}

func (d *DS2482) command(c byte, args []byte) error {
	arg := func() (byte, error) {
		if len(args) != 1 {
			return 0, errNACK
		}
		return args[0], nil
	}
	switch c {
	case 0xF0:
		d.reset()
	case 0xE1:
		a, err := arg()
		if err != nil {
			return err
		}
		switch a {
		case 0xF0, 0xE1, 0xC3:
			d.ptr = a
		default:
			return errNACK // DS2482-800/DS2483 registers: a -100 does not acknowledge
		}
	case 0xD2:
		a, err := arg()
		if err != nil {
			return err
		}
		if a>>4 != ^a&0x0F { // upper nibble must be the one's complement (page 10)
			return errNACK
		}
		d.config = a & 0x0F
		d.status &^= 0x10 // RST clears on configuration write
		d.ptr = 0xC3
	case 0xB4:
		present, short := d.link.Reset()
		d.status &^= 0x06
		if present {
			d.status |= 0x02
		}
		if short {
			d.status |= 0x04
		}
		d.bit = 0
		d.ptr = 0xF0
		d.config &^= 0x04 // SPU clears after the next 1-Wire activity
	case 0xA5:
		a, err := arg()
		if err != nil {
			return err
		}
		d.link.Write8(a)
		d.ptr = 0xF0
		d.config &^= 0x04
	case 0x96:
		d.data = d.link.Read8()
		d.ptr = 0xF0
		d.config &^= 0x04
	case 0x78:
		a, err := arg()
		if err != nil {
			return err
		}
		tr := d.link.Triplet(d.bit, a>>7)
		d.bit = (d.bit + 1) % 64
		d.status &^= 0xE0
		if !tr.GotZero { // SBR: first bit read was 1
			d.status |= 0x20
		}
		if !tr.GotOne { // TSB: complement bit read was 1
			d.status |= 0x40
		}
		if tr.Taken == 1 {
			d.status |= 0x80
		}
		d.ptr = 0xF0
	case 0x87:
		d.ptr = 0xF0 // single bits are not used by the drivers; reads as 1
		d.status |= 0x20
	default:
		return errNACK
	}
	return nil
}

var _ I2CDevice = (*DS2482)(nil)
