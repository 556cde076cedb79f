package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/brokertest"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

func payloadOf(pub uint32, seq uint64) []byte {
	b := newPayload(64)
	putStamp(b, stamp{pub: pub, seq: seq})
	return b
}

// TestCheckerCountsLossDupsAndOrder feeds a stream with a duplicate, a
// reordering, a gap, a stray publisher and a short payload.
func TestCheckerCountsLossDupsAndOrder(t *testing.T) {
	c := newChecker()
	for _, s := range []uint64{0, 1, 1, 3, 2, 5, 9} { // 4, 6, 7 lost; 1 twice; 2 after 3; 9 never sent
		c.observe(payloadOf(7, s), 0)
	}
	for s := range uint64(3) {
		c.observe(payloadOf(8, s), 0)
	}
	c.observe(payloadOf(99, 0), 0) // not expected
	c.observe([]byte("short"), 0)
	var tl tally
	tl.account(c, map[uint32]uint64{7: 8, 8: 3, 9: 2})
	want := tally{Expected: 13, Received: 5 + 3, Lost: 3 + 2, Dups: 1, Reorders: 1, Bad: 1, Extra: 2}
	if tl != want {
		t.Fatalf("tally = %+v\nwant    %+v", tl, want)
	}
}

func TestCheckerInOrderStreamIsClean(t *testing.T) {
	c := newChecker()
	for s := range uint64(1000) {
		c.observe(payloadOf(1, s), 0)
	}
	var tl tally
	tl.account(c, map[uint32]uint64{1: 1000})
	if tl != (tally{Expected: 1000, Received: 1000}) {
		t.Fatalf("tally = %+v", tl)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for v := int64(1); v <= 10000; v++ {
		h.record(v * 1000) // 1 µs .. 10 ms
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.9, 9 * time.Millisecond}, {0.99, 9900 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.07 || d > 0.07 {
			t.Errorf("quantile(%v) = %v, want %v ± 7%%", c.q, got, c.want)
		}
	}
	if h.quantile(1) != 10*time.Millisecond {
		t.Errorf("max = %v", h.quantile(1))
	}
	for i := range 200 {
		if lo, hi := bucketLow(i), bucketLow(i+1); hi <= lo || bucketOf(lo) != i || bucketOf(hi-1) != i {
			t.Fatalf("bucket %d: [%d, %d) maps to %d..%d", i, lo, hi, bucketOf(lo), bucketOf(hi-1))
		}
	}
}

// TestSubscriberDetectsBrokerFaults runs the tool's subscriber against a
// scripted broker that duplicates, reorders and drops deliveries.
func TestSubscriberDetectsBrokerFaults(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer nc.Close()
		r := newTestReader(nc)
		if _, err := r.read(); err != nil { // CONNECT
			served <- err
			return
		}
		write := func(p packet.Packet) {
			b, _ := packet.Append(nil, p, packet.V311)
			nc.Write(b)
		}
		write(&packet.ConnAck{})
		if _, err := r.read(); err != nil { // SUBSCRIBE
			served <- err
			return
		}
		write(&packet.SubAck{PacketID: 1, ReasonCodes: []byte{1}})
		for i, s := range []uint64{0, 2, 1, 2, 4} { // 3 lost, 2 twice, 1 late
			write(&packet.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: "bench/x", Payload: payloadOf(0, s)})
		}
		for range 5 { // the five PUBACKs
			p, err := r.read()
			if err != nil {
				served <- err
				return
			}
			if p.Type() != packet.PUBACK {
				served <- err
				return
			}
		}
		served <- nil
	}()
	c, _, err := dialMQTT(context.Background(), dialOptions{Addr: l.Addr().String(), ClientID: "s", Clean: true, Epoch: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.subscribe([]string{"bench/#"}, 1); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan error, 1)
	go func() { readDone <- c.readLoop() }()
	if err := <-served; err != nil {
		t.Fatalf("scripted broker: %v", err)
	}
	c.close()
	<-readDone
	var tl tally
	tl.account(c.chk, map[uint32]uint64{0: 6})
	want := tally{Expected: 6, Received: 4, Lost: 2, Dups: 1, Reorders: 1}
	if tl != want {
		t.Fatalf("tally = %+v, want %+v", tl, want)
	}
	if c.got.Load() != 4 {
		t.Errorf("got = %d, want 4 unique", c.got.Load())
	}
}

