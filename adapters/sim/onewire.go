package sim

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"periph.io/x/conn/v3/onewire"
)

// OneWireDevice is a slave on an emulated 1-Wire bus, modelled at the byte
// level after ROM selection (Maxim AN937, "Book of iButton Standards" ch. 5:
// ROM commands 0x33 read, 0x55 match, 0xCC skip, 0xF0 search, 0xEC alarm search).
type OneWireDevice interface {
	ROM() onewire.Address
	// Present reports whether the device answers a reset with a presence pulse.
	Present() bool
	// Alarm reports whether the device answers an alarm search.
	Alarm() bool
	// Reset ends the current function command.
	Reset()
	// Write is a byte the master writes after the device was selected.
	Write(b byte)
	// Read is a byte the master reads; an unselected or idle device leaves the
	// bus high (0xFF).
	Read() byte
}

// OneWireLink is the electrical 1-Wire bus with its slaves: resets, byte
// writes and reads, search triplets. OneWireBus (a master on GPIO, as the
// Linux w1 driver or periph's bitbang) and DS2482 (a bridge on I²C) drive it.
type OneWireLink struct {
	mu    sync.Mutex
	devs  []OneWireDevice
	short bool

	state    linkState
	selected []OneWireDevice
	matchBuf []byte
	search   []OneWireDevice // devices still in the search
}

type linkState int

const (
	linkIdle   linkState = iota // before a reset: nobody listens
	linkROM                     // after reset: expecting a ROM command
	linkMatch                   // collecting 8 ROM bytes
	linkSearch                  // search triplets
	linkFunc                    // a device (or all, skip ROM) selected
)

// NewOneWireLink returns an empty bus.
func NewOneWireLink() *OneWireLink { return &OneWireLink{} }

// Attach adds a slave.
func (l *OneWireLink) Attach(d OneWireDevice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.devs = append(l.devs, d)
}

// Devices lists the slaves by ROM.
func (l *OneWireLink) Devices() []OneWireDevice {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]OneWireDevice(nil), l.devs...)
	sort.Slice(out, func(i, j int) bool { return out[i].ROM() < out[j].ROM() })
	return out
}

// SetShorted shorts (or repairs) the bus: resets report a short.
func (l *OneWireLink) SetShorted(s bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.short = s
}

// Reset sends a reset pulse; it reports presence and short.
func (l *OneWireLink) Reset() (present, shorted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.devs {
		d.Reset()
	}
	l.state, l.selected, l.matchBuf = linkROM, nil, nil
	if l.short {
		return false, true
	}
	for _, d := range l.devs {
		if d.Present() {
			return true, false
		}
	}
	return false, false
}

// Write8 writes one byte.
func (l *OneWireLink) Write8(b byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case linkROM:
		switch b {
		case 0xCC: // skip ROM: every device listens
			l.selected = l.present()
			l.state = linkFunc
		case 0x55:
			l.matchBuf = l.matchBuf[:0]
			l.state = linkMatch
		case 0xF0, 0xEC:
			l.search = nil
			for _, d := range l.present() {
				if b == 0xF0 || d.Alarm() {
					l.search = append(l.search, d)
				}
			}
			l.state = linkSearch
		case 0x33: // read ROM: only meaningful with one device
			l.selected = l.present()
			l.state = linkFunc
		default:
			l.state = linkIdle
		}
	case linkMatch:
		l.matchBuf = append(l.matchBuf, b)
		if len(l.matchBuf) == 8 {
			var a onewire.Address
			for i := 7; i >= 0; i-- {
				a = a<<8 | onewire.Address(l.matchBuf[i])
			}
			l.selected = nil
			for _, d := range l.present() {
				if d.ROM() == a {
					l.selected = append(l.selected, d)
				}
			}
			l.state = linkFunc
		}
	case linkFunc:
		for _, d := range l.selected {
			d.Write(b)
		}
	}
}

