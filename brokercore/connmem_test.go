package brokercore

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// BenchmarkIdleConnections measures what an idle connection costs the
// broker (issue 9: 2,000 connections): heap and goroutine stack per
// connection after CONNECT and one SUBSCRIBE, with a GC before each
// reading. The clients are bare sockets in the same process (no goroutine,
// no buffer), so the figures are the broker's and the sockets'.
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x ./brokercore
//
// OUTPOST_CONNMEM_PROFILE=FILE writes the heap profile with the
// connections open (add -memprofilerate 1 for every allocation).
func BenchmarkIdleConnections(b *testing.B) {
	const n = 2000
	br := testBroker(b, Config{}, Options{})
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, n)
		var buf [64]byte
		for i := range n {
			nc, err := net.Dial("tcp", addr(br))
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, nc)
			var out []byte
			out, _ = packet.Append(out, &packet.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanStart: true, ClientID: fmt.Sprintf("idle-%d", i), KeepAlive: 60}, 4)
			out, _ = packet.Append(out, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("bench/conn/%d", i), QoS: 1}}}, 4)
			if _, err := nc.Write(out); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(nc, buf[:4+5]); err != nil { // CONNACK, SUBACK
				b.Fatal(err)
			}
		}
		for br.Parked() < n && !br.opts.NoIdlePark && runtime.GOOS == "linux" {
			runtime.Gosched() // the last readers are parking
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heap-B/conn")
		b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/n, "stack-B/conn")
		b.ReportMetric(float64(int64(after.Sys)-int64(before.Sys))/n, "sys-B/conn")
		if f := os.Getenv("OUTPOST_CONNMEM_PROFILE"); f != "" {
			// The heap with the connections open (-memprofile is written
			// after they have closed).
			fh, err := os.Create(f)
			if err != nil {
				b.Fatal(err)
			}
			pprof.Lookup("heap").WriteTo(fh, 0)
			fh.Close()
		}
		for _, nc := range conns {
			nc.Close()
		}
	}
}
