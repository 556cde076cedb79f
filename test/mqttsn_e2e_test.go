package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// snConfig is a hub with the MQTT-SN gateway on a free UDP port and two
// pre-defined topic ids (YAML map keys are numbers, as in DESIGN.md). EXTRA
// is replaced by more mqttsn keys, BROKER by more broker keys.
const snConfig = `
data_dir: %DATA%
http: {listen: "off"}
broker:
  listeners:
    - address: "127.0.0.1:0"
BROKER
mqttsn:
  enabled: true
  listen: "127.0.0.1:0"
  advertise_interval: -1s
  broadcast: "127.0.0.1:9"
  retry_interval: 1s
  predefined_topics: {1: "site/alarm", 2: "site/valve/cmd", 7: "alarm/fire"}
EXTRA
`

func snCfg(broker, extra string) string {
	return strings.NewReplacer("BROKER", broker, "EXTRA", extra).Replace(snConfig)
}

// snDial opens an MQTT-SN client to the binary's gateway.
func snDial(t *testing.T, p *proc) *sntest.Client {
	t.Helper()
	c, err := sntest.Dial(p.addr("MQTT-SN gateway"), sntest.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func snConnect(t *testing.T, c *sntest.Client, o sntest.ConnectOptions) {
	t.Helper()
	if rc, err := c.Connect(o); err != nil || rc != snpacket.Accepted {
		t.Fatalf("SN connect %s: %v %v", o.ClientID, rc, err)
	}
}

func pahoPub(t *testing.T, c mqtt.Client, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, qos, retain, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho publish %s: %v", topic, tok.Error())
	}
}

func snWait(t *testing.T, c *sntest.Client) sntest.Message {
	t.Helper()
	m, err := c.WaitMessage(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMQTTSNE2EPublishSubscribe: an MQTT-SN client on the binary's gateway
// and paho.mqtt.golang on its broker see each other's messages with topic,
// payload, QoS and retain flag; wildcard subscriptions get the gateway's
// REGISTER; pre-defined ids from the YAML work both ways and for QoS -1
// without a connection.
func TestMQTTSNE2EPublishSubscribe(t *testing.T) {
	p := startOutpost(t, snCfg("", ""))
	if !strings.Contains(p.out.String(), "MQTT-SN gateway (udp) listening on 127.0.0.1:") {
		t.Fatalf("no gateway line in the summary:\n%s", p.out.String())
	}
	addr := p.addr("MQTT broker")
	paho := pahoClient(t, addr, "sn-watch")
	fromSN := pahoSubscribe(t, paho, "sn/#", 2)
	site := pahoSubscribe(t, paho, "site/#", 2)

	sn := snDial(t, p)
	snConnect(t, sn, sntest.ConnectOptions{ClientID: "sn-node-1", CleanSession: true, KeepAlive: 60})

	// SN → MQTT at QoS 0, 1, 2 on a registered topic; QoS 2 retained.
	tid, rc, err := sn.Register("sn/node-1/temp")
	if err != nil || rc != snpacket.Accepted || tid == 0 {
		t.Fatalf("REGISTER: id %d %v %v", tid, rc, err)
	}
	for q := int8(0); q <= 2; q++ {
		payload := fmt.Sprintf("21.%d", q)
		if rc, err := sn.Publish(snpacket.TopicNormal, tid, q, q == 2, []byte(payload)); err != nil || rc != snpacket.Accepted {
			t.Fatalf("SN publish QoS %d: %v %v", q, rc, err)
		}
		// A live message reaches an existing subscriber without the retain
		// flag [MQTT-3.3.1-9].
		if m := waitPaho(t, fromSN); m != (pahoMsg{"sn/node-1/temp", payload, byte(q), false}) {
			t.Errorf("paho got %+v after SN QoS %d publish", m, q)
		}
	}
	late := pahoClient(t, addr, "sn-late")
	if m := waitPaho(t, pahoSubscribe(t, late, "sn/node-1/temp", 2)); m != (pahoMsg{"sn/node-1/temp", "21.2", 2, true}) {
		t.Errorf("late paho subscriber got %+v, want the retained QoS 2 message", m)
	}

	// MQTT → SN on an exact subscription at each QoS; the granted QoS caps it.
	sa, err := sn.Subscribe(snpacket.TopicNormal, "cmd/node-1/valve", 0, 2)
	if err != nil || sa.ReturnCode != snpacket.Accepted || sa.TopicID == 0 {
		t.Fatalf("SUBSCRIBE: %+v %v", sa, err)
	}
	for _, q := range []byte{0, 1, 2} {
		pahoPub(t, paho, "cmd/node-1/valve", q, false, fmt.Sprintf("open-%d", q))
		m := snWait(t, sn)
		if m.Topic != "cmd/node-1/valve" || m.TopicID != sa.TopicID || m.TopicType != snpacket.TopicNormal ||
			string(m.Payload) != fmt.Sprintf("open-%d", q) || m.QoS != int8(q) || m.Retain {
			t.Errorf("SN got %+v for paho QoS %d", m, q)
		}
	}
	if sn.Registers() != 0 {
		t.Errorf("gateway sent %d REGISTER for a topic the client subscribed by name", sn.Registers())
	}

	// A wildcard subscription: the gateway REGISTERs each new topic once,
	// then publishes with that id; a retained message arrives flagged.
	pahoPub(t, paho, "cfg/node-1/interval", 1, true, "60s")
	if sa, err := sn.Subscribe(snpacket.TopicNormal, "cfg/node-1/+", 0, 1); err != nil || sa.ReturnCode != snpacket.Accepted {
		t.Fatalf("wildcard SUBSCRIBE: %+v %v", sa, err)
	}
	m := snWait(t, sn)
	if m.Topic != "cfg/node-1/interval" || string(m.Payload) != "60s" || m.QoS != 1 || !m.Retain {
		t.Errorf("SN got %+v, want the retained cfg/node-1/interval", m)
	}
	intervalID := m.TopicID
	pahoPub(t, paho, "cfg/node-1/interval", 1, false, "30s")
	pahoPub(t, paho, "cfg/node-1/mode", 0, false, "eco")
	for _, want := range []struct{ topic, payload string }{{"cfg/node-1/interval", "30s"}, {"cfg/node-1/mode", "eco"}} {
		m := snWait(t, sn)
		if m.Topic != want.topic || string(m.Payload) != want.payload || m.Retain {
			t.Errorf("SN got %+v, want %s %s", m, want.topic, want.payload)
		}
		if want.topic == "cfg/node-1/interval" && m.TopicID != intervalID {
			t.Errorf("second message on cfg/node-1/interval came with id %d, first with %d", m.TopicID, intervalID)
		}
	}
	if sn.Registers() != 2 {
		t.Errorf("gateway sent %d REGISTER, want 2 (one per new topic of the wildcard)", sn.Registers())
	}

	// Pre-defined ids from mqttsn.predefined_topics: publish to 1, subscribe to 2.
	if rc, err := sn.Publish(snpacket.TopicPredefined, 1, 1, false, []byte("door open")); err != nil || rc != snpacket.Accepted {
		t.Fatalf("SN publish to pre-defined id 1: %v %v", rc, err)
	}
	if m := waitPaho(t, site); m != (pahoMsg{"site/alarm", "door open", 1, false}) {
		t.Errorf("paho got %+v for pre-defined id 1", m)
	}
	if sa, err := sn.Subscribe(snpacket.TopicPredefined, "", 2, 1); err != nil || sa.ReturnCode != snpacket.Accepted {
		t.Fatalf("SUBSCRIBE pre-defined id 2: %+v %v", sa, err)
	}
	pahoPub(t, paho, "site/valve/cmd", 1, false, "close")
	if m := waitPaho(t, site); m.topic != "site/valve/cmd" {
		t.Fatalf("paho got %+v", m)
	}
	m = snWait(t, sn)
	if m.TopicType != snpacket.TopicPredefined || m.TopicID != 2 || string(m.Payload) != "close" || m.QoS != 1 {
		t.Errorf("SN got %+v, want pre-defined id 2", m)
	}
	// An id that is neither registered nor pre-defined: 0x02.
	if rc, err := sn.Publish(snpacket.TopicPredefined, 99, 1, false, []byte("x")); err != nil || rc != snpacket.RejectedInvalidTopicID {
		t.Errorf("publish to unknown pre-defined id 99: %v %v, want %v", rc, err, snpacket.RejectedInvalidTopicID)
	}

	// QoS -1 from a node that never connects: pre-defined id and short name.
	bare := snDial(t, p)
	if _, err := bare.Publish(snpacket.TopicPredefined, 1, -1, false, []byte("qos-1 alarm")); err != nil {
		t.Fatal(err)
	}
	if m := waitPaho(t, site); m != (pahoMsg{"site/alarm", "qos-1 alarm", 0, false}) {
		t.Errorf("paho got %+v for a QoS -1 publish to pre-defined id 1", m)
	}
	short := pahoSubscribe(t, paho, "s7", 1)
	if _, err := bare.Publish(snpacket.TopicShort, shortID("s7"), -1, false, []byte("short")); err != nil {
		t.Fatal(err)
	}
	if m := waitPaho(t, short); m != (pahoMsg{"s7", "short", 0, false}) {
		t.Errorf("paho got %+v for a QoS -1 publish to short name s7", m)
	}

	if err := sn.Disconnect(0); err != nil {
		t.Fatalf("SN DISCONNECT: %v", err)
	}
}

// TestMQTTSNE2EWillOnKeepaliveLapse: a node silent for 1.5 × its keep
// alive is lost and its will published (section 6.11); one that pings in
// time keeps its session and its will stays unpublished.
func TestMQTTSNE2EWillOnKeepaliveLapse(t *testing.T) {
	p := startOutpost(t, snCfg("", ""))
	paho := pahoClient(t, p.addr("MQTT broker"), "will-watch")
	wills := pahoSubscribe(t, paho, "wills/#", 1)

	alive := snDial(t, p)
	snConnect(t, alive, sntest.ConnectOptions{ClientID: "pinger", CleanSession: true, KeepAlive: 1,
		Will: &sntest.Will{Topic: "wills/pinger", Payload: []byte("lost"), QoS: 1}})
	silent := snDial(t, p)
	start := time.Now()
	snConnect(t, silent, sntest.ConnectOptions{ClientID: "silent", CleanSession: true, KeepAlive: 1,
		Will: &sntest.Will{Topic: "wills/silent", Payload: []byte("lost"), QoS: 1, Retain: true}})

	// The pinger pings every 400 ms while the silent node's will comes.
	tick := time.NewTicker(400 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(6 * time.Second)
	var got pahoMsg
wait:
	for {
		select {
		case got = <-wills:
			break wait
		case <-tick.C:
			if err := alive.Ping(""); err != nil {
				t.Fatalf("pinger PINGREQ: %v", err)
			}
		case <-deadline:
			t.Fatalf("no will within 6s of a 1 s keep alive; hub:\n%s", p.out.String())
		}
	}
	if got != (pahoMsg{"wills/silent", "lost", 1, false}) {
		t.Fatalf("got %+v, want the silent node's will", got)
	}
	if d := time.Since(start); d < 1400*time.Millisecond {
		t.Errorf("will after %v, before 1.5 × the 1 s keep alive", d)
	}
	// Keep the pinger going past its own 1.5 s: no will for it.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		select {
		case m := <-wills:
			t.Errorf("will published for a node that pinged in time: %+v", m)
		case <-tick.C:
			if err := alive.Ping(""); err != nil {
				t.Fatalf("pinger PINGREQ: %v", err)
			}
		}
	}
	// The retained will is there for a later subscriber.
	late := pahoClient(t, p.addr("MQTT broker"), "will-late")
	if m := waitPaho(t, pahoSubscribe(t, late, "wills/silent", 1)); m != (pahoMsg{"wills/silent", "lost", 1, true}) {
		t.Errorf("late subscriber got %+v, want the retained will", m)
	}
	// The lost node is told to connect again if it speaks.
	if err := silent.Send(&snpacket.Pingreq{}); err != nil {
		t.Fatal(err)
	}
	if pk, err := silent.NextAny(5 * time.Second); err != nil {
		t.Errorf("lost node's PINGREQ: %v, want DISCONNECT", err)
	} else if _, ok := pk.(*snpacket.Disconnect); !ok {
		t.Errorf("lost node's PINGREQ answered with %T, want DISCONNECT", pk)
	}
}

// TestMQTTSNE2ESleepingClient: messages for a sleeping node are buffered
// and delivered in order when it wakes with PINGREQ, then PINGRESP
// (section 6.14).
func TestMQTTSNE2ESleepingClient(t *testing.T) {
	p := startOutpost(t, snCfg("", ""))
	paho := pahoClient(t, p.addr("MQTT broker"), "sleep-pub")
	sn := snDial(t, p)
	snConnect(t, sn, sntest.ConnectOptions{ClientID: "sleeper", CleanSession: true, KeepAlive: 60})
	sa, err := sn.Subscribe(snpacket.TopicNormal, "cmd/sleeper", 0, 1)
	if err != nil || sa.ReturnCode != snpacket.Accepted {
		t.Fatalf("SUBSCRIBE: %+v %v", sa, err)
	}
	if err := sn.Disconnect(30); err != nil {
		t.Fatalf("DISCONNECT(30): %v", err)
	}
	for i := 0; i < 3; i++ {
		pahoPub(t, paho, "cmd/sleeper", 1, false, fmt.Sprintf("m%d", i))
	}
	// Nothing while asleep.
	if m, err := sn.WaitMessage(300 * time.Millisecond); err == nil {
		t.Fatalf("sleeping node got %+v", m)
	}
	if err := sn.Ping("sleeper"); err != nil {
		t.Fatalf("wake PINGREQ: %v", err)
	}
	for i := 0; i < 3; i++ {
		m := snWait(t, sn)
		if m.Topic != "cmd/sleeper" || m.TopicID != sa.TopicID || string(m.Payload) != fmt.Sprintf("m%d", i) || m.QoS != 1 {
			t.Errorf("woken node got %+v, want m%d", m, i)
		}
	}
	// Back to sleep: the buffer is empty, the next wake gets only new messages.
	pahoPub(t, paho, "cmd/sleeper", 1, false, "m3")
	if err := sn.Ping("sleeper"); err != nil {
		t.Fatalf("second wake: %v", err)
	}
	if m := snWait(t, sn); string(m.Payload) != "m3" {
		t.Errorf("second wake got %+v, want m3", m)
	}
}

// TestMQTTSNE2EACL: the broker's acl_file applies to MQTT-SN clients as
// anonymous, or as mqttsn.username when set: a denied publish gets
// PUBACK 0x03 and never reaches a subscriber, a denied subscription
// SUBACK 0x03.
func TestMQTTSNE2EACL(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(`# anonymous
topic readwrite sn/#
topic read alarm/#
topic read plant/#
topic read al
user plant
topic readwrite plant/#
`), 0o600); err != nil {
		t.Fatal(err)
	}
	broker := "  allow_anonymous: true\n  acl_file: " + acl

	t.Run("anonymous", func(t *testing.T) {
		p := startOutpost(t, snCfg(broker, ""))
		paho := pahoClient(t, p.addr("MQTT broker"), "acl-watch")
		seen := collect(t, paho, "#", 1)
		sn := snDial(t, p)
		snConnect(t, sn, sntest.ConnectOptions{ClientID: "acl-node", CleanSession: true, KeepAlive: 60})

		ok, _, err := sn.Register("sn/acl-node/ok")
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := sn.Publish(snpacket.TopicNormal, ok, 1, false, []byte("allowed")); err != nil || rc != snpacket.Accepted {
			t.Fatalf("allowed publish: %v %v", rc, err)
		}
		fire, rc, err := sn.Register("alarm/fire")
		if err != nil {
			t.Fatal(err)
		}
		if rc == snpacket.Accepted {
			for _, q := range []int8{1, 2} {
				if rc, err := sn.Publish(snpacket.TopicNormal, fire, q, false, []byte("denied")); err != nil || rc != snpacket.RejectedNotSupported {
					t.Errorf("QoS %d publish to a denied topic: %v %v, want %v", q, rc, err, snpacket.RejectedNotSupported)
				}
			}
		} else if rc != snpacket.RejectedNotSupported {
			t.Errorf("REGISTER of a denied topic: %v, want accepted or %v", rc, snpacket.RejectedNotSupported)
		}
		if rc, err := sn.Publish(snpacket.TopicPredefined, 7, 1, false, []byte("denied")); err != nil || rc != snpacket.RejectedNotSupported {
			t.Errorf("QoS 1 publish to denied pre-defined id 7: %v %v, want %v", rc, err, snpacket.RejectedNotSupported)
		}
		if sa, err := sn.Subscribe(snpacket.TopicNormal, "secret/#", 0, 1); err != nil || sa.ReturnCode != snpacket.RejectedNotSupported {
			t.Errorf("denied SUBSCRIBE: %+v %v, want %v", sa, err, snpacket.RejectedNotSupported)
		}

		// A fence: once it arrives, everything before it has been routed.
		fid, _, err := sn.Register("sn/fence")
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := sn.Publish(snpacket.TopicNormal, fid, 1, false, []byte("fence")); err != nil || rc != snpacket.Accepted {
			t.Fatalf("fence: %v %v", rc, err)
		}
		seen.wait(t, 5*time.Second, 0, "the fence", func(m pahoMsg) bool { return m.topic == "sn/fence" })
		ms, _ := seen.since(0)
		var topics []string
		for _, m := range ms {
			topics = append(topics, m.topic+"="+m.payload)
			if strings.HasPrefix(m.topic, "alarm/") || strings.HasPrefix(m.topic, "secret/") {
				t.Errorf("a denied message reached the subscriber: %+v", m)
			}
		}
		if want := []string{"sn/acl-node/ok=allowed", "sn/fence=fence"}; strings.Join(topics, " ") != strings.Join(want, " ") {
			t.Errorf("subscriber saw %q, want %q", topics, want)
		}
	})

	// QoS -1 needs no connection (section 6.8), so it is the easiest way
	// for any UDP sender to publish: the ACL must apply to it too.
	t.Run("qos -1", func(t *testing.T) {
		p := startOutpost(t, snCfg(broker, ""))
		paho := pahoClient(t, p.addr("MQTT broker"), "acl-watch")
		seen := collect(t, paho, "#", 1)
		// The same socket then connects and publishes a fence: one address
		// is served by one gateway worker, in order.
		sn := snDial(t, p)
		if _, err := sn.Publish(snpacket.TopicPredefined, 7, -1, false, []byte("denied qos-1")); err != nil {
			t.Fatal(err)
		}
		if _, err := sn.Publish(snpacket.TopicShort, shortID("al"), -1, false, []byte("denied short")); err != nil {
			t.Fatal(err)
		}
		snConnect(t, sn, sntest.ConnectOptions{ClientID: "acl-fence", CleanSession: true, KeepAlive: 60})
		fid, _, err := sn.Register("sn/fence")
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := sn.Publish(snpacket.TopicNormal, fid, 1, false, []byte("fence")); err != nil || rc != snpacket.Accepted {
			t.Fatalf("fence: %v %v", rc, err)
		}
		seen.wait(t, 5*time.Second, 0, "the fence", func(m pahoMsg) bool { return m.topic == "sn/fence" })
		ms, _ := seen.since(0)
		for _, m := range ms {
			if m.topic != "sn/fence" {
				t.Errorf("a QoS -1 publish the ACL denies reached the subscriber: %+v", m)
			}
		}
	})

	t.Run("mqttsn.username", func(t *testing.T) {
		p := startOutpost(t, snCfg(broker, `  username: plant`))
		paho := pahoClient(t, p.addr("MQTT broker"), "acl-watch")
		seen := pahoSubscribe(t, paho, "plant/#", 1)
		sn := snDial(t, p)
		snConnect(t, sn, sntest.ConnectOptions{ClientID: "plant-node", CleanSession: true, KeepAlive: 60})
		id, _, err := sn.Register("plant/pump/run")
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := sn.Publish(snpacket.TopicNormal, id, 1, false, []byte("1")); err != nil || rc != snpacket.Accepted {
			t.Fatalf("publish as plant to plant/#: %v %v", rc, err)
		}
		if m := waitPaho(t, seen); m != (pahoMsg{"plant/pump/run", "1", 1, false}) {
			t.Errorf("paho got %+v", m)
		}
		// The anonymous rules do not apply to user plant.
		if id, rc, err := sn.Register("sn/plant-node/x"); err == nil && rc == snpacket.Accepted {
			if rc, err := sn.Publish(snpacket.TopicNormal, id, 1, false, []byte("x")); err != nil || rc != snpacket.RejectedNotSupported {
				t.Errorf("publish as plant to sn/...: %v %v, want %v", rc, err, snpacket.RejectedNotSupported)
			}
		}
	})
}

// TestMQTTSNE2EPersistentSession: a clean-session-false SN node's
// subscription is a persistent broker session (section 6.3): messages
// published while it is disconnected are queued and delivered when it
// connects again, also after a restart of the binary, where the gateway
// (which lost its topic ids) REGISTERs the topic before sending.
func TestMQTTSNE2EPersistentSession(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := snCfg("", "")
	p := startOutpostIn(t, dir, data, cfg)
	paho := pahoClient(t, p.addr("MQTT broker"), "persist-pub")
	sn := snDial(t, p)
	snConnect(t, sn, sntest.ConnectOptions{ClientID: "field-node", CleanSession: false, KeepAlive: 60})
	sa, err := sn.Subscribe(snpacket.TopicNormal, "cmd/field-node", 0, 1)
	if err != nil || sa.ReturnCode != snpacket.Accepted {
		t.Fatalf("SUBSCRIBE: %+v %v", sa, err)
	}
	if err := sn.Disconnect(0); err != nil {
		t.Fatal(err)
	}
	// Away, same hub: the message waits for the node.
	pahoPub(t, paho, "cmd/field-node", 1, false, "while disconnected")
	snConnect(t, sn, sntest.ConnectOptions{ClientID: "field-node", CleanSession: false, KeepAlive: 60})
	if m, err := sn.WaitMessage(3 * time.Second); err != nil {
		t.Errorf("node reconnected with clean session false: %v (its subscription or the queued message was lost)", err)
	} else if m.Topic != "cmd/field-node" || m.TopicID != sa.TopicID || string(m.Payload) != "while disconnected" || m.QoS != 1 {
		t.Errorf("reconnected node got %+v, want the message queued while it was away", m)
	}
	if err := sn.Disconnect(0); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.out.String())
	}

	// Across a restart of the binary.
	p = startOutpostIn(t, dir, data, cfg)
	paho = pahoClient(t, p.addr("MQTT broker"), "persist-pub-2")
	pahoPub(t, paho, "cmd/field-node", 1, false, "while away")
	sn2 := snDial(t, p)
	snConnect(t, sn2, sntest.ConnectOptions{ClientID: "field-node", CleanSession: false, KeepAlive: 60})
	m, err := sn2.WaitMessage(3 * time.Second)
	if err != nil {
		t.Fatalf("node resumed after a restart: %v (its subscription or the queued message was lost)", err)
	}
	if m.Topic != "cmd/field-node" || string(m.Payload) != "while away" || m.QoS != 1 {
		t.Errorf("resumed node got %+v, want the message queued while it was away", m)
	}
	pahoPub(t, paho, "cmd/field-node", 1, false, "live")
	if m := snWait(t, sn2); m.Topic != "cmd/field-node" || string(m.Payload) != "live" {
		t.Errorf("resumed node got %+v, want the live message", m)
	}
	if sn2.Registers() != 1 {
		t.Errorf("gateway sent %d REGISTER after the restart, want 1", sn2.Registers())
	}
}

