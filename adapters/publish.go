package adapters

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// pubState is what the publishing rules remember between readings.
type pubState struct {
	window  map[string][]float64 // last N values per quantity (Average)
	last    map[string]float64   // values last published
	lastPub time.Time

	prev    []sensor.Value // previous reading (StuckAfter)
	changed time.Time      // when a value last changed
}

// stuck reports how long every value has been unchanged, if that reaches
// limit (0: never).
func (p *pubState) stuck(vals []sensor.Value, limit time.Duration, now time.Time) (time.Duration, bool) {
	same := len(vals) == len(p.prev)
	for i := 0; same && i < len(vals); i++ {
		same = vals[i] == p.prev[i]
	}
	p.prev = append(p.prev[:0], vals...)
	if !same || p.changed.IsZero() {
		p.changed = now
		return 0, false
	}
	d := now.Sub(p.changed)
	return d, limit > 0 && d >= limit
}

// succeeded records a good reading and publishes it if the rules say so.
// soft is a SoftError that came with the values (status shows it).
func (e *entry) succeeded(ctx context.Context, vals []sensor.Value, soft error, force bool) {
	now := e.a.clock.Now()
	e.smu.Lock()
	e.st.Reads++
	if _, stuck := e.pubState.stuck(vals, e.cfg.StuckAfter, now); stuck && soft == nil {
		soft = fmt.Errorf("values unchanged for %s or more (stuck sensor?)", e.cfg.StuckAfter)
	}
	vals = e.pubState.average(vals, e.cfg.Average)
	e.st.Last = &Reading{Time: now, Values: vals}
	publish := force || e.pubState.due(vals, e.cfg, now)
	wasErr := e.st.State == StateError
	if soft != nil {
		e.st.Errors++
		if e.st.State != StateError || e.st.Error != soft.Error() {
			e.st.Since = now
		}
		e.st.State, e.st.Error = StateError, soft.Error()
	} else if e.st.State != StateOK {
		e.st.State, e.st.Error, e.st.Since = StateOK, "", now
	}
	e.smu.Unlock()
	if soft != nil {
		e.publishStatus(ctx, "error: "+soft.Error())
	} else {
		if wasErr {
			e.a.log.Info("sensor recovered", "sensor", e.cfg.Name)
		}
		e.publishStatus(ctx, "online")
	}
	if publish {
		e.publishReading(ctx, now, vals)
	}
}

// failed records a failed open or read and publishes the status.
func (e *entry) failed(ctx context.Context, reason string) {
	now := e.a.clock.Now()
	e.smu.Lock()
	e.st.Reads++
	e.st.Errors++
	changed := e.st.State != StateError || e.st.Error != reason
	if changed {
		e.st.State, e.st.Error, e.st.Since = StateError, reason, now
	}
	e.smu.Unlock()
	if changed {
		e.a.log.Warn("sensor failing", "sensor", e.cfg.Name, "bus", e.spec.Bus.String(), "err", reason)
	}
	e.publishStatus(ctx, "error: "+reason)
}

// publishStatus publishes the retained status topic when it changes.
func (e *entry) publishStatus(ctx context.Context, s string) {
	e.smu.Lock()
	if e.status == s {
		e.smu.Unlock()
		return
	}
	e.status = s
	e.smu.Unlock()
	e.send(ctx, msg.Message{Topic: e.cfg.Topic + "/status", Payload: []byte(s), QoS: e.cfg.QoS, Retain: true})
}

func (e *entry) publishReading(ctx context.Context, now time.Time, vals []sensor.Value) {
	e.send(ctx, msg.Message{Topic: e.cfg.Topic, Payload: AppendPayload(nil, now, vals), QoS: e.cfg.QoS, Retain: e.cfg.RetainLast()})
	if e.cfg.PlainTopics {
		for _, v := range vals {
			e.send(ctx, msg.Message{Topic: e.cfg.Topic + "/" + v.Quantity,
				Payload: appendNumber(nil, v.Value), QoS: e.cfg.QoS, Retain: e.cfg.RetainLast()})
		}
	}
	e.smu.Lock()
	e.st.LastPublish = now
	e.smu.Unlock()
}

func (e *entry) send(ctx context.Context, m msg.Message) {
	err := e.a.pub.Publish(ctx, m)
	e.smu.Lock()
	if err != nil {
		e.st.PublishErrors++
	} else {
		e.st.Publishes++
	}
	e.smu.Unlock()
	if err != nil && ctx.Err() == nil {
		e.a.log.Warn("publish failed", "sensor", e.cfg.Name, "topic", m.Topic, "err", err)
	}
}

// average returns vals replaced by the mean of the last n readings of each
// quantity (n <= 1: vals unchanged).
func (p *pubState) average(vals []sensor.Value, n int) []sensor.Value {
	if n <= 1 {
		return vals
	}
	if p.window == nil {
		p.window = map[string][]float64{}
	}
	out := make([]sensor.Value, len(vals))
	for i, v := range vals {
		w := append(p.window[v.Quantity], v.Value)
		if len(w) > n {
			w = w[len(w)-n:]
		}
		p.window[v.Quantity] = w
		sum := 0.0
		for _, x := range w {
			sum += x
		}
		out[i] = v
		out[i].Value = sum / float64(len(w))
	}
	return out
}

// due applies deadband and max_interval: publish the first reading, any
// reading where a quantity moved by at least its deadband (a quantity with no
// deadband of its own nor "*": any change), and any reading max_interval
// after the last publish. With no deadband map at all every reading is due.
// It records vals as published when due.
func (p *pubState) due(vals []sensor.Value, c SensorConfig, now time.Time) bool {
	due := p.last == nil || len(c.Deadband) == 0
	if !due && c.MaxInterval > 0 && now.Sub(p.lastPub) >= c.MaxInterval {
		due = true
	}
	if !due {
		for _, v := range vals {
			db, ok := c.Deadband[v.Quantity]
			if !ok {
				db = c.Deadband["*"]
			}
			old, seen := p.last[v.Quantity]
			// No deadband for this quantity: publish when it changes at all.
			if !seen || (db == 0 && v.Value != old) || (db > 0 && math.Abs(v.Value-old) >= db) {
				due = true
				break
			}
		}
	}
	if due {
		if p.last == nil {
			p.last = map[string]float64{}
		}
		for _, v := range vals {
			p.last[v.Quantity] = v.Value
		}
		p.lastPub = now
	}
	return due
}

// AppendPayload appends the JSON payload of a reading to dst:
//
//	{"time":"2026-11-28T13:05:00.000Z","temperature":{"value":21.5,"unit":"°C"},"state":{"value":1}}
//
// time is RFC 3339 UTC with milliseconds; quantities follow in the driver's
// order; unit is omitted for dimensionless values (states, counts of things).
// Values are rounded to 4 decimal places.
func AppendPayload(dst []byte, t time.Time, vals []sensor.Value) []byte {
	dst = append(dst, `{"time":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, '"')
	for _, v := range vals {
		dst = append(dst, ',')
		dst = strconv.AppendQuote(dst, v.Quantity)
		dst = append(dst, `:{"value":`...)
		dst = appendNumber(dst, v.Value)
		if v.Unit != "" {
			dst = append(dst, `,"unit":`...)
			dst = strconv.AppendQuote(dst, v.Unit)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendNumber(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(dst, "null"...)
	}
	r := math.Round(v*1e4) / 1e4
	if r == 0 {
		r = 0 // no -0
	}
	return strconv.AppendFloat(dst, r, 'f', -1, 64)
}
