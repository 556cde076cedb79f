package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Run runs one scenario against the broker at cfg.Addr. The returned
// Result is complete even when err is not nil (Result.Error says why the
// run ended early); loss is not an error, it is a figure.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &runner{cfg: cfg, epoch: time.Now(), readErr: make(chan error, 1)}
	r.res = &Result{
		Case: cfg.Case, Scenario: cfg.Scenario, Broker: cfg.Broker, Protocol: cfg.Protocol, QoS: cfg.QoS,
		Window: cfg.Window, Publishers: cfg.Publishers, Subscribers: cfg.Subscribers, PerPub: cfg.Messages,
		PayloadSize: cfg.PayloadSize, Rate: cfg.Rate,
	}
	// Keep-alive pings, as a real client sends them: without them a run
	// longer than 1.5 keep alives would be cut off by the broker.
	pingCtx, stopPings := context.WithCancel(ctx)
	var pinger sync.WaitGroup
	if cfg.KeepAlive > 0 {
		pinger.Go(func() { r.ping(pingCtx) })
	}
	var err error
	switch cfg.Scenario {
	case FanIn, FanOut, MQTTSN, Durable:
		err = r.pubsub(ctx)
	case Connections:
		err = r.connections(ctx)
	case Retained:
		err = r.retained(ctx)
	case Backlog:
		err = r.backlog(ctx)
	}
	stopPings()
	pinger.Wait()
	r.closeAll()
	if cfg.BrokerPID > 0 {
		if hwm, rss, merr := procMem(cfg.BrokerPID); merr == nil {
			// The kernel keeps RSS in per-CPU counters and reads them
			// approximately, and VmHWM is only raised at certain events,
			// so an RSS sampled mid-run can exceed the VmHWM read at the
			// end by a few hundred KiB. The peak is at least any RSS seen.
			r.res.BrokerPeakKiB, r.res.BrokerRSSKiB = max(hwm, rss, r.res.BrokerHeldKiB, r.res.BrokerStartKiB), rss
		}
	}
	if err != nil {
		r.res.Error = err.Error()
	}
	return r.res, err
}

// runner holds one run's connections and the first read error.
type runner struct {
	cfg     Config
	epoch   time.Time
	res     *Result
	mu      sync.Mutex
	conns   []*mqttConn
	sns     []*snConn
	readers sync.WaitGroup
	readErr chan error
}

// ping sends PINGREQ on every MQTT connection each half keep alive until
// ctx is done. (Paho pings only a connection that sent nothing for a
// keep alive; pinging them all more often costs a bench run nothing
// measurable, and runs are mostly shorter than the first ping.)
func (r *runner) ping(ctx context.Context) {
	t := time.NewTicker(r.cfg.KeepAlive / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		conns := slices.Clone(r.conns)
		r.mu.Unlock()
		for _, c := range conns {
			c.ping()
		}
	}
}

func (r *runner) version() byte {
	if r.cfg.Protocol == 5 {
		return packet.V5
	}
	return packet.V311
}

func (r *runner) dial(ctx context.Context, id string, clean bool, window int) (*mqttConn, bool, error) {
	c, present, err := dialMQTT(ctx, dialOptions{Addr: r.cfg.Addr, ClientID: id, Version: r.version(),
		Clean: clean, Window: window, Epoch: r.epoch, KeepAlive: r.cfg.KeepAlive})
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	return c, present, nil
}

// serve runs c's read loop in a goroutine the runner owns.
func (r *runner) serve(read func() error) {
	r.readers.Go(func() {
		if err := read(); err != nil {
			select {
			case r.readErr <- err:
			default:
			}
		}
	})
}

// closeAll disconnects every client and waits for the read loops.
func (r *runner) closeAll() {
	r.mu.Lock()
	conns, sns := r.conns, r.sns
	r.conns, r.sns = nil, nil
	r.mu.Unlock()
	for _, c := range conns {
		c.disconnect()
	}
	for _, c := range sns {
		c.disconnect()
	}
	r.readers.Wait()
}