// TestMQTTSNE2EPredefinedTopicsConfig: mqttsn.predefined_topics keys are
// topic ids; `outpost config check` and `outpost run` name a bad one.
func TestMQTTSNE2EPredefinedTopicsConfig(t *testing.T) {
	for _, c := range []struct{ m, want string }{
		{`{0: "a/b"}`, `:6: mqttsn.predefined_topics.0: "a/b": topic id 0 is reserved`},
		{`{70000: "a/b"}`, `:6: mqttsn.predefined_topics.70000: "70000": out of range 0 to 65535`},
		{`{abc: "a/b"}`, `:6: mqttsn.predefined_topics.abc: "abc": not an integer`},
		{`{3: "a/+"}`, `:6: mqttsn.predefined_topics.3: "a/+": topic name must not contain the wildcards + or #`},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "outpost.yaml")
		body := fmt.Sprintf("data_dir: %s\nhttp: {listen: \"off\"}\nbroker: {listeners: [{address: \"127.0.0.1:0\"}]}\nmqttsn:\n  enabled: true\n  predefined_topics: %s\n",
			filepath.Join(dir, "data"), c.m)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"config check", "run"} {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			out, err := exec.CommandContext(ctx, outpostBin, append(strings.Fields(cmd), "-c", cfg)...).CombinedOutput()
			cancel()
			if err == nil || !strings.Contains(string(out), c.want) {
				t.Errorf("outpost %s with predefined_topics %s: %v\n%s\nwant an error with %q", cmd, c.m, err, out, c.want)
			}
		}
	}
}
