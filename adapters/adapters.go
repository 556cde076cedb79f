// Package adapters reads the hub's own sensors and publishes their readings
// into the broker: the Sensor interface, a scheduler that polls each sensor on
// its interval, and the publishing rules (payload, deadband, averaging,
// retained status topics).
//
// Each sensor runs in its own goroutine. Polls are scheduled on a fixed grid
// from the start time (start + phase + k·interval), so there is no drift over
// days; the phase is a stable per-sensor offset within the interval, so 20
// sensors do not hit one bus at the same instant; and a per-bus lock makes
// sure one bus is never used by two goroutines at a time. A failing sensor is
// closed and reopened with backoff, its status topic says why, and the others
// keep running; when it answers again it resumes without a restart.
//
// Topics and payloads (topic defaults to sensors/<name>):
//
//	sensors/<name>               {"time":"2026-11-28T13:05:00.000Z","temperature":{"value":21.5,"unit":"°C"},"humidity":{"value":40.1,"unit":"%"},"pressure":{"value":101325,"unit":"Pa"}}
//	sensors/<name>/<quantity>    21.5        (plain_topics: true; a bare number)
//	sensors/<name>/status        online | error: <reason> | offline   (always retained, on change)
//	sensors/<name>/set           command topic of a gpio-output: on, off, toggle, {"state":"on"}
//
// time is the reading's UTC time (RFC 3339, milliseconds); each quantity is an
// object with value (rounded to 4 decimals, null if not a number) and unit
// (SI, temperatures in °C; omitted when dimensionless, like a state 0/1).
// Readings are retained when retain: true, at the configured qos. With a
// deadband map a reading is published only when a quantity moved by its
// deadband (others: when they changed at all) or max_interval has passed;
// average: N publishes the mean of the last N readings.
//
// Drivers live in one package per chip family (adapters/bme280, ...) on the
// periph.io drivers; adapters/sim emulates the buses and chips so the same
// code runs with no hardware (simulate: in the config).
//
// Imports: brokercore/msg (never brokercore), periph, the driver packages.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Sensor is what a driver provides (see package sensor).
type Sensor = sensor.Sensor

// Value is one quantity of a reading.
type Value = sensor.Value

// Options configures the adapters. The zero value works: real clock, no
// state directory, hardware through periph's registries.
type Options struct {
	Logger *slog.Logger
	// Clock is the time source (nil: the wall clock).
	Clock sensor.Clock
	// StateDir keeps state that survives restarts (the pulse counters' totals).
	// Empty: nothing is kept.
	StateDir string
	// Subscriber receives command topics (gpio-output). Required only if a
	// sensor takes commands.
	Subscriber msg.Subscriber
	// Hardware opens real buses (nil: a HostBuses over periph's registries,
	// created only if a sensor is not simulated).
	Hardware sensor.Buses
	// Sim is the emulated hardware that simulate: sensors are attached to
	// (nil: a new World on Clock).
	Sim *sim.World
	// Jitter bounds each sensor's phase, its offset within its interval
	// (0: DefaultJitter). The first reading comes within Jitter of Run.
	Jitter time.Duration
	// RetryMin and RetryMax bound the backoff of a failing sensor (defaults
	// 1s and 5m); retries are never spaced more than the sensor's interval
	// once that is above RetryMin.
	RetryMin, RetryMax time.Duration
}

// DefaultJitter bounds the phases of sensors when Options.Jitter is 0.
const DefaultJitter = 10 * time.Second

// Adapters runs a set of sensors.
type Adapters struct {
	log     *slog.Logger
	clock   sensor.Clock
	pub     msg.Publisher
	opts    Options
	world   *sim.World
	host    *HostBuses // owned, if we made it
	entries []*entry
	byName  map[string]*entry

	runMu   sync.Mutex
	running bool
}