// await polls until done reports true. It gives up, without an error, once
// progress (a counter of deliveries and acks) has not moved for cfg.Idle,
// and returns the time of the last progress (or of done).
func (r *runner) await(ctx context.Context, done func() bool, progress func() uint64) (time.Time, error) {
	last, lastAt := progress(), time.Now()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		if done() {
			return time.Now(), nil
		}
		select {
		case err := <-r.readErr:
			return time.Now(), err
		case <-ctx.Done():
			return time.Now(), context.Cause(ctx)
		case <-t.C:
		}
		if p := progress(); p != last {
			last, lastAt = p, time.Now()
		} else if time.Since(lastAt) > r.cfg.Idle {
			return lastAt, nil
		}
	}
}

// pacer spaces one publisher's messages when a rate is set.
type pacer struct {
	start    time.Time
	interval time.Duration
}

func newPacer(rate float64, publishers int) pacer {
	p := pacer{start: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) * float64(publishers) / rate)
	}
	return p
}

// due is when message i should be sent.
func (p pacer) due(i int) time.Time { return p.start.Add(time.Duration(i) * p.interval) }

// wait returns once message i is due.
func (p pacer) wait(i int) {
	if p.interval == 0 {
		return
	}
	if d := time.Until(p.due(i)); d > 0 {
		time.Sleep(d)
	}
}

