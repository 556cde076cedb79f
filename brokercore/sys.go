package brokercore

import (
	"math"
	"runtime"
	"strconv"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// $SYS topics, with Mosquitto's names (mosquitto.conf(5), "$SYS topics"),
// published retained every sys_interval. A subscription to "#" does not
// receive them [MQTT-4.7.2-1].

// loadAvg is one exponentially-weighted moving average of a per-minute
// rate, as Mosquitto's load/... topics.
type loadAvg struct {
	window time.Duration
	value  float64
	init   bool
}

func (l *loadAvg) update(ratePerMin float64, dt time.Duration) {
	if !l.init {
		l.value, l.init = ratePerMin, true
		return
	}
	k := math.Exp(-dt.Seconds() / l.window.Seconds())
	l.value = l.value*k + ratePerMin*(1-k)
}

type sysLoad struct {
	name string
	get  func(*Stats) int64
	avg  [3]loadAvg
	last int64
}

func (b *Broker) startSys() {
	if b.cfg.SysInterval < 0 {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		loads := []*sysLoad{
			{name: "messages/received", get: func(s *Stats) int64 { return s.MessagesReceived.Load() }},
			{name: "messages/sent", get: func(s *Stats) int64 { return s.MessagesSent.Load() }},
			{name: "publish/received", get: func(s *Stats) int64 { return s.MessagesReceived.Load() }},
			{name: "publish/sent", get: func(s *Stats) int64 { return s.MessagesSent.Load() }},
			{name: "publish/dropped", get: func(s *Stats) int64 { return s.dropped() }},
			{name: "bytes/received", get: func(s *Stats) int64 { return s.BytesReceived.Load() }},
			{name: "bytes/sent", get: func(s *Stats) int64 { return s.BytesSent.Load() }},
			{name: "connections", get: func(s *Stats) int64 { return s.ClientsTotal.Load() }},
			{name: "sockets", get: func(s *Stats) int64 { return s.ClientsTotal.Load() }},
		}
		for _, l := range loads {
			l.avg = [3]loadAvg{{window: time.Minute}, {window: 5 * time.Minute}, {window: 15 * time.Minute}}
		}
		t := time.NewTicker(b.cfg.SysInterval)
		defer t.Stop()
		last := b.now()
		b.publishSys(loads, 0)
		for {
			select {
			case <-b.ctx.Done():
				return
			case <-t.C:
				now := b.now()
				b.publishSys(loads, now.Sub(last))
				last = now
			}
		}
	}()
}

func (st *Stats) dropped() int64 {
	d := &st.Dropped
	return d.QueueFull.Load() + d.SlowClient.Load() + d.Expired.Load() + d.TooLarge.Load() + d.NotAuthorized.Load() + d.TapFailed.Load()
}

// publishSys publishes every $SYS topic once; dt is the time since the
// last round (0 the first time).
func (b *Broker) publishSys(loads []*sysLoad, dt time.Duration) {
	st := b.Stats()
	i := strconv.FormatInt
	pub := func(t, v string) {
		m := msg.Message{Topic: "$SYS/broker/" + t, Payload: []byte(v), Retain: true, Received: b.now()}
		b.route(&m, nil, nil, nil)
	}
	version := b.opts.Version
	if version == "" {
		version = "devel"
	}
	pub("version", "outpost "+version)
	pub("uptime", i(int64(b.now().Sub(b.start)/time.Second), 10)+" seconds")
	pub("clients/connected", i(st.ClientsConnected.Load(), 10))
	pub("clients/active", i(st.ClientsConnected.Load(), 10))
	pub("clients/total", i(st.ClientsConnected.Load()+st.ClientsDisconnected.Load(), 10))
	pub("clients/disconnected", i(st.ClientsDisconnected.Load(), 10))
	pub("clients/inactive", i(st.ClientsDisconnected.Load(), 10))
	pub("clients/maximum", i(st.ClientsMaximum.Load(), 10))
	pub("messages/received", i(st.MessagesReceived.Load(), 10))
	pub("messages/sent", i(st.MessagesSent.Load(), 10))
	pub("messages/stored", i(st.Queued.Load()+st.Retained.Load(), 10))
	pub("store/messages/count", i(st.Queued.Load()+st.Retained.Load(), 10))
	pub("bytes/received", i(st.BytesReceived.Load(), 10))
	pub("bytes/sent", i(st.BytesSent.Load(), 10))
	pub("subscriptions/count", i(st.Subscriptions.Load(), 10))
	pub("retained messages/count", i(st.Retained.Load(), 10))
	pub("publish/messages/received", i(st.MessagesReceived.Load(), 10))
	pub("publish/messages/sent", i(st.MessagesSent.Load(), 10))
	pub("publish/messages/dropped", i(st.dropped(), 10))
	pub("publish/bytes/received", i(st.BytesReceived.Load(), 10))
	pub("publish/bytes/sent", i(st.BytesSent.Load(), 10))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pub("heap/current", strconv.FormatUint(ms.HeapAlloc, 10))
	pub("heap/maximum", strconv.FormatUint(ms.HeapSys, 10))
	for _, l := range loads {
		v := l.get(st)
		if dt > 0 {
			rate := float64(v-l.last) / dt.Minutes()
			for k := range l.avg {
				l.avg[k].update(rate, dt)
			}
		}
		l.last = v
		for k, suffix := range []string{"1min", "5min", "15min"} {
			pub("load/"+l.name+"/"+suffix, strconv.FormatFloat(l.avg[k].value, 'f', 2, 64))
		}
	}
}
