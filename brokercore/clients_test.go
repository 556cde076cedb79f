package brokercore_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/auth"
	"github.com/outpost-iot/outpost/brokercore/brokertest"
)

// paho.golang (MQTT 5): QoS 0/1/2 in order, v5 properties through.
func TestPahoGolangV5(t *testing.T) {
	srv := brokertest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type rec struct {
		topic, payload string
		qos            byte
		ct             string
	}
	var mu sync.Mutex
	var got []rec
	dial := func(id string, onPub func(paho.PublishReceived) (bool, error)) *paho.Client {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := paho.ClientConfig{Conn: nc, ClientID: id}
		if onPub != nil {
			cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){onPub}
		}
		c := paho.NewClient(cfg)
		ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
		if err != nil || ca.ReasonCode != 0 {
			t.Fatalf("connect %s: %v %+v", id, err, ca)
		}
		t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
		return c
	}
	sub := dial("v5sub", func(pr paho.PublishReceived) (bool, error) {
		mu.Lock()
		got = append(got, rec{pr.Packet.Topic, string(pr.Packet.Payload), pr.Packet.QoS, pr.Packet.Properties.ContentType})
		mu.Unlock()
		return true, nil
	})
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "v5/#", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}
	pub := dial("v5pub", nil)
	for qos := byte(0); qos <= 2; qos++ {
		for i := 0; i < 5; i++ {
			_, err := pub.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("v5/%d", qos), QoS: qos, Payload: []byte(fmt.Sprint(i)),
				Properties: &paho.PublishProperties{ContentType: "text/plain"}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 15 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of 15", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	next := map[byte]int{}
	for _, r := range got {
		if r.payload != fmt.Sprint(next[r.qos]) || r.ct != "text/plain" {
			t.Fatalf("got %+v, want payload %d with content type", r, next[r.qos])
		}
		next[r.qos]++
	}
}

// autopaho with a persistent session across a broker-side disconnect.
func TestAutopahoReconnect(t *testing.T) {
	srv := brokertest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, _ := url.Parse("mqtt://" + srv.Addr)
	recv := make(chan string, 100)
	cfg := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 20, CleanStartOnInitialConnection: true, SessionExpiryInterval: 600,
		ConnectRetryDelay: 50 * time.Millisecond,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "auto/#", QoS: 1}}})
		},
		ClientConfig: paho.ClientConfig{ClientID: "auto",
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				recv <- string(pr.Packet.Payload)
				return true, nil
			}}},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cm.Disconnect(context.Background()); <-cm.Done() }()
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	publish := func(s string) {
		if err := srv.Broker.Publish(ctx, msgOf("auto/x", s)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(want string) {
		for {
			select {
			case s := <-recv:
				if s == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("did not receive %q", want)
			}
		}
	}
	// The subscription may race the first publish; retry until seen.
	for i := 0; ; i++ {
		publish("first")
		select {
		case s := <-recv:
			if s == "first" {
				goto subscribed
			}
		case <-time.After(100 * time.Millisecond):
		}
		if i > 50 {
			t.Fatal("subscription never became active")
		}
	}
subscribed:
	cm.TerminateConnectionForTest()
	publish("while away")
	waitFor("while away")
}

func mqttTools(t *testing.T) {
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install -y mosquitto-clients)", tool)
		}
	}
}

// mosquitto_sub and mosquitto_pub with each protocol version.
func TestMosquittoClients(t *testing.T) {
	mqttTools(t)
	srv := brokertest.NewServer(t)
	host, port, _ := net.SplitHostPort(srv.Addr)
	for _, v := range []string{"mqttv31", "mqttv311", "5"} {
		t.Run(v, func(t *testing.T) {
			topic := "mosq/" + v
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sub := exec.CommandContext(ctx, "mosquitto_sub", "-h", host, "-p", port, "-V", v, "-t", topic, "-q", "2", "-C", "3", "-v", "-i", "sub-"+v)
			var out bytes.Buffer
			sub.Stdout, sub.Stderr = &out, &out
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the subscription exists, then publish.
			deadline := time.Now().Add(10 * time.Second)
			for srv.Broker.Stats().Subscriptions.Load() == 0 || !hasSub(srv, topic) {
				if time.Now().After(deadline) {
					t.Fatal("mosquitto_sub never subscribed")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for q := 0; q <= 2; q++ {
				pub := exec.CommandContext(ctx, "mosquitto_pub", "-h", host, "-p", port, "-V", v, "-t", topic, "-q", fmt.Sprint(q), "-m", fmt.Sprint("m", q))
				if b, err := pub.CombinedOutput(); err != nil {
					t.Fatalf("mosquitto_pub -q %d: %v\n%s", q, err, b)
				}
			}
			if err := sub.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v\n%s", err, out.String())
			}
			want := fmt.Sprintf("%s m0\n%s m1\n%s m2\n", topic, topic, topic)
			if out.String() != want {
				t.Fatalf("mosquitto_sub printed %q, want %q", out.String(), want)
			}
		})
	}
}

func hasSub(srv *brokertest.Server, topic string) bool {
	return srv.Broker.HasSubscribers(topic)
}

// The seed example with Debian's python3-paho-mqtt, with a password file.
func TestPythonPahoSeedExample(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import paho.mqtt.client").Run(); err != nil {
		t.Skip("python3-paho-mqtt not installed (apt-get install -y python3-paho-mqtt)")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if err := auth.SetPassword(pw, "admin", []byte("password"), auth.HashOptions{Iterations: 1000}, true); err != nil {
		t.Fatal(err)
	}
	no := false
	srv := brokertest.NewServerConfig(t, brokercore.Config{PasswordFile: pw, AllowAnonymous: &no}, brokercore.Options{})
	host, port, _ := net.SplitHostPort(srv.Addr)
	script := `
import sys, threading, paho.mqtt.client as mqtt
host, port = sys.argv[1], int(sys.argv[2])
got = threading.Event()
subscribed = threading.Event()
def on_connect(client, userdata, flags, rc):
    if rc != 0:
        print("connect failed", rc); sys.exit(1)
    client.subscribe("py/#", qos=1)
def on_subscribe(client, userdata, mid, granted):
    subscribed.set()
def on_message(client, userdata, msg):
    print(msg.topic, msg.payload.decode(), msg.qos)
    got.set()
client = mqtt.Client()
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.username_pw_set('admin', 'password')
client.connect_async(host, port, 60)
client.loop_start()
if not subscribed.wait(10): print("no suback"); sys.exit(1)
client.publish("py/hello", "world", qos=1).wait_for_publish()
if not got.wait(10): print("no message"); sys.exit(1)
client.disconnect()
client.loop_stop()
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "py/hello world 1") {
		t.Fatalf("python printed %q", out)
	}
}
