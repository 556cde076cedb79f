package sim

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

// Pin is an emulated GPIO pin (gpio.PinIO). The outside world drives it with
// Set (a switch, a reed contact, a meter's pulse output); the software under
// test reads it or drives it with Out like a real pin. Edges are queued from
// Set in the order they happen, so contact bounce arrives as bounce.
type Pin struct {
	name   string
	number int

	mu      sync.Mutex
	level   gpio.Level
	out     bool // configured as output
	pull    gpio.Pull
	edge    gpio.Edge
	pending int           // unconsumed edges
	wake    chan struct{} // closed when an edge arrives or In is called
	waiting int
	outs    []gpio.Level // levels written by Out, for tests
	onOut   func(gpio.Level)

	// Pulse source (SetPulses): the pin is low for width every period.
	now     func() time.Time
	period  time.Duration
	width   time.Duration
	bounce  int
	origin  time.Time
	checked time.Time // edges up to here have been queued
}

// SetPulses makes the pin a pulse source, like a rain gauge or an energy
// meter's S0 output: every 60s/perMinute it goes low for width (at most half
// the period, 100 ms by default), with bounce extra edge pairs at each press.
// Edges are produced lazily from clock now, so no goroutine runs.
func (p *Pin) SetPulses(now func() time.Time, perMinute float64, width time.Duration, bounce int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if perMinute <= 0 {
		p.period = 0
		return
	}
	p.now, p.bounce = now, bounce
	p.period = time.Duration(float64(time.Minute) / perMinute)
	if width <= 0 {
		width = 100 * time.Millisecond
	}
	if width > p.period/2 {
		width = p.period / 2
	}
	p.width = width
	p.origin = now()
	p.checked = p.origin
}

// nextEdgeLocked is when the pulse source next changes level.
func (p *Pin) nextEdgeLocked() time.Time {
	d := p.now().Sub(p.origin)
	k := d / p.period
	if off := d - k*p.period; k > 0 && off < p.width {
		return p.origin.Add(k*p.period + p.width) // the release of the current press
	}
	return p.origin.Add((k + 1) * p.period)
}

// pulseLocked brings the level and pending edges of a pulse source up to now.
func (p *Pin) pulseLocked() {
	if p.period == 0 {
		return
	}
	now := p.now()
	// Count presses and releases in (checked, now].
	edges := func(t time.Time) (press, release int64) {
		d := t.Sub(p.origin)
		if d < 0 {
			return 0, 0
		}
		k := int64(d / p.period)
		press = k // presses at period, 2·period, ... (none at the origin)
		release = k
		if off := d - time.Duration(k)*p.period; k > 0 && off < p.width {
			release = k - 1
		}
		return press, release
	}
	p0, r0 := edges(p.checked)
	p1, r1 := edges(now)
	n := int((p1 - p0) + (r1 - r0))
	if n > 0 && p.edge != gpio.NoEdge {
		presses := int(p1 - p0)
		if p.edge == gpio.BothEdges {
			p.pending += n + 2*p.bounce*presses
		} else {
			p.pending += presses * (1 + p.bounce)
		}
	}
	p.level = gpio.High
	if p1 > r1 {
		p.level = gpio.Low
	}
	p.checked = now
}

// NewPin returns an input pin called name, at level High (pulled up).
func NewPin(name string, number int) *Pin {
	return &Pin{name: name, number: number, level: gpio.High, wake: make(chan struct{})}
}

// Set drives the pin from outside to l; an edge is queued if the level
// changes and the pin watches that edge.
func (p *Pin) Set(l gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l == p.level {
		return
	}
	p.level = l
	if p.edge == gpio.BothEdges || (p.edge == gpio.RisingEdge && l) || (p.edge == gpio.FallingEdge && !l) {
		p.pending++
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// Pulse drives the pin low for width and back high, with bounce extra
// low-high flickers at the start of each transition, the way a reed switch
// closes. It does not wait: the edges are queued.
func (p *Pin) Pulse(bounce int) {
	for i := 0; i < bounce; i++ {
		p.Set(gpio.Low)
		p.Set(gpio.High)
	}
	p.Set(gpio.Low)
}

// Outs returns the last (up to 64) levels written with Out.
func (p *Pin) Outs() []gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]gpio.Level(nil), p.outs...)
}

