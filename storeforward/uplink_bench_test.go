package storeforward

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// BenchmarkUplinkReplay measures how fast a backlog of b.N queued
// messages (100-byte payloads, one topic) drains to a real mosquitto over
// loopback: the queue is filled first (not timed), then the forwarder
// connects and the clock runs until the queue is empty. Run as
//
//	go test ./storeforward -run '^$' -bench UplinkReplay -benchtime 200000x
func BenchmarkUplinkReplay(b *testing.B) {
	for _, qos := range []byte{1, 2} {
		for _, v := range []int{5, 4} {
			b.Run(fmt.Sprintf("qos%d/v%d", qos, v), func(b *testing.B) { benchReplay(b, qos, v) })
		}
	}
}

func benchReplay(b *testing.B, qos byte, version int) {
	cl := startCloud(b)
	db := openDB(b, b.TempDir())
	defer db.Close()
	cfg := baseConfig(cl.URL(), version)
	cfg.Enabled = false
	f, err := New(cfg, Deps{DB: db, SysInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	topic := "sensors/t"
	if qos == 2 {
		topic = "alarm/x"
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4096)
	now := time.Now()
	for range b.N {
		slots <- struct{}{}
		wg.Add(1)
		f.Tap().Append(msg.Message{Topic: topic, Payload: payload, QoS: qos, Received: now}, func(err error) {
			if err != nil {
				b.Error(err)
			}
			<-slots
			wg.Done()
		})
	}
	wg.Wait()
	cfg.Enabled = true
	b.ResetTimer()
	start := time.Now()
	r := startForwarder(b, cfg, Deps{DB: db})
	for {
		st := r.f.Status()
		if st.Acked >= int64(b.N) && st.Queue.Depth == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond) // poll; the drain takes seconds
	}
	el := time.Since(start)
	b.StopTimer()
	r.stop()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}