// New validates cfgs, builds the emulated chips of simulated sensors and
// returns the adapters, ready to Run. Devices are opened by Run (or ReadNow),
// so a sensor that is absent at start is retried, not fatal.
func New(cfgs []SensorConfig, pub msg.Publisher, opts Options) (*Adapters, error) {
	if err := Validate(cfgs); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = sim.RealClock{}
	}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("sensor state directory: %w", err)
		}
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	a := &Adapters{
		log:    opts.Logger.With("component", "adapters"),
		clock:  opts.Clock,
		pub:    pub,
		opts:   opts,
		world:  opts.Sim,
		byName: map[string]*entry{},
	}
	if a.world == nil {
		a.world = sim.NewWorld(opts.Clock.Now)
	}
	table := drivers()
	locks := map[string]*sync.Mutex{}
	for _, c := range cfgs {
		c = normalize(c)
		d := table[c.Driver]
		var buses sensor.Buses
		if c.Simulate != nil {
			if err := attachSim(a.world, d, c); err != nil {
				return nil, fmt.Errorf("sensor %q: simulate: %w", c.Name, err)
			}
			buses = a.world
		} else {
			if opts.Hardware == nil && a.host == nil {
				a.host = NewHostBuses()
			}
			buses = opts.Hardware
			if buses == nil {
				buses = a.host
			}
		}
		if d.command && opts.Subscriber == nil {
			return nil, fmt.Errorf("sensor %q: %s takes commands on %s/set: Options.Subscriber is nil", c.Name, d.name, c.Topic)
		}
		key := lockKey(c)
		if locks[key] == nil {
			locks[key] = &sync.Mutex{}
		}
		e := &entry{
			a:     a,
			cfg:   c,
			drv:   d,
			buses: buses,
			lock:  locks[key],
			phase: phase(c.Name, c.Interval, opts.Jitter),
			spec: sensor.Spec{Name: c.Name, Options: c.Options, StateDir: opts.StateDir, Clock: opts.Clock,
				Bus: sensor.BusRef{Type: c.Bus.Type, Name: c.Bus.Name, Address: d.address(c.Bus)}},
		}
		e.st = Status{Name: c.Name, Driver: c.Driver, Bus: e.spec.Bus.String(), Topic: c.Topic,
			Interval: c.Interval, Simulated: c.Simulate != nil, State: StateStarting}
		a.entries = append(a.entries, e)
		a.byName[c.Name] = e
	}
	return a, nil
}

// normalize fills the defaults of a validated config.
func normalize(c SensorConfig) SensorConfig {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Topic == "" {
		c.Topic = "sensors/" + c.Name
	}
	c.Topic = strings.TrimSuffix(c.Topic, "/")
	return c
}

// lockKey names the physical bus a sensor uses: sensors with the same key
// never run at once. SPI chip selects share their bus ("0.0" and "0.1").
func lockKey(c SensorConfig) string {
	k := c.Bus.Type + ":" + c.Bus.Name
	if c.Bus.Type == "spi" {
		bus, _, _ := strings.Cut(strings.TrimPrefix(strings.ToUpper(c.Bus.Name), "SPI"), ".")
		k = "spi:" + bus
	}
	if c.Simulate != nil {
		k = "sim-" + k
	}
	return k
}

// phase is the sensor's stable offset within its interval, from a hash of its
// name: the same after a restart, spread across sensors.
func phase(name string, interval, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		jitter = DefaultJitter
	}
	span := interval
	if jitter < span {
		span = jitter
	}
	if span <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(span))
}

// Phase returns the offset within its interval at which a sensor is polled.
func (a *Adapters) Phase(name string) (time.Duration, bool) {
	e, ok := a.byName[name]
	if !ok {
		return 0, false
	}
	return e.phase, true
}

// RegisterSimulated puts the emulated buses of the simulate: sensors into
// periph's registries (sim.Register), so that periph tools and `outpost
// sensors scan` see them by name ("SIM-I2C1") like hardware. periph's
// registries are process-global: call it once, from the hub, never from
// init. It is idempotent.
func (a *Adapters) RegisterSimulated() error { return sim.Register(a.world) }

// World returns the emulated hardware of the simulated sensors (for
// sim.Register, the scan command and tests).
func (a *Adapters) World() *sim.World { return a.world }

// Run polls and publishes until ctx is done, then publishes each sensor's
// status as offline, closes the devices and returns once every goroutine it
// started has exited. It returns nil after a normal shutdown.
func (a *Adapters) Run(ctx context.Context) error {
	a.runMu.Lock()
	if a.running {
		a.runMu.Unlock()
		return errors.New("adapters: Run called twice")
	}
	a.running = true
	a.runMu.Unlock()

	var cancels []func()
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for _, e := range a.entries {
		if !e.drv.command {
			continue
		}
		e := e
		topic := e.cfg.Topic + "/set"
		cancel, err := a.opts.Subscriber.Subscribe(topic, 1, func(m msg.Message) { e.command(m.Payload) })
		if err != nil {
			return fmt.Errorf("sensor %q: subscribe %s: %w", e.cfg.Name, topic, err)
		}
		cancels = append(cancels, cancel)
	}
	a.log.Info("sensors starting", "count", len(a.entries))
	start := a.clock.Now()
	var wg sync.WaitGroup
	for _, e := range a.entries {
		wg.Go(func() { e.loop(ctx, start) })
	}
	wg.Wait()
	for _, c := range cancels {
		c()
	}
	cancels = nil
	// Last words: the status topics say the sensors are no longer read.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, e := range a.entries {
		e.publishStatus(octx, "offline")
	}
	return a.Close()
}