// OnOut registers f to be called (outside the pin's lock) after each Out.
func (p *Pin) OnOut(f func(gpio.Level)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onOut = f
}

// WaitingForEdge reports whether a goroutine is blocked in WaitForEdge with
// no edge pending (the watcher has caught up).
func (p *Pin) WaitingForEdge() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting > 0 && p.pending == 0
}

// String implements pin.Pin.
func (p *Pin) String() string { return p.name }

// Name implements pin.Pin.
func (p *Pin) Name() string { return p.name }

// Number implements pin.Pin.
func (p *Pin) Number() int { return p.number }

// Function implements pin.Pin.
func (p *Pin) Function() string { return string(p.Func()) }

// Func implements pin.PinFunc.
func (p *Pin) Func() pin.Func {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out {
		return gpio.OUT
	}
	return gpio.IN
}

// SupportedFuncs implements pin.PinFunc.
func (p *Pin) SupportedFuncs() []pin.Func { return []pin.Func{gpio.IN, gpio.OUT} }

// SetFunc implements pin.PinFunc.
func (p *Pin) SetFunc(f pin.Func) error {
	switch f {
	case gpio.IN:
		return p.In(gpio.PullNoChange, gpio.NoEdge)
	case gpio.OUT:
		return p.Out(p.Read())
	}
	return errors.New(p.name + ": unsupported function " + string(f))
}

// Halt implements conn.Resource: stops edge detection and wakes WaitForEdge.
func (p *Pin) Halt() error {
	return p.In(gpio.PullNoChange, gpio.NoEdge)
}

// In implements gpio.PinIn.
func (p *Pin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = false
	if pull != gpio.PullNoChange {
		p.pull = pull
	}
	p.edge = edge
	p.pending = 0
	close(p.wake)
	p.wake = make(chan struct{})
	return nil
}

// Read implements gpio.PinIn.
func (p *Pin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pulseLocked()
	return p.level
}

// WaitForEdge implements gpio.PinIn: returns at once if edges are pending
// (consuming them all), else waits for one up to timeout (-1: forever).
func (p *Pin) WaitForEdge(timeout time.Duration) bool {
	p.mu.Lock()
	p.pulseLocked()
	if p.period > 0 {
		// Wake when the pulse source's next edge is due (at least 1 ms later).
		if d := p.nextEdgeLocked().Sub(p.now()); timeout < 0 || d < timeout {
			timeout = max(d, time.Millisecond)
		}
	}
	if p.pending > 0 {
		p.pending = 0
		p.mu.Unlock()
		return true
	}
	if p.edge == gpio.NoEdge {
		p.mu.Unlock()
		return false
	}
	wake := p.wake
	p.waiting++
	p.mu.Unlock()
	var tc <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-wake:
	case <-tc:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting--
	p.pulseLocked()
	if p.pending > 0 {
		p.pending = 0
		return true
	}
	return false
}

// Pull implements gpio.PinIn.
func (p *Pin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn.
func (p *Pin) DefaultPull() gpio.Pull { return gpio.PullUp }

// Out implements gpio.PinOut.
func (p *Pin) Out(l gpio.Level) error {
	p.mu.Lock()
	p.out = true
	p.level = l
	if len(p.outs) >= 64 {
		p.outs = append(p.outs[:0], p.outs[1:]...)
	}
	p.outs = append(p.outs, l)
	f := p.onOut
	p.mu.Unlock()
	if f != nil {
		f(l)
	}
	return nil
}

// PWM implements gpio.PinOut; emulated pins have no PWM.
func (p *Pin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New(p.name + ": PWM not supported on an emulated pin")
}

var _ gpio.PinIO = (*Pin)(nil)

func itoa(i int) string { return strconv.Itoa(i) }
