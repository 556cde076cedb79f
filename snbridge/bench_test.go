package snbridge

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// benchClients connects n clients, each with a registered topic
// bench/<i>, and an in-process subscriber counting what arrives.
func benchClients(b *testing.B, n int) (*env, []*sntest.Client, []uint16, *atomic.Int64, *atomic.Int64) {
	e := start(b, nil)
	var got, last atomic.Int64
	cancel, err := e.b.Subscribe("bench/#", 1, func(msg.Message) { got.Add(1); last.Store(time.Now().UnixNano()) })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cancel)
	cs := make([]*sntest.Client, n)
	ids := make([]uint16, n)
	for i := range cs {
		cs[i] = e.connect(b, fmt.Sprintf("bench%03d", i), sntest.ConnectOptions{CleanSession: true}, sntest.Options{Timeout: 10 * time.Second})
		id, rc, err := cs[i].Register(fmt.Sprintf("bench/%d", i))
		if err != nil || rc != snpacket.Accepted {
			b.Fatal(rc, err)
		}
		ids[i] = id
	}
	return e, cs, ids, &got, &last
}

func dropsTotal(s Stats) uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}

// BenchmarkQoS1_100Clients: 100 clients, each publishing QoS 1 and waiting
// for its PUBACK before the next (one in flight per client, as MQTT-SN
// clients do), through the gateway to one subscriber.
func BenchmarkQoS1_100Clients(b *testing.B) { benchQoS1(b, 0) }

// BenchmarkQoS1_100Clients_Durable2ms: the same with every QoS 1 publish
// taking 2ms in the broker, as when it waits for the store-and-forward
// queue's fsync: throughput then depends on how many publishes wait at once
// (mqttsn.workers).
func BenchmarkQoS1_100Clients_Durable2ms(b *testing.B) { benchQoS1(b, 2*time.Millisecond) }

func benchQoS1(b *testing.B, latency time.Duration) {
	const n = 100
	e, cs, ids, got, _ := benchClients(b, n)
	e.b.SetLatency(latency)
	payload := make([]byte, 32)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i, c := range cs {
		per := b.N / n
		if i < b.N%n {
			per++
		}
		wg.Go(func() {
			for range per {
				if rc, err := c.Publish(snpacket.TopicNormal, ids[i], 1, false, payload); err != nil || rc != snpacket.Accepted {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d QoS 1 publishes failed", f)
	}
	if g := got.Load(); g != int64(b.N) {
		b.Fatalf("subscriber got %d of %d acknowledged QoS 1 messages", g, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(dropsTotal(e.g.Stats())), "gw_drops")
}

// BenchmarkQoS0_100Clients_10k: 100 clients offer QoS 0 at 10,000 msg/s in
// total (paced every millisecond). Reports what reached the subscriber and
// the gateway's own drops, which must be zero.
func BenchmarkQoS0_100Clients_10k(b *testing.B) {
	benchQoS0(b, 10000)
}

// BenchmarkQoS0_100Clients_Max: as fast as the clients can send.
func BenchmarkQoS0_100Clients_Max(b *testing.B) {
	benchQoS0(b, 0)
}

func benchQoS0(b *testing.B, rate int) {
	const n = 100
	e, cs, ids, got, last := benchClients(b, n)
	wires := make([][]byte, n)
	for i := range cs {
		wires[i], _ = snpacket.Encode(&snpacket.Publish{TopicID: ids[i], Data: make([]byte, 32)})
	}
	b.ResetTimer()
	start := time.Now()
	sent := 0
	if rate == 0 {
		for sent < b.N {
			_ = cs[sent%n].SendRaw(wires[sent%n])
			sent++
		}
	} else {
		tick := time.NewTicker(time.Millisecond)
		perTick := rate / 1000
		for sent < b.N {
			<-tick.C
			// Catch up to the schedule if a tick was late.
			due := min(b.N, int(time.Since(start).Seconds()*float64(rate))+perTick)
			for ; sent < due; sent++ {
				_ = cs[sent%n].SendRaw(wires[sent%n])
			}
		}
		tick.Stop()
	}
	sendTime := time.Since(start)
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	el := time.Unix(0, last.Load()).Sub(start)
	st := e.g.Stats()
	inGW := st.MessagesIn - uint64(2*n) // minus the CONNECTs and REGISTERs
	b.ReportMetric(float64(b.N)/sendTime.Seconds(), "offered/s")
	b.ReportMetric(float64(got.Load())/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(int64(b.N)-got.Load()), "lost")
	b.ReportMetric(float64(dropsTotal(st)), "gw_drops")
	// What never reached the gateway's read loop: socket buffer overflow.
	b.ReportMetric(float64(int64(b.N)-int64(inGW)-int64(dropsTotal(st))), "kernel_drops")
	if testing.Verbose() && dropsTotal(st) > 0 {
		b.Logf("gateway drops by reason: %v", st.Drops)
	}
	if rate > 0 && dropsTotal(st) > 0 {
		b.Errorf("gateway dropped %d QoS 0 messages at %d msg/s offered: %v", dropsTotal(st), rate, st.Drops)
	}
}
