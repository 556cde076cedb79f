package storeforward

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// recorder is a fake broker: a msg.Publisher and msg.Sessions that record
// what is published, with the client id the broker would set.
type recorder struct {
	mu   sync.Mutex
	msgs []msg.Message
	ids  []string // session ids opened
}

func (r *recorder) Publish(_ context.Context, m msg.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.ClientID = "" // the broker's own Publish has no client id
	r.msgs = append(r.msgs, m.Clone())
	return nil
}

func (r *recorder) Open(_ context.Context, o msg.SessionOptions) (msg.Session, bool, error) {
	r.mu.Lock()
	r.ids = append(r.ids, o.ClientID)
	r.mu.Unlock()
	return &recSession{r: r, id: o.ClientID}, false, nil
}

func (r *recorder) find(topic string) []msg.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []msg.Message
	for _, m := range r.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// last returns the payload last published on topic.
func (r *recorder) last(topic string) (string, bool) {
	ms := r.find(topic)
	if len(ms) == 0 {
		return "", false
	}
	return string(ms[len(ms)-1].Payload), true
}

type recSession struct {
	r  *recorder
	id string
}

func (s *recSession) Publish(_ context.Context, m msg.Message) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	m.ClientID = s.id
	s.r.msgs = append(s.r.msgs, m.Clone())
	return nil
}
func (s *recSession) Subscribe(string, byte) (byte, error) { return 0, nil }
func (s *recSession) Unsubscribe(string) error             { return nil }
func (s *recSession) SetWill(*msg.Message)                 {}
func (s *recSession) Close(bool) error                     { return nil }

func poll(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond) // poll, bounded by the deadline
	}
}

// TestUplinkCloudLimits: a cloud like AWS IoT Core (Maximum QoS 1, no
// retain) and a Maximum Packet Size: QoS 2 goes at QoS 1, retain is
// dropped, both counted; a message over the packet size is dropped and
// counted; the will and birth still work.
func TestUplinkCloudLimits(t *testing.T) {
	cl := startCloud(t, "max_qos 1", "retain_available false", "max_packet_size 2000")
	k := newCounter(t, cl.URL(), "sites/#")
	db := openDB(t, t.TempDir())
	defer db.Close()
	r := startForwarder(t, baseConfig(cl.URL(), 5), Deps{DB: db, Site: "a"})
	poll(t, "connected", 10*time.Second, func() bool { return r.f.Status().State == StateConnected })

	m2, p2 := seqMessages("alarm/x", 2, 0, 20)
	for i := range m2 {
		m2[i].Retain = i%2 == 0
	}
	big := msg.Message{Topic: "sensors/big", Payload: make([]byte, 3000), QoS: 1}
	m1, p1 := seqMessages("sensors/t", 1, 0, 20)
	publish(t, r.f.Tap(), append(append(m2, big), m1...)...)
	want := map[string][]string{"sites/a/alarm/x": p2, "sites/a/sensors/t": p1}
	got := k.waitFor(t, want, 20*time.Second)
	if d := checkOrder(t, got, want); len(d) != 0 {
		t.Errorf("duplicates: %v", d)
	}
	for _, a := range got {
		if a.qos > 1 {
			t.Fatalf("%s arrived at QoS %d over a Maximum QoS 1 cloud", a.topic, a.qos)
		}
		if a.topic == "sites/a/sensors/big" {
			t.Fatalf("the oversized message reached the cloud")
		}
	}
	waitDrained(t, r.f, 10*time.Second)
	st := r.f.Status()
	// 20 QoS 2 messages downgraded (10 of them retained: counted once each).
	if st.Downgraded != 20 || st.Refused != 1 || st.Limits.MaxQoS != 1 || st.Limits.RetainAvailable {
		t.Errorf("downgraded %d (want 20), refused %d (want 1), limits %+v", st.Downgraded, st.Refused, st.Limits)
	}
	var birth bool
	for _, a := range got {
		if a.topic == "sites/a/status" && a.payload == "online" {
			birth = true
		}
	}
	if !birth {
		t.Errorf("no birth message on sites/a/status")
	}
}