// Read8 reads one byte: the wired-AND of the selected devices' outputs.
func (l *OneWireLink) Read8() byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := byte(0xFF)
	if l.state == linkFunc {
		for _, d := range l.selected {
			v &= d.Read()
		}
	}
	return v
}

// Triplet performs one search step (DS2482 datasheet, "1-Wire Triplet",
// page 10): read the bit, read its complement, write the direction taken.
func (l *OneWireLink) Triplet(bit int, dir byte) onewire.TripletResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != linkSearch {
		return onewire.TripletResult{Taken: 1}
	}
	id, comp := true, true // wired-AND, pulled high
	for _, d := range l.search {
		if uint64(d.ROM())>>uint(bit)&1 == 1 {
			comp = false
		} else {
			id = false
		}
	}
	r := onewire.TripletResult{GotZero: !id, GotOne: !comp}
	switch {
	case !id && comp:
		r.Taken = 0
	case id && !comp:
		r.Taken = 1
	case !id && !comp:
		r.Taken = dir & 1
	default:
		r.Taken = 1
	}
	kept := l.search[:0]
	for _, d := range l.search {
		if byte(uint64(d.ROM())>>uint(bit)&1) == r.Taken {
			kept = append(kept, d)
		}
	}
	l.search = kept
	if bit == 63 {
		l.selected = append([]OneWireDevice(nil), l.search...)
		l.state = linkFunc
	}
	return r
}

func (l *OneWireLink) present() []OneWireDevice {
	var out []OneWireDevice
	for _, d := range l.devs {
		if d.Present() {
			out = append(out, d)
		}
	}
	return out
}

// OneWireBus is a 1-Wire master straight on the link (onewire.Bus), as the
// Linux w1-gpio master or a bit-banged pin is.
type OneWireBus struct {
	name string
	link *OneWireLink
	mu   sync.Mutex
	bit  int
}

// NewOneWireBus returns a master called name on link.
func NewOneWireBus(name string, link *OneWireLink) *OneWireBus {
	return &OneWireBus{name: name, link: link}
}

// Link returns the bus the master drives.
func (b *OneWireBus) Link() *OneWireLink { return b.link }

// String implements onewire.Bus.
func (b *OneWireBus) String() string { return b.name }

// Close implements onewire.BusCloser.
func (b *OneWireBus) Close() error { return nil }

// Tx implements onewire.Bus: reset, write w, read r.
func (b *OneWireBus) Tx(w, r []byte, power onewire.Pullup) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	present, short := b.link.Reset()
	if short {
		return shortedErr(b.name + ": bus shorted")
	}
	if !present {
		return noDevicesErr(b.name + ": no presence pulse: no device on the bus")
	}
	for _, x := range w {
		b.link.Write8(x)
	}
	for i := range r {
		r[i] = b.link.Read8()
	}
	b.bit = 0
	return nil
}

// SearchTriplet implements onewire.BusSearcher.
func (b *OneWireBus) SearchTriplet(dir byte) (onewire.TripletResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.link.Triplet(b.bit, dir)
	b.bit = (b.bit + 1) % 64
	return r, nil
}

// Search implements onewire.Bus with periph's search algorithm over triplets.
func (b *OneWireBus) Search(alarmOnly bool) ([]onewire.Address, error) {
	addrs, err := onewire.Search(b, alarmOnly)
	if err != nil {
		var nd onewire.NoDevicesError
		if errors.As(err, &nd) && nd.NoDevices() {
			return nil, nil
		}
		return addrs, fmt.Errorf("%s: search: %w", b.name, err)
	}
	return addrs, nil
}

type noDevicesErr string

func (e noDevicesErr) Error() string   { return string(e) }
func (e noDevicesErr) NoDevices() bool { return true }
func (e noDevicesErr) BusError() bool  { return true }

type shortedErr string

func (e shortedErr) Error() string   { return string(e) }
func (e shortedErr) IsShorted() bool { return true }
func (e shortedErr) BusError() bool  { return true }

var _ onewire.BusCloser = (*OneWireBus)(nil)
var _ onewire.BusSearcher = (*OneWireBus)(nil)
