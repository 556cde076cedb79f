// Package gpiocounter counts pulses on a GPIO input: a tipping-bucket rain
// gauge, a flow meter, an energy meter's S0 output. The count is debounced
// (sensor.Debouncer), scaled to engineering units, and its running total is
// kept in a file under the state directory so it survives restarts.
//
// Options:
//
//	debounce: 20ms      # a contact must settle this long (rain gauge reed: 20-50 ms)
//	edge: falling       # falling (contact to ground, pull-up) or rising
//	pull: up            # up, down, none
//	scale: 0.2794       # units per pulse (default 1)
//	unit: mm            # unit of total (default "pulses"); rate is unit/min
//
// Quantities: total (scaled, persistent), rate (per minute since the last
// read), pulses (raw count, persistent).
//
// The total is written (atomically: temp file, fsync, rename) at each read
// when it changed, so a power cut loses at most the pulses of one interval.
//
// Imports: periph conn and adapters/sensor; never package adapters.
package gpiocounter

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// Config is the parsed options.
type Config struct {
	Debounce time.Duration
	Active   gpio.Level
	Pull     gpio.Pull
	Scale    float64
	Unit     string
}

// Parse reads the options: map.
func Parse(m map[string]any) (Config, error) {
	o := sensor.NewOptions(m)
	c := Config{
		Debounce: o.Duration("debounce", 20*time.Millisecond),
		Scale:    o.Float("scale", 1),
		Unit:     o.String("unit", "pulses"),
	}
	edge := o.String("edge", "falling")
	pull := o.String("pull", "up")
	if err := o.Err(); err != nil {
		return Config{}, err
	}
	switch strings.ToLower(edge) {
	case "falling":
		c.Active = gpio.Low
	case "rising":
		c.Active = gpio.High
	default:
		return Config{}, fmt.Errorf("option edge: %q is not falling or rising", edge)
	}
	var err error
	if c.Pull, err = sensor.ParsePull(pull); err != nil {
		return Config{}, err
	}
	if c.Debounce < 0 || c.Debounce > time.Second {
		return Config{}, fmt.Errorf("option debounce: %s is not between 0 and 1s", c.Debounce)
	}
	if c.Scale <= 0 {
		return Config{}, fmt.Errorf("option scale: %g is not positive", c.Scale)
	}
	return c, nil
}

// Sensor is an open pulse counter.
type Sensor struct {
	cfg   Config
	pin   gpio.PinIO
	clock sensor.Clock
	file  string // state file, "" = not persisted

	initial  gpio.Level // level when opened: the debouncer's first stable level
	mu       sync.Mutex
	pulses   uint64
	saved    uint64
	lastRead time.Time
	lastSeen uint64
}

type state struct {
	Pulses uint64 `json:"pulses"`
}

// Open configures the pin as an input with edge detection and loads the
// saved total from s.StateDir.
func Open(s sensor.Spec, b sensor.Buses) (*Sensor, error) {
	cfg, err := Parse(s.Options)
	if err != nil {
		return nil, err
	}
	pin, err := b.GPIO(s.Bus.Name)
	if err != nil {
		return nil, sensor.OpenError(s.Bus, err)
	}
	if err := pin.In(cfg.Pull, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("set %s as input: %w", pin, err)
	}
	d := &Sensor{cfg: cfg, pin: pin, clock: s.Clock, lastRead: s.Clock.Now(), initial: pin.Read()}
	if s.StateDir != "" {
		d.file = filepath.Join(s.StateDir, s.Name+".counter.json")
		b, err := os.ReadFile(d.file)
		switch {
		case err == nil:
			var st state
			if err := json.Unmarshal(b, &st); err != nil {
				return nil, fmt.Errorf("read counter state %s: %w", d.file, err)
			}
			d.pulses, d.saved, d.lastSeen = st.Pulses, st.Pulses, st.Pulses
		case !os.IsNotExist(err):
			return nil, fmt.Errorf("read counter state: %w", err)
		}
	}
	return d, nil
}

// Watch implements sensor.Watcher: count debounced pulses until ctx is done.
func (d *Sensor) Watch(ctx context.Context, _ func()) error {
	db := sensor.Debouncer{Pin: d.pin, Delay: d.cfg.Debounce, Clock: d.clock, Stable: d.initial}
	for {
		l, err := db.Next(ctx)
		if err != nil {
			return nil
		}
		if l == d.cfg.Active {
			d.mu.Lock()
			d.pulses++
			d.mu.Unlock()
		}
	}
}

// Pulses returns the running count.
func (d *Sensor) Pulses() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pulses
}

// Read implements sensor.Sensor. It also saves the total when it changed.
func (d *Sensor) Read(ctx context.Context, _ sensor.Waiter) ([]sensor.Value, error) {
	now := d.clock.Now()
	d.mu.Lock()
	n := d.pulses
	rate := 0.0
	if el := now.Sub(d.lastRead); el > 0 {
		rate = float64(n-d.lastSeen) * d.cfg.Scale / el.Minutes()
	}
	d.lastRead, d.lastSeen = now, n
	d.mu.Unlock()
	vals := []sensor.Value{
		{Quantity: "total", Value: float64(n) * d.cfg.Scale, Unit: d.cfg.Unit},
		{Quantity: "rate", Value: rate, Unit: d.cfg.Unit + "/min"},
		{Quantity: "pulses", Value: float64(n), Unit: "pulses"},
	}
	if err := d.save(n); err != nil {
		return vals, &sensor.SoftError{Err: err}
	}
	return vals, nil
}

func (d *Sensor) save(n uint64) error {
	if d.file == "" || n == d.saved {
		return nil
	}
	b, _ := json.Marshal(state{Pulses: n})
	if err := writeFileSync(d.file, b); err != nil {
		return fmt.Errorf("save counter total: %w", err)
	}
	d.saved = n
	return nil
}

// writeFileSync replaces name with b so that after a crash it holds either
// the old or the new content: write a temp file, fsync, rename, fsync the dir.
func writeFileSync(name string, b []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return nil
}

// Close implements sensor.Sensor: saves the total and stops edge detection.
func (d *Sensor) Close() error {
	err := d.save(d.Pulses())
	if herr := d.pin.In(d.cfg.Pull, gpio.NoEdge); err == nil {
		err = herr
	}
	return err
}

var _ sensor.Sensor = (*Sensor)(nil)
var _ sensor.Watcher = (*Sensor)(nil)