// TestUplinkExpiry: a record whose message expiry passed while queued is
// dropped and counted; a live one carries the remaining expiry.
func TestUplinkExpiry(t *testing.T) {
	cl := startCloud(t)
	var mu sync.Mutex
	var expiry []uint32
	c, err := client.Dial(context.Background(), client.Config{URL: cl.URL(), ClientID: "exp", ProtocolVersion: packet.V5})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(context.Background(), []packet.Subscription{{Filter: "sites/#", QoS: 1}}, func(m *client.Message) {
		if m.Props.MessageExpiry != nil {
			mu.Lock()
			expiry = append(expiry, *m.Props.MessageExpiry)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, t.TempDir())
	defer db.Close()
	cfg := baseConfig(cl.URL(), 5)
	cfg.Enabled = false // queue first, then connect
	f, err := New(cfg, Deps{DB: db, Logger: testLogger(t), SysInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	publish(t, f.Tap(),
		msg.Message{Topic: "sensors/old", Payload: []byte("stale"), QoS: 1, MessageExpiry: time.Minute, Received: old},
		msg.Message{Topic: "sensors/live", Payload: []byte("live"), QoS: 1, MessageExpiry: 2 * time.Hour, Received: old},
	)
	r := startForwarder(t, baseConfig(cl.URL(), 5), Deps{DB: db})
	waitDrained(t, r.f, 10*time.Second)
	st := r.f.Status()
	if st.Expired != 1 || st.Acked != 1 {
		t.Fatalf("expired %d acked %d, want 1 and 1", st.Expired, st.Acked)
	}
	poll(t, "live message", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(expiry) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if expiry[0] > 3600 || expiry[0] < 3590 {
		t.Errorf("remaining expiry %d s, want about 3600", expiry[0])
	}
}

// TestUplinkDownlink: a cloud message matching a downlink rule is
// published locally under the rule's prefixes, through a session whose
// client id the tap refuses, so it never goes back up even though it
// matches a forward rule.
func TestUplinkDownlink(t *testing.T) {
	for _, v := range []int{5, 4} {
		t.Run(map[int]string{5: "v5", 4: "v311"}[v], func(t *testing.T) {
			cl := startCloud(t)
			db := openDB(t, t.TempDir())
			defer db.Close()
			cfg := baseConfig(cl.URL(), v)
			cfg.Forward = append(cfg.Forward, ForwardRule{Filter: "relay/#", QoS: 1, RemotePrefix: "sites/a/"})
			cfg.Downlink = []DownlinkRule{{Filter: "sites/a/cmd/#", QoS: 2, StripPrefix: "sites/a/cmd/", LocalPrefix: "relay/"}}
			rec := &recorder{}
			r := startForwarder(t, cfg, Deps{DB: db, Publisher: rec, Sessions: rec})
			poll(t, "connected", 10*time.Second, func() bool { return r.f.Status().State == StateConnected })

			c, err := client.Dial(context.Background(), client.Config{URL: cl.URL(), ClientID: "app", ProtocolVersion: packet.V5})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, q := range []byte{0, 1, 2} {
				if err := c.Publish(context.Background(), &client.Message{Topic: "sites/a/cmd/valve", Payload: []byte{'0' + q}, QoS: q}); err != nil {
					t.Fatal(err)
				}
			}
			poll(t, "downlinked messages", 10*time.Second, func() bool { return len(rec.find("relay/valve")) == 3 })
			for i, m := range rec.find("relay/valve") {
				if string(m.Payload) != string(rune('0'+i)) || m.QoS != byte(i) {
					t.Errorf("downlinked %d: %q QoS %d", i, m.Payload, m.QoS)
				}
				if m.ClientID != r.f.DownlinkClientID() {
					t.Errorf("downlinked with client id %q, want %q", m.ClientID, r.f.DownlinkClientID())
				}
				if r.f.Tap().Wants(&m) {
					t.Errorf("the tap wants a downlinked message: it would loop back to the cloud")
				}
				m.ClientID = "sensor-1"
				if !r.f.Tap().Wants(&m) {
					t.Errorf("the tap does not want a local relay/ message")
				}
			}
			if st := r.f.Status(); st.Downlinked != 3 || st.DownlinkErrors != 0 {
				t.Errorf("downlinked %d errors %d", st.Downlinked, st.DownlinkErrors)
			}
		})
	}
}

// TestUplinkSysStatus: the link state and counters go to
// $SYS/outpost/uplink/ through the Publisher.
func TestUplinkSysStatus(t *testing.T) {
	cl := startCloud(t)
	px := newProxy(t, cl.Addr())
	db := openDB(t, t.TempDir())
	defer db.Close()
	rec := &recorder{}
	r := startForwarder(t, baseConfig(px.url(), 5), Deps{DB: db, Publisher: rec, SysInterval: 20 * time.Millisecond})
	ms, _ := seqMessages("sensors/t", 1, 0, 10)
	publish(t, r.f.Tap(), ms...)
	waitDrained(t, r.f, 10*time.Second)
	poll(t, "$SYS counters", 5*time.Second, func() bool {
		s, _ := rec.last(sysPrefix + "messages/acked")
		st, _ := rec.last(sysPrefix + "state")
		return s == "10" && st == StateConnected
	})
	if d, ok := rec.last(sysPrefix + "queue/depth"); !ok || d != "0" {
		t.Errorf("queue/depth %q", d)
	}
	for _, m := range rec.find(sysPrefix + "state") {
		if !m.Retain {
			t.Fatalf("$SYS state not retained")
		}
	}
	px.setRefuse(true)
	px.cut()
	poll(t, "state disconnected", 5*time.Second, func() bool {
		s, _ := rec.last(sysPrefix + "state")
		e, _ := rec.last(sysPrefix + "last_error")
		return s != StateConnected && e != ""
	})
	px.setRefuse(false)
	poll(t, "reconnected", 10*time.Second, func() bool {
		s, _ := rec.last(sysPrefix + "reconnects")
		return s == "1"
	})
	if st := r.f.Status(); st.LastDisconnect.IsZero() || st.LastConnect.Before(st.LastDisconnect) || st.LastError == "" {
		t.Errorf("status after reconnect: %+v", st)
	}
}

// TestBackoff: exponential from min to max, each delay in [d/2, d].
func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		want *= time.Millisecond
		if n == 5 || n == 6 {
			want = 2 * time.Second
		}
		for range 50 {
			d := backoff(b, n)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v not in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := backoff(Backoff{}, 100); d > defaultReconnectMax || d < defaultReconnectMax/2 {
		t.Errorf("default max: %v", d)
	}
}

// TestUplinkBudget: with a daily budget, bulk telemetry stops at the
// budget less the reserve, alarms still use the reserve, and the next day
// the rest drains.
func TestUplinkBudget(t *testing.T) {
	cl := startCloud(t)
	k := newCounter(t, cl.URL(), "sites/#")
	db := openDB(t, t.TempDir())
	defer db.Close()
	var clock sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)
	nowFn := func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	cfg := baseConfig(cl.URL(), 5)
	cfg.Budget = Budget{DailyBytes: "3kB", Reserve: "1000"}
	r := startForwarder(t, cfg, Deps{DB: db, Now: nowFn})
	bulk, _ := seqMessages("sensors/t", 1, 0, 100)
	for i := range bulk {
		bulk[i].Received = now
	}
	publish(t, r.f.Tap(), bulk...)
	poll(t, "bulk paused at the budget less the reserve", 10*time.Second, func() bool {
		st := r.f.Status()
		return st.Paused != "" && st.InFlight == 0
	})
	st := r.f.Status()
	if st.BytesToday < 2000 || st.BytesToday > 2200 || st.Sent >= 100 {
		t.Fatalf("bulk: %d bytes, %d sent; want to stop just past 2000 bytes", st.BytesToday, st.Sent)
	}
	sentBulk := st.Sent
	alarms, pa := seqMessages("alarm/x", 2, 0, 5)
	for i := range alarms {
		alarms[i].Received = now
	}
	publish(t, r.f.Tap(), alarms...)
	k.waitFor(t, map[string][]string{"sites/a/alarm/x": pa}, 10*time.Second)
	if st := r.f.Status(); st.Sent != sentBulk+5 || st.BytesToday > 3000 {
		t.Fatalf("after alarms: sent %d (bulk %d), %d bytes", st.Sent, sentBulk, st.BytesToday)
	}
	clock.Lock()
	now = now.Add(24 * time.Hour)
	clock.Unlock()
	poll(t, "next day: draining again", 10*time.Second, func() bool { return r.f.Status().Sent > sentBulk+5 })
	// The new day has its own budget: about 16 more bulk messages.
	poll(t, "paused again", 10*time.Second, func() bool { st := r.f.Status(); return st.Paused != "" && st.InFlight == 0 })
	if st := r.f.Status(); st.Day != "2026-03-02" || st.Sent >= 100 {
		t.Fatalf("second day: %+v", st)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"50MB": 50e6, "1GiB": 1 << 30, "1.5kB": 1500, "1048576": 1 << 20, "3 KiB": 3072} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "5G", "-1", "1e400"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	if _, _, err := budgetLimits(Budget{DailyBytes: "1MB", Reserve: "2MB"}); err == nil {
		t.Errorf("a reserve above the budget was accepted")
	}
	if _, _, err := budgetLimits(Budget{DailyBytes: "-1"}); err == nil {
		t.Errorf("a negative budget was accepted")
	}
}

// TestDownlinkRules: prefixes are stripped and added, a topic no rule
// matches is ignored, and the cloud cannot write a local $ topic.
func TestDownlinkRules(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	cfg := Config{Downlink: []DownlinkRule{
		{Filter: "c/a/#", StripPrefix: "c/a/", LocalPrefix: "cmd/"},
		{Filter: "c/#", StripPrefix: "c/"},
	}}
	f, err := New(cfg, Deps{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	f.pub = rec
	for _, tp := range []string{"c/a/valve", "c/b/pump", "c/$SYS/broker/uptime", "other/x"} {
		f.downlink(&client.Message{Topic: tp, Payload: []byte("1"), QoS: 1})
	}
	rec.mu.Lock()
	var got []string
	for _, m := range rec.msgs {
		got = append(got, m.Topic)
	}
	rec.mu.Unlock()
	if len(got) != 2 || got[0] != "cmd/valve" || got[1] != "b/pump" {
		t.Fatalf("published locally: %q", got)
	}
	if st := f.Status(); st.Downlinked != 2 || st.DownlinkErrors != 1 {
		t.Fatalf("downlinked %d, errors %d", st.Downlinked, st.DownlinkErrors)
	}
}

// TestUplinkCloudRefuses: a cloud ACL refuses one topic (v5 reason code
// 0x87 in the ack): those messages are counted and dropped, and the rest of
// the queue still drains (no head-of-line block).
func TestUplinkCloudRefuses(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("topic readwrite sites/a/sensors/#\ntopic readwrite sites/a/status\ntopic read sites/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cl := startCloud(t, "acl_file "+acl)
	k := newCounter(t, cl.URL(), "sites/#")
	db := openDB(t, t.TempDir())
	defer db.Close()
	r := startForwarder(t, baseConfig(cl.URL(), 5), Deps{DB: db})
	m1, p1 := seqMessages("sensors/t", 1, 0, 50)
	// mosquitto 2.0.11 answers a refused PUBLISH with 0x87 and then, now
	// and then, resets the connection; the message is then resent on the
	// next connection and refused again.
	m2, _ := seqMessages("alarm/x", 1, 0, 5)
	publish(t, r.f.Tap(), append(m2, m1...)...)
	k.waitFor(t, map[string][]string{"sites/a/sensors/t": p1}, 10*time.Second)
	waitDrained(t, r.f, 10*time.Second) // the refused records are gone too
	for _, a := range k.arrivals() {
		if a.topic == "sites/a/alarm/x" {
			t.Fatalf("a refused message arrived: %+v", a)
		}
	}
	// A refusal that comes while Dial resends the session (before the
	// forwarder has the connection) is acted on but not counted.
	poll(t, "refusals counted", 5*time.Second, func() bool { return r.f.Status().Rejected >= 1 })
	if st := r.f.Status(); st.Rejected > 5 || st.Acked != 50 {
		t.Fatalf("rejected %d (want 1 to 5), acked %d (want 50)", st.Rejected, st.Acked)
	}
}

// TestUplinkBirthAndWill: "online" (retained) on connect, the will
// "offline" when the link drops, "online" again after the reconnect and an
// explicit "offline" on a clean stop (DISCONNECT discards the will).
func TestUplinkBirthAndWill(t *testing.T) {
	cl := startCloud(t)
	k := newCounter(t, cl.URL(), "sites/a/status")
	px := newProxy(t, cl.Addr())
	db := openDB(t, t.TempDir())
	defer db.Close()
	r := startForwarder(t, baseConfig(px.url(), 5), Deps{DB: db})
	statuses := func() []string {
		var s []string
		for _, a := range k.arrivals() {
			s = append(s, a.payload)
		}
		return s
	}
	poll(t, "online", 10*time.Second, func() bool { return len(statuses()) == 1 })
	px.cut()
	poll(t, "offline (will), online", 10*time.Second, func() bool { return len(statuses()) == 3 })
	r.stop()
	poll(t, "offline on stop", 10*time.Second, func() bool { return len(statuses()) == 4 })
	if got := fmt.Sprint(statuses()); got != "[online offline online offline]" {
		t.Fatalf("status messages %s", got)
	}
	// Retained: a new subscriber sees the last one.
	c, err := client.Dial(context.Background(), client.Config{URL: cl.URL(), ProtocolVersion: packet.V5})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan string, 1)
	if _, err := c.Subscribe(context.Background(), []packet.Subscription{{Filter: "sites/a/status"}}, func(m *client.Message) { got <- string(m.Payload) }); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "offline" {
			t.Fatalf("retained status %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no retained status")
	}
}

// TestSinceReceivedIgnoresClockStep: a message with an expiry is received
// while the box's clock is 40 days behind, queued 2 ms later, and sent
// after 10 minutes in the queue, by which time NTP has stepped the clock
// right. Its age is 10 minutes and 2 ms, not 40 days: it is not expired.
// A record without the tap's delay (queued by an older version) falls back
// to the receive time.
func TestSinceReceivedIgnoresClockStep(t *testing.T) {
	stale := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := stale.Add(40*24*time.Hour + 10*time.Minute)
	m := &msg.Message{Received: stale, MessageExpiry: time.Hour}
	// The queue reports its stamp on the system clock as it reads now:
	// 10 minutes before now, whatever the clock said then.
	appended := now.Add(-10 * time.Minute)
	if got, want := sinceReceived(m, 2*time.Millisecond, appended, now), 10*time.Minute+2*time.Millisecond; got != want {
		t.Errorf("age after a clock step = %v, want %v", got, want)
	}
	if got, want := sinceReceived(m, 0, appended, now), now.Sub(stale); got != want {
		t.Errorf("age without the tap's delay = %v, want %v (from Received)", got, want)
	}
	if got := sinceReceived(&msg.Message{}, 0, time.Time{}, now); got != 0 {
		t.Errorf("age of a message with no receive time = %v, want 0", got)
	}
}