type testReader struct{ c *mqttConn }

func newTestReader(nc net.Conn) testReader {
	c := &mqttConn{}
	c.br = newBufReader(nc)
	return testReader{c}
}

func (r testReader) read() (packet.Packet, error) {
	b, err := r.c.next()
	if err != nil {
		return nil, err
	}
	p, _, err := packet.Decode(b, packet.V311)
	return p, err
}

// clean checks a run delivered everything exactly once and in order.
func clean(t *testing.T, res *Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Expected == 0 || res.Received != res.Expected || res.Lost != 0 || res.Dups != 0 || res.Reorders != 0 || res.Extra != 0 || res.Bad != 0 {
		t.Fatalf("%s: accounting %+v", res.Case, res.tally)
	}
	if res.ToolCPUms <= 0 || res.Units == 0 || res.WallSeconds <= 0 {
		t.Fatalf("%s: no measurement: %+v", res.Case, res)
	}
}

func quietBroker(t testing.TB, cfg brokercore.Config, opts brokercore.Options) *brokertest.Server {
	opts.Logger = slog.New(slog.DiscardHandler)
	return brokertest.NewServerConfig(t, cfg, opts)
}

func TestScenariosAgainstBroker(t *testing.T) {
	srv := quietBroker(t, brokercore.Config{}, brokercore.Options{})
	ctx := context.Background()
	for _, cfg := range []Config{
		{Scenario: FanIn, Publishers: 2, Messages: 300, QoS: 0},
		{Scenario: FanIn, Publishers: 2, Messages: 300, QoS: 1},
		{Scenario: FanIn, Publishers: 2, Messages: 300, QoS: 2, Window: 64},
		{Scenario: FanIn, Publishers: 2, Messages: 200, QoS: 1, Rate: 4000},
		{Scenario: FanIn, Publishers: 1, Messages: 100, QoS: 1, Protocol: 5},
		{Scenario: FanOut, Subscribers: 5, Messages: 100, QoS: 0},
		{Scenario: FanOut, Subscribers: 5, Messages: 100, QoS: 1},
		{Scenario: Connections, Messages: 50},
		{Scenario: Retained, Messages: 200},
		{Scenario: Backlog, Messages: 200},
		{Scenario: Backlog, Messages: 100, QoS: 2},
	} {
		cfg.Addr = srv.Addr
		cfg.Idle = 3 * time.Second
		res, err := Run(ctx, cfg)
		clean(t, res, err)
	}
}

// TestConnectionsMemoryFigures: the connections scenario keeps the RSS
// with every connection open apart from the whole run's peak (here the
// broker is this test process), and the peak it reports is never below
// an RSS it sampled (the kernel's VmHWM can lag an earlier VmRSS read:
// CI once saw held 67632 KiB against VmHWM 67520 KiB).
func TestConnectionsMemoryFigures(t *testing.T) {
	srv := quietBroker(t, brokercore.Config{}, brokercore.Options{})
	res, err := Run(context.Background(), Config{Scenario: Connections, Messages: 50, Addr: srv.Addr, BrokerPID: os.Getpid(), Idle: 3 * time.Second})
	clean(t, res, err)
	if res.BrokerHeldKiB <= 0 || res.BrokerPeakKiB < res.BrokerHeldKiB {
		t.Fatalf("held RSS %d KiB, peak %d KiB: want a held figure at or below the peak", res.BrokerHeldKiB, res.BrokerPeakKiB)
	}
	if res.BrokerStartKiB <= 0 || res.BrokerStartKiB > res.BrokerPeakKiB {
		t.Fatalf("RSS before the first connection %d KiB, peak %d KiB: want one at or below the peak", res.BrokerStartKiB, res.BrokerPeakKiB)
	}
	var out strings.Builder
	res.WriteText(&out)
	if !strings.Contains(out.String(), "MiB with every connection open") {
		t.Errorf("text output does not show the held figure:\n%s", out.String())
	}
}

