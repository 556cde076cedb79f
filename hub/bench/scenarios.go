package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// connections opens Messages connections, each subscribing to its own
// topic (the measured phase: broker CPU per connection and its memory
// with them all open), then checks every one is live with one QoS 1
// message each.
func (r *runner) connections(ctx context.Context) error {
	cfg := r.cfg
	n := cfg.Messages
	conns := make([]*mqttConn, n)
	if cfg.BrokerPID > 0 {
		if _, rss, err := procMem(cfg.BrokerPID); err == nil {
			r.res.BrokerStartKiB = rss
		}
	}
	m := startMeter(cfg.BrokerPID)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 8 { // dialers: enough to keep the broker busy, few enough not to overrun its backlog
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, _, err := r.dial(ctx, fmt.Sprintf("bench-conn-%d", i), true, 0)
				if err == nil {
					err = c.subscribe([]string{fmt.Sprintf("bench/conn/%d", i)}, byte(cfg.QoS))
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					next.Store(int64(n))
					return
				}
				conns[i] = c
				r.serve(c.readLoop)
			}
		})
	}
	wg.Wait()
	ph, merr := m.stop()
	select {
	case err := <-errs:
		return err
	default:
	}
	if merr != nil {
		return merr
	}
	res := r.res
	res.Unit = "conn"
	res.fill(ph, uint64(n))
	if cfg.BrokerPID > 0 {
		if _, rss, err := procMem(cfg.BrokerPID); err == nil {
			res.BrokerHeldKiB = rss
		}
	}

	// Liveness: one message to each connection's topic.
	pub, _, err := r.dial(ctx, "bench-conn-pub", true, cfg.Window)
	if err != nil {
		return err
	}
	err = pub.pump(ctx, n, byte(cfg.QoS), false, newPayload(cfg.PayloadSize),
		func(i int) (string, stamp) { return "bench/conn/" + strconv.Itoa(i), stamp{} }, pacer{}, cfg.Idle)
	if err != nil {
		return err
	}
	delivered := func() (t uint64) {
		for _, c := range conns {
			t += c.got.Load()
		}
		return t
	}
	_, err = r.await(ctx, func() bool { return delivered() == uint64(n) }, delivered)
	var lat hist
	for _, c := range conns {
		res.tally.account(c.chk, map[uint32]uint64{0: 1})
		lat.merge(&c.chk.lat)
	}
	res.latency(&lat)
	res.Notes = "cpu is for connecting and subscribing; loss and latency for one QoS message to each afterwards; peak RSS covers the whole run"
	return err
}

// retained stores Messages retained messages on distinct topics, then
// measures a new subscriber receiving them all (bench/retained/#).
func (r *runner) retained(ctx context.Context) error {
	cfg := r.cfg
	n := cfg.Messages
	pub, _, err := r.dial(ctx, "bench-retain-pub", true, cfg.Window)
	if err != nil {
		return err
	}
	err = pub.pump(ctx, n, byte(cfg.QoS), true, newPayload(cfg.PayloadSize),
		func(i int) (string, stamp) { return "bench/retained/" + strconv.Itoa(i), stamp{seq: uint64(i)} }, pacer{}, cfg.Idle)
	if err != nil {
		return fmt.Errorf("retained: storing the messages: %w", err)
	}

	m := startMeter(cfg.BrokerPID)
	sub, _, err := r.dial(ctx, "bench-retain-sub", true, 0)
	if err != nil {
		return err
	}
	t0 := r.epochNow()
	if err := sub.subscribe([]string{"bench/retained/#"}, byte(cfg.QoS)); err != nil {
		return err
	}
	r.serve(sub.readLoop)
	end, err := r.await(ctx, func() bool { return sub.got.Load() == uint64(n) }, sub.got.Load)
	ph, merr := m.stop()
	ph.Wall = end.Sub(m.t0)
	res := r.res
	res.tally.account(sub.chk, map[uint32]uint64{0: uint64(n)})
	// Retained messages of different topics have no defined order
	// ([MQTT-4.6.0-5] orders one topic), so a reorder is not a finding.
	res.Reorders = 0
	res.Unit = "msg"
	res.fill(ph, res.Received)
	res.LatP50us = 0
	res.Notes = fmt.Sprintf("all %d retained messages arrived %.0f ms after SUBSCRIBE; order across topics is not defined", res.Received, float64(r.epochNow()-t0)/1e6)
	if res.Received < uint64(n) {
		res.Notes = fmt.Sprintf("%d of %d retained messages arrived", res.Received, n)
	}
	if err == nil {
		err = merr
	}
	return err
}

func (r *runner) epochNow() int64 { return int64(time.Since(r.epoch)) }

// backlog queues Messages QoS 1/2 messages for an offline persistent
// session, then reconnects it and takes them all: broker CPU per message
// for both halves (queueing, which persists them, and the drain).
func (r *runner) backlog(ctx context.Context) error {
	cfg := r.cfg
	n := cfg.Messages
	const id = "bench-backlog-sub"
	// A clean start first: no session left from an earlier run.
	c, _, err := r.dial(ctx, id, true, 0)
	if err != nil {
		return err
	}
	c.disconnect()
	c, _, err = r.dial(ctx, id, false, 0)
	if err != nil {
		return err
	}
	if err := c.subscribe([]string{"bench/backlog"}, byte(cfg.QoS)); err != nil {
		return err
	}
	c.disconnect()

	m := startMeter(cfg.BrokerPID)
	pub, _, err := r.dial(ctx, "bench-backlog-pub", true, cfg.Window)
	if err != nil {
		return err
	}
	err = pub.pump(ctx, n, byte(cfg.QoS), false, newPayload(cfg.PayloadSize),
		func(i int) (string, stamp) { return "bench/backlog", stamp{seq: uint64(i)} }, newPacer(cfg.Rate, 1), cfg.Idle)
	if err != nil {
		return fmt.Errorf("backlog: queueing: %w", err)
	}
	queuedAt := r.epochNow()
	sub, present, err := r.dial(ctx, id, false, 0)
	if err != nil {
		return err
	}
	r.serve(sub.readLoop)
	end, err := r.await(ctx, func() bool { return sub.got.Load() == uint64(n) }, sub.got.Load)
	ph, merr := m.stop()
	ph.Wall = end.Sub(m.t0)
	res := r.res
	res.tally.account(sub.chk, map[uint32]uint64{0: uint64(n)})
	res.Unit = "msg"
	res.fill(ph, res.Received)
	res.latency(&sub.chk.lat)
	var ackLat hist
	ackLat.merge(&pub.ackLat)
	res.acks(&ackLat)
	res.Notes = fmt.Sprintf("queued in %.0f ms, drained in %.0f ms; latency includes the time offline", float64(queuedAt)/1e6-float64(m.t0.Sub(r.epoch).Nanoseconds())/1e6, float64(end.Sub(r.epoch).Nanoseconds()-queuedAt)/1e6)
	if !present {
		res.Notes += "; the broker reported no session present on reconnect"
	}
	if err == nil {
		err = merr
	}
	return err
}
