package adapters

import (
	"context"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/adapters/sensor"
)

// entry is one configured sensor and the goroutine that polls it.
type entry struct {
	a     *Adapters
	cfg   SensorConfig // normalised
	drv   driver
	spec  sensor.Spec
	buses sensor.Buses
	lock  *sync.Mutex // the bus lock, shared by every sensor on the bus
	phase time.Duration

	// mu serialises use of dev (the loop, ReadNow, commands).
	mu        sync.Mutex
	dev       sensor.Sensor
	stopWatch func() // cancels the watcher and waits for it

	// smu guards the status, the publishing state and pending events.
	smu      sync.Mutex
	st       Status
	status   string // last status payload published
	pubState pubState
	changed  bool     // a watcher asked for a publish
	cmds     [][]byte // commands waiting
	wake     func()   // cancels the loop's current sleep
}

// maxPendingCommands bounds the command queue of one output.
const maxPendingCommands = 16

// busWaiter is the sensor.Waiter handed to Read: it frees the bus while a
// driver waits for a conversion.
type busWaiter struct {
	lock  *sync.Mutex
	clock sensor.Clock
}

func (w busWaiter) Wait(ctx context.Context, d time.Duration) error {
	w.lock.Unlock()
	defer w.lock.Lock()
	return w.clock.SleepUntil(ctx, w.clock.Now().Add(d))
}

// loop polls the sensor on its grid until ctx is done.
func (e *entry) loop(ctx context.Context, start time.Time) {
	clock := e.a.clock
	base := start.Add(e.phase)
	next := base
	failures := 0
	for {
		// Sleep until the next slot; a watcher or a command wakes us early.
		sctx, cancel := context.WithCancel(ctx)
		e.smu.Lock()
		e.wake = cancel
		pending := e.changed || len(e.cmds) > 0
		e.smu.Unlock()
		if !pending {
			clock.SleepUntil(sctx, next)
		}
		cancel()
		e.smu.Lock()
		e.wake = nil
		e.smu.Unlock()
		if ctx.Err() != nil {
			e.mu.Lock()
			e.stopWatcher()
			e.mu.Unlock()
			return
		}
		if e.events(ctx) {
			continue // published an event; the grid is unchanged
		}
		if clock.Now().Before(next) {
			continue
		}
		if e.poll(ctx, false) {
			failures = 0
			next = nextSlot(base, e.cfg.Interval, clock.Now())
		} else if ctx.Err() == nil {
			failures++
			next = clock.Now().Add(e.backoff(failures))
		}
	}
}

// nextSlot returns the first base + k·interval strictly after now.
func nextSlot(base time.Time, interval time.Duration, now time.Time) time.Time {
	if now.Before(base) {
		return base
	}
	k := now.Sub(base)/interval + 1
	return base.Add(k * interval)
}

// backoff is the wait before retry n (1, 2, ...): doubling from RetryMin,
// capped at the interval (within RetryMin..RetryMax).
func (e *entry) backoff(n int) time.Duration {
	lo, hi := e.a.opts.RetryMin, e.a.opts.RetryMax
	limit := e.cfg.Interval
	if limit < lo {
		limit = lo
	}
	if limit > hi {
		limit = hi
	}
	d := lo
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	if d > limit {
		d = limit
	}
	return d
}

// events handles commands and watcher changes; it reports whether there were any.
func (e *entry) events(ctx context.Context) bool {
	e.smu.Lock()
	cmds, changed := e.cmds, e.changed
	e.cmds, e.changed = nil, false
	e.smu.Unlock()
	if len(cmds) == 0 && !changed {
		return false
	}
	for _, c := range cmds {
		e.mu.Lock()
		if e.dev == nil {
			e.mu.Unlock()
			if !e.poll(ctx, false) { // open it
				e.a.log.Warn("command dropped: sensor not available", "sensor", e.cfg.Name, "payload", string(c))
				continue
			}
			e.mu.Lock()
		}
		cmd, ok := e.dev.(sensor.Commander)
		var err error
		if ok {
			e.lock.Lock()
			err = cmd.Command(c)
			e.lock.Unlock()
		}
		e.mu.Unlock()
		if err != nil {
			e.a.log.Warn("command rejected", "sensor", e.cfg.Name, "topic", e.cfg.Topic+"/set", "err", err)
			continue
		}
		changed = true
	}
	if changed {
		e.poll(ctx, true)
	}
	return true
}

// command queues a command payload (called from the broker's delivery path:
// must not block).
func (e *entry) command(p []byte) {
	e.smu.Lock()
	defer e.smu.Unlock()
	if len(e.cmds) >= maxPendingCommands {
		e.a.log.Warn("command dropped: queue full", "sensor", e.cfg.Name)
		return
	}
	e.cmds = append(e.cmds, append([]byte(nil), p...))
	if e.wake != nil {
		e.wake()
	}
}

// notify asks for a publish now (a watcher saw a change).
func (e *entry) notify() {
	e.smu.Lock()
	defer e.smu.Unlock()
	e.changed = true
	if e.wake != nil {
		e.wake()
	}
}

// poll opens the device if needed, reads it and publishes; it reports success.
// force publishes even inside the deadband.
func (e *entry) poll(ctx context.Context, force bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dev == nil {
		e.lock.Lock()
		dev, err := e.drv.open(e.spec, e.buses)
		e.lock.Unlock()
		if err != nil {
			e.failed(ctx, "open "+e.spec.Bus.String()+": "+err.Error())
			return false
		}
		e.dev = dev
		e.startWatcher(ctx)
	}
	vals, err := e.read(ctx, e.dev)
	if err != nil && ctx.Err() != nil {
		return false // shutting down mid-read
	}
	if err != nil && !isSoft(err) {
		e.closeDev()
		e.failed(ctx, err.Error())
		return false
	}
	e.succeeded(ctx, vals, err, force)
	return true
}

// read reads dev with the bus locked. Call with e.mu held.
func (e *entry) read(ctx context.Context, dev sensor.Sensor) ([]sensor.Value, error) {
	e.lock.Lock()
	defer e.lock.Unlock()
	return dev.Read(ctx, busWaiter{lock: e.lock, clock: e.a.clock})
}

// startWatcher runs the device's Watch, if it has one. Call with e.mu held.
func (e *entry) startWatcher(ctx context.Context) {
	w, ok := e.dev.(sensor.Watcher)
	if !ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Watch(wctx, e.notify); err != nil {
			e.a.log.Warn("watch stopped", "sensor", e.cfg.Name, "err", err)
		}
	}()
	e.stopWatch = func() { cancel(); <-done }
}

func (e *entry) stopWatcher() {
	if e.stopWatch != nil {
		e.stopWatch()
		e.stopWatch = nil
	}
}

// closeDev stops the watcher and closes the device. Call with e.mu held.
func (e *entry) closeDev() error {
	e.stopWatcher()
	if e.dev == nil {
		return nil
	}
	err := e.dev.Close()
	e.dev = nil
	return err
}
