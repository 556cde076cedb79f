package sensor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// EdgePoll is how long a GPIO watcher blocks in WaitForEdge before it looks
// at its context again: the bound on how long shutdown waits for it.
const EdgePoll = 200 * time.Millisecond

// ParsePull reads a pull option: up, down, none.
func ParsePull(s string) (gpio.Pull, error) {
	switch strings.ToLower(s) {
	case "up", "":
		return gpio.PullUp, nil
	case "down":
		return gpio.PullDown, nil
	case "none", "float":
		return gpio.Float, nil
	}
	return gpio.PullNoChange, fmt.Errorf("option pull: %q is not up, down or none", s)
}

// Debouncer turns a bouncing input into clean level changes by integration:
// after any edge it waits Delay and samples the pin; a level counts only if it
// differs from the last stable one. A contact that bounces for less than Delay
// therefore gives exactly one change, and a pulse shorter than Delay none.
type Debouncer struct {
	Pin    gpio.PinIn
	Delay  time.Duration
	Clock  Clock
	Stable gpio.Level
}

// Next blocks until the stable level changes and returns it, or returns
// ctx.Err().
func (d *Debouncer) Next(ctx context.Context) (gpio.Level, error) {
	for {
		if err := ctx.Err(); err != nil {
			return d.Stable, err
		}
		if !d.Pin.WaitForEdge(EdgePoll) {
			continue
		}
		if d.Delay > 0 {
			if err := d.Clock.SleepUntil(ctx, d.Clock.Now().Add(d.Delay)); err != nil {
				return d.Stable, err
			}
		}
		if l := d.Pin.Read(); l != d.Stable {
			d.Stable = l
			return l, nil
		}
	}
}