// pubsub runs fan-in, fan-out, mqttsn and durable: publishers each send
// Messages to their own topic, subscribers take them all.
func (r *runner) pubsub(ctx context.Context) error {
	cfg := r.cfg
	prefix, filter := "bench/fanin/", "bench/fanin/#"
	switch cfg.Scenario {
	case FanOut:
		prefix, filter = "bench/fanout", "bench/fanout"
	case MQTTSN:
		prefix, filter = "bench/sn/", "bench/sn/#"
	case Durable:
		prefix = "bench/fwd/"
	}
	topicOf := func(p int) string {
		if cfg.Scenario == FanOut {
			return prefix
		}
		return prefix + strconv.Itoa(p)
	}
	subs := make([]*mqttConn, cfg.Subscribers)
	for i := range subs {
		c, _, err := r.dial(ctx, fmt.Sprintf("bench-sub-%d", i), true, 0)
		if err != nil {
			return err
		}
		if err := c.subscribe([]string{filter}, byte(cfg.QoS)); err != nil {
			return err
		}
		subs[i] = c
		r.serve(c.readLoop)
	}
	var pubs []*mqttConn
	var sns []*snConn
	for p := range cfg.Publishers {
		id := fmt.Sprintf("bench-pub-%d", p)
		if cfg.Scenario == MQTTSN {
			c, err := dialSN(cfg.SNAddr, id, topicOf(p), cfg.Window, r.epoch)
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.sns = append(r.sns, c)
			r.mu.Unlock()
			sns = append(sns, c)
			r.serve(c.readLoop)
			continue
		}
		c, _, err := r.dial(ctx, id, true, cfg.Window)
		if err != nil {
			return err
		}
		pubs = append(pubs, c)
	}

	want := uint64(cfg.Publishers) * uint64(cfg.Messages)
	m := startMeter(cfg.BrokerPID)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pwg sync.WaitGroup
	var pubErr atomic.Pointer[error]
	for p := range cfg.Publishers {
		pwg.Go(func() {
			payload := newPayload(cfg.PayloadSize)
			pace := newPacer(cfg.Rate, cfg.Publishers)
			var err error
			if sns != nil {
				c := sns[p]
				for i := 0; i < cfg.Messages && err == nil; i++ {
					pace.wait(i)
					err = c.publish(pctx, int8(cfg.QoS), payload, stamp{pub: uint32(p), seq: uint64(i)})
				}
			} else {
				topic := topicOf(p)
				err = pubs[p].pump(pctx, cfg.Messages, byte(cfg.QoS), false, payload,
					func(i int) (string, stamp) { return topic, stamp{pub: uint32(p), seq: uint64(i)} }, pace, cfg.Idle)
			}
			if err != nil && pctx.Err() == nil {
				pubErr.CompareAndSwap(nil, &err)
			}
		})
	}
	var pubsDone atomic.Bool
	go func() { pwg.Wait(); pubsDone.Store(true) }()
	delivered := func() (n uint64) {
		for _, s := range subs {
			n += s.got.Load()
		}
		return n
	}
	acked := func() (n uint64) {
		for _, c := range pubs {
			n += c.acked.Load()
		}
		for _, c := range sns {
			n += c.acked.Load() + c.rejected.Load()
		}
		return n
	}
	inflight := func() (n int) {
		for _, c := range pubs {
			n += c.inflight()
		}
		for _, c := range sns {
			n += c.inflight()
		}
		return n
	}
	done := func() bool {
		if p := pubErr.Load(); p != nil {
			return true
		}
		return pubsDone.Load() && inflight() == 0 && delivered() == want*uint64(len(subs))
	}
	end, err := r.await(ctx, done, func() uint64 { return delivered() + acked() })
	cancel()
	pwg.Wait()
	ph, merr := m.stop()
	ph.Wall = end.Sub(m.t0)
	if p := pubErr.Load(); p != nil && err == nil {
		err = *p
	}

	res := r.res
	var lat, ackLat hist
	wantPer := make(map[uint32]uint64, cfg.Publishers)
	for p := range cfg.Publishers {
		wantPer[uint32(p)] = uint64(cfg.Messages)
	}
	for _, s := range subs {
		res.tally.account(s.chk, wantPer)
		lat.merge(&s.chk.lat)
	}
	for _, c := range pubs {
		ackLat.merge(&c.ackLat)
	}
	for _, c := range sns {
		ackLat.merge(&c.ackLat)
		res.Rejected += c.rejected.Load()
	}
	res.Unit = "msg"
	units := res.Received
	switch cfg.Scenario {
	case FanOut:
		res.Unit = "delivery"
	case Durable:
		res.Unit = "ack"
		units = acked()
		res.Expected, res.Received, res.Lost = want, units, want-min(units, want)
	}
	res.fill(ph, units)
	res.latency(&lat)
	res.acks(&ackLat)
	if cfg.Scenario == Durable && err == nil {
		q := r.queueDepth(ctx, int64(want))
		res.Queued = &q
		if q < 0 {
			res.Notes = "no $SYS/outpost/uplink/queue/depth from the broker: no store-and-forward tap ran, so nothing was queued"
		} else if q < int64(want) {
			res.Notes = fmt.Sprintf("uplink queue holds %d of %d acknowledged messages", q, want)
		}
	}
	if err == nil {
		err = merr
	}
	return err
}

// queueDepth reads the hub's retained $SYS/outpost/uplink/queue/depth
// until it reaches want or cfg.SysWait passes; -1 if it never appeared.
func (r *runner) queueDepth(ctx context.Context, want int64) int64 {
	c, _, err := r.dial(ctx, "bench-sys", true, 0)
	if err != nil {
		return -1
	}
	var depth atomic.Int64
	depth.Store(-1)
	c.onPublish = func(topic string, payload []byte) {
		if v, err := strconv.ParseInt(string(payload), 10, 64); err == nil {
			depth.Store(v)
		}
	}
	if err := c.subscribe([]string{"$SYS/outpost/uplink/queue/depth"}, 0); err != nil {
		return -1
	}
	r.serve(c.readLoop)
	deadline := time.Now().Add(r.cfg.SysWait)
	for time.Now().Before(deadline) && depth.Load() < want && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	return depth.Load()
}