func TestMQTTSNScenario(t *testing.T) {
	srv := quietBroker(t, brokercore.Config{}, brokercore.Options{})
	g, err := snbridge.New(snbridge.Config{Enabled: true, Listen: "127.0.0.1:0", AdvertiseInterval: -1}, srv.Broker, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for _, qos := range []int{1, 2} {
		res, err := Run(context.Background(), Config{Scenario: MQTTSN, Addr: srv.Addr, SNAddr: g.Addr().String(),
			Publishers: 2, Messages: 200, QoS: qos, Idle: 3 * time.Second})
		clean(t, res, err)
		if res.AckP50us <= 0 || res.Rejected != 0 {
			t.Fatalf("qos %d: acks %+v", qos, res)
		}
	}
}

// TestDurableScenario wires a store-and-forward tap with the uplink off
// (as the hub does) and checks the tool sees every acknowledged message
// in the queue depth the forwarder publishes.
func TestDurableScenario(t *testing.T) {
	db, err := queue.Open(t.TempDir(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := quietBroker(t, brokercore.Config{}, brokercore.Options{Store: db})
	f, err := storeforward.New(storeforward.Config{Forward: []storeforward.ForwardRule{{Filter: "bench/#", QoS: 1}}},
		storeforward.Deps{DB: db, Publisher: srv.Broker, SysInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Broker.AddTap(f.Tap())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	res, err := Run(context.Background(), Config{Scenario: Durable, Addr: srv.Addr, Publishers: 2, Messages: 100, Idle: 3 * time.Second, SysWait: 5 * time.Second})
	clean(t, res, err)
	if res.Queued == nil || *res.Queued != 200 {
		t.Fatalf("queued = %v, want 200 (notes %q)", res.Queued, res.Notes)
	}
}

// TestDurableWithoutTapSaysSo: against a plain broker the run says that
// nothing was queued instead of reporting a durable figure.
func TestDurableWithoutTapSaysSo(t *testing.T) {
	srv := quietBroker(t, brokercore.Config{}, brokercore.Options{})
	res, err := Run(context.Background(), Config{Scenario: Durable, Addr: srv.Addr, Publishers: 1, Messages: 20, SysWait: 200 * time.Millisecond})
	clean(t, res, err)
	if res.Queued == nil || *res.Queued != -1 || res.Notes == "" {
		t.Fatalf("queued = %v, notes %q", res.Queued, res.Notes)
	}
}

func TestTableMediansAndRatios(t *testing.T) {
	var lines strings.Builder
	for i, v := range []float64{9, 8, 30} { // median 9
		r := Result{Case: "fan-in qos0", Broker: "mosquitto", Round: i + 1, Unit: "msg", BrokerUSPer: v, ToolUSPer: 2, BrokerPeakKiB: 8704, tally: tally{Expected: 100, Received: 100}}
		r.WriteJSON(&lines)
	}
	lines.WriteString("not json\n")
	for i, v := range []float64{18, 20, 16} { // median 18
		r := Result{Case: "fan-in qos0", Broker: "outpost", Round: i + 1, Unit: "msg", BrokerUSPer: v, ToolUSPer: 3, LatP50us: 100, LatP99us: 900, tally: tally{Expected: 100, Received: 100}}
		if i == 1 {
			r.Lost, r.Received = 5, 95
		}
		r.WriteJSON(&lines)
	}
	res, err := ReadResults(strings.NewReader(lines.String()))
	if err != nil || len(res) != 6 {
		t.Fatalf("ReadResults: %d results, %v", len(res), err)
	}
	ref, err := ReadReference(strings.NewReader("# from the issue\ncase\tref mosquitto\tref mochi\nfan-in qos0\t8.9 µs\t11.9 µs\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	WriteTable(&out, res, ref)
	row := strings.Split(strings.TrimSpace(out.String()), "\n")[2]
	for _, want := range []string{"| fan-in qos0 | msg | 8.9 µs | 11.9 µs | 9.0 | 18.0 | 2.00 |", "**5 of 300**", "8.5", "100 / 900", "3.0 (17%)"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
}

// TestBrokerCPUExact: the meter reads a process's CPU from its threads'
// schedstat, to the nanosecond, and agrees with getrusage; a thread that
// exits between two samples makes it fall back to the ticks.
func TestBrokerCPUExact(t *testing.T) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d/schedstat", os.Getpid(), os.Getpid())); err != nil {
		t.Skipf("no schedstat on this kernel: %v", err)
	}
	pid := os.Getpid()
	s0, err := sampleCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	self0 := selfCPU()
	for selfCPU()-self0 < 30*time.Millisecond { // burn CPU on this thread
	}
	s1, err := sampleCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	used := selfCPU() - self0
	got := cpuBetween(s0, s1)
	if got < 30*time.Millisecond || got > used+50*time.Millisecond {
		t.Fatalf("read %v of CPU for this process; getrusage says at least 30ms and %v in all", got, used)
	}
	exact := true
	for tid := range s0.tasks {
		if _, ok := s1.tasks[tid]; !ok {
			exact = false // a thread of the test binary exited: the ticks are right
		}
	}
	if exact && got%clockTick == 0 {
		t.Errorf("read %v: a whole number of 10 ms ticks, not the exact schedstat figure", got)
	}

	a := cpuSample{ticks: 100 * clockTick, tasks: map[int]time.Duration{1: time.Second, 2: time.Second}}
	b := cpuSample{ticks: 130 * clockTick, tasks: map[int]time.Duration{1: time.Second + 7*time.Millisecond, 2: time.Second + time.Millisecond, 3: 2 * time.Millisecond}}
	if got := cpuBetween(a, b); got != 10*time.Millisecond {
		t.Errorf("all threads alive: got %v, want 10ms (7+1 from the old threads, 2 from the new one)", got)
	}
	delete(b.tasks, 2)
	if got := cpuBetween(a, b); got != 30*clockTick {
		t.Errorf("a thread exited: got %v, want the ticks' 300ms", got)
	}
	b.tasks = nil
	if got := cpuBetween(a, b); got != 30*clockTick {
		t.Errorf("no schedstat: got %v, want the ticks' 300ms", got)
	}
}

// TestKeepAlivePings: the clients ask for the keep alive configured and
// the runner's pings (every second here) keep them connected past it;
// without the pings the broker drops a silent client after 1.5 keep
// alives [MQTT-3.1.2-24], which shows the keep alive is on the wire.
func TestKeepAlivePings(t *testing.T) {
	srv := quietBroker(t, brokercore.Config{}, brokercore.Options{})
	for _, pinging := range []bool{true, false} {
		t.Run(fmt.Sprintf("pinging=%v", pinging), func(t *testing.T) {
			t.Parallel()
			cfg := Config{Scenario: Connections, Addr: srv.Addr, KeepAlive: 2 * time.Second}.Defaults()
			r := &runner{cfg: cfg, epoch: time.Now(), readErr: make(chan error, 1)}
			defer r.closeAll()
			c, _, err := r.dial(context.Background(), fmt.Sprintf("ka-%v", pinging), true, 0)
			if err != nil {
				t.Fatal(err)
			}
			r.serve(c.readLoop)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if pinging {
				go r.ping(ctx)
			}
			select {
			case err := <-r.readErr:
				if pinging {
					t.Fatalf("connection with pings dropped: %v", err)
				}
			case <-time.After(6 * time.Second): // three keep alives
				if !pinging {
					t.Fatal("silent connection with a 2s keep alive still open after 6s: keep alive not sent?")
				}
			}
		})
	}
}