// Close closes every open device and the host buses. Run calls it; call it
// yourself only after using ReadNow without Run.
func (a *Adapters) Close() error {
	var errs []error
	for _, e := range a.entries {
		e.mu.Lock()
		if err := e.closeDev(); err != nil {
			errs = append(errs, fmt.Errorf("close sensor %q: %w", e.cfg.Name, err))
		}
		e.mu.Unlock()
	}
	if a.host != nil {
		if err := a.host.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Info describes a configured sensor, for `outpost sensors list` and the console.
type Info struct {
	Name      string
	Driver    string
	Bus       string
	Topic     string
	Interval  time.Duration
	Phase     time.Duration
	Simulated bool
}

// List returns the configured sensors in config order.
func (a *Adapters) List() []Info {
	out := make([]Info, 0, len(a.entries))
	for _, e := range a.entries {
		out = append(out, Info{Name: e.cfg.Name, Driver: e.cfg.Driver, Bus: e.spec.Bus.String(), Topic: e.cfg.Topic,
			Interval: e.cfg.Interval, Phase: e.phase, Simulated: e.cfg.Simulate != nil})
	}
	return out
}

// Reading is one reading of a sensor.
type Reading struct {
	Time   time.Time
	Values []Value
}

// ReadNow reads the sensor called name once, now, without publishing. It
// opens the device if the scheduler has not (and closes it again), except an
// output (gpio-output), which it reads only while Run has it open.
func (a *Adapters) ReadNow(ctx context.Context, name string) (Reading, error) {
	e, ok := a.byName[name]
	if !ok {
		return Reading{}, fmt.Errorf("no sensor called %q (have: %s)", name, strings.Join(a.names(), ", "))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	dev := e.dev
	if dev == nil && e.drv.command {
		// Opening an output drives it to its initial state: a read from
		// the command line must not switch a running valve off.
		return Reading{}, fmt.Errorf("sensor %q is an output (%s): opening it here would drive it to its initial state; its state is on %s", name, e.drv.name, e.cfg.Topic)
	}
	if dev == nil {
		e.lock.Lock()
		d, err := e.drv.open(e.spec, e.buses)
		e.lock.Unlock()
		if err != nil {
			return Reading{}, fmt.Errorf("sensor %q: open %s: %w", name, e.spec.Bus, err)
		}
		defer d.Close()
		dev = d
	}
	vals, err := e.read(ctx, dev)
	if err != nil && !isSoft(err) {
		return Reading{}, fmt.Errorf("sensor %q: read: %w", name, err)
	}
	return Reading{Time: a.clock.Now(), Values: vals}, nil
}

func (a *Adapters) names() []string {
	var n []string
	for _, e := range a.entries {
		n = append(n, e.cfg.Name)
	}
	return n
}

// Status states.
const (
	StateStarting = "starting"
	StateOK       = "ok"
	StateError    = "error"
)

// Status is a sensor's health, for metrics and the console.
type Status struct {
	Name, Driver, Bus, Topic string
	Interval                 time.Duration
	Simulated                bool
	State                    string // starting | ok | error
	Error                    string // why, when State is error
	Since                    time.Time
	Last                     *Reading // last good reading
	LastPublish              time.Time
	Reads, Errors            uint64 // reads attempted (including opens that failed), failures
	Publishes, PublishErrors uint64
}

// Status returns every sensor's status in config order.
func (a *Adapters) Status() []Status {
	out := make([]Status, 0, len(a.entries))
	for _, e := range a.entries {
		e.smu.Lock()
		s := e.st
		if s.Last != nil {
			l := *s.Last
			l.Values = append([]Value(nil), l.Values...)
			s.Last = &l
		}
		e.smu.Unlock()
		out = append(out, s)
	}
	return out
}

func isSoft(err error) bool {
	var s *sensor.SoftError
	return errors.As(err, &s)
}
