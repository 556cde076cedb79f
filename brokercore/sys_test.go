package brokercore

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// $SYS topics with Mosquitto's names, retained; "#" does not match them
// [MQTT-4.7.2-1].
func TestSysTopics(t *testing.T) {
	b := testBroker(t, Config{SysInterval: 50 * time.Millisecond}, Options{Version: "1.2.3"})
	all := connected(t, b, packet.V311, "all", true)
	all.subscribe(1, "#", 0)
	sys := connected(t, b, packet.V311, "sys", true)
	sys.subscribe(1, "$SYS/#", 0)
	want := map[string]bool{}
	for _, s := range []string{"version", "uptime", "clients/connected", "clients/total", "clients/disconnected", "clients/maximum",
		"messages/received", "messages/sent", "messages/stored", "bytes/received", "bytes/sent", "subscriptions/count",
		"retained messages/count", "publish/messages/received", "publish/messages/sent", "publish/messages/dropped",
		"load/messages/received/1min", "load/messages/sent/5min", "load/bytes/received/15min", "load/publish/dropped/1min",
		"load/connections/5min", "heap/current"} {
		want["$SYS/broker/"+s] = true
	}
	seen := map[string]string{}
	deadline := time.Now().Add(5 * time.Second)
	for (len(seen) < len(want) || seen["$SYS/broker/clients/connected"] != "2") && time.Now().Before(deadline) {
		p := sys.recvType(packet.PUBLISH).(*packet.Publish)
		if want[p.Topic] {
			seen[p.Topic] = string(p.Payload)
		}
	}
	for k := range want {
		if _, ok := seen[k]; !ok {
			t.Errorf("%s not published", k)
		}
	}
	if v := seen["$SYS/broker/version"]; v != "outpost 1.2.3" {
		t.Errorf("version %q", v)
	}
	if v := seen["$SYS/broker/clients/connected"]; v != "2" {
		t.Errorf("clients/connected %q, want 2", v)
	}
	all.quiet(120 * time.Millisecond)
	// Retained: a late subscriber gets them at once.
	late := connected(t, b, packet.V311, "late", true)
	late.subscribe(1, "$SYS/broker/version", 0)
	if p := late.recvType(packet.PUBLISH).(*packet.Publish); !p.Retain {
		t.Fatal("$SYS not retained")
	}
}

// Debug logging reads like mosquitto -v; Info stays quiet per client.
func TestLogging(t *testing.T) {
	for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var logs syncBuf
		b := testBroker(t, Config{}, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: lvl}))})
		c := connected(t, b, packet.V311, "logme", true)
		c.subscribe(1, "l", 1)
		c.send(pub("l", 1, 2, "x"))
		c.recv()
		c.recv()
		c.send(&packet.Disconnect{})
		c.closed()
		poll(t, "disconnect", func() bool { return b.Stats().ClientsConnected.Load() == 0 })
		out := logs.String()
		for _, w := range []string{`msg="New client connected"`, "client=logme", "address=127.0.0.1:", `protocol="MQTT v3.1.1"`, "clean=true", "keepalive=60",
			`msg="Received SUBSCRIBE"`, `msg="Received PUBLISH"`, `msg="Sending PUBLISH"`, `msg="Client disconnected"`} {
			if w == "address=127.0.0.1:" && lvl == slog.LevelInfo {
				continue // the listener's address is logged at Info
			}
			if has := strings.Contains(out, w); has != (lvl == slog.LevelDebug) {
				t.Errorf("level %v: %q in log = %v\n%s", lvl, w, has, out)
			}
		}
	}
}

func TestStatsCountBytesAndMessages(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	c := connected(t, b, packet.V311, "c", true)
	c.subscribe(1, "s", 1)
	c.send(pub("s", 1, 2, "12345"))
	c.recv()
	c.recv()
	st := b.Stats()
	poll(t, "counters", func() bool {
		return st.MessagesReceived.Load() == 1 && st.MessagesSent.Load() == 1 && st.ReceivedByQoS[1].Load() == 1 && st.SentByQoS[1].Load() == 1
	})
	// CONNECT + SUBSCRIBE + PUBLISH received; CONNACK + SUBACK + PUBACK + PUBLISH sent.
	// 15 + 8 + 12 received; 4 + 5 + 4 + 12 sent.
	poll(t, "byte counters", func() bool { return st.BytesReceived.Load() == 35 && st.BytesSent.Load() == 25 })
	if st.Subscriptions.Load() != 1 || st.ClientsConnected.Load() != 1 || st.ClientsMaximum.Load() != 1 {
		t.Fatalf("subscriptions %d connected %d", st.Subscriptions.Load(), st.ClientsConnected.Load())
	}
}

// Clients cannot publish into $SYS (their message would overwrite the
// broker's retained figures).
func TestClientCannotPublishSys(t *testing.T) {
	b := testBroker(t, Config{}, Options{})
	w := connected(t, b, packet.V311, "w", true)
	w.subscribe(1, "$SYS/#", 0)
	c := connected(t, b, packet.V5, "c", true)
	c.send(pub("$SYS/broker/version", 1, 1, "fake"))
	if a := c.recvType(packet.PUBACK).(*packet.Ack); a.ReasonCode != packet.NotAuthorized {
		t.Fatalf("PUBACK 0x%02x, want 0x87", a.ReasonCode)
	}
	w.quiet(50 * time.Millisecond)
}
