package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// MQTT over WebSocket on the real binary, driven by MQTT.js (the npm
// "mqtt" package, what browser dashboards and Node-RED use) over ws:// and
// wss://, and by a coder/websocket client speaking raw MQTT.

// mqttJS is MQTT.js installed once per test binary, in the directory
// TestMain removes with the binary.
var mqttJS struct {
	once sync.Once
	dir  string // holds node_modules/mqtt
	err  error
}

// needMQTTJS returns the node_modules directory holding MQTT.js v5,
// installing it with npm on first use, or skips the test.
func needMQTTJS(t *testing.T) string {
	t.Helper()
	node := needTool(t, "node")
	npm := needTool(t, "npm")
	mqttJS.once.Do(func() {
		dir := filepath.Join(filepath.Dir(outpostBin), "mqttjs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			mqttJS.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error", "mqtt@5")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			mqttJS.err = fmt.Errorf("npm install mqtt@5: %v\n%s", err, out)
			return
		}
		mqttJS.dir = filepath.Join(dir, "node_modules")
	})
	if mqttJS.err != nil {
		t.Skipf("MQTT.js unavailable (needs npm and the npm registry): %v", mqttJS.err)
	}
	if out, err := exec.Command(node, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "v") {
		t.Skipf("node does not run: %v", err)
	}
	return mqttJS.dir
}

// mqttJSScript connects to argv[2] (ws:// or wss://; argv[3] is a CA file
// or ""), with MQTT version argv[4], subscribes to argv[5], publishes to
// it, prints what it receives and exits 0 once it got its own message.
const mqttJSScript = `
const fs = require('fs');
const mqtt = require('mqtt');
const [url, ca, version, topic] = process.argv.slice(2);
const opts = {protocolVersion: Number(version), clientId: 'mqttjs-' + version + '-' + process.pid,
  connectTimeout: 5000, reconnectPeriod: 0, clean: true};
if (ca) opts.ca = fs.readFileSync(ca);
const fail = (what) => { console.error(what); process.exit(1); };
setTimeout(() => fail('timeout: nothing received within 10s'), 10000);
const c = mqtt.connect(url, opts);
c.on('error', (e) => fail('error: ' + e.message));
c.on('connect', () => {
  c.subscribe(topic, {qos: 1}, (err, granted) => {
    if (err) return fail('subscribe: ' + err.message);
    if (granted[0].qos !== 1) return fail('subscribe granted ' + JSON.stringify(granted));
    c.publish(topic, 'hello from mqtt.js v' + version, {qos: 1}, (err) => { if (err) fail('publish: ' + err.message); });
  });
});
c.on('message', (t, m) => {
  console.log('got ' + t + ' ' + m.toString());
  c.end(false, {}, () => process.exit(0));
});
`

// TestWebSocketMQTTJS: MQTT.js in node connects over ws:// and wss://
// (MQTT 3.1.1 and 5), subscribes, publishes and receives its own
// message; a paho client on the TCP listener sees it too.
func TestWebSocketMQTTJS(t *testing.T) {
	t.Parallel()
	modules := needMQTTJS(t)
	pki := newTestPKI(t)
	p := startOutpost(t, secConfig("  listeners:\n"+plainListener+
		"    - {address: \"127.0.0.1:0\", websocket: true}\n"+
		strings.Replace(tlsListener(pki.Server, "", false, false), "      tls:", "      websocket: true\n      tls:", 1)))
	as := brokerAddrs(t, p, 3)
	tcp, ws, wss := as[0], as[1], as[2]
	script := filepath.Join(t.TempDir(), "client.js")
	writeFile(t, script, mqttJSScript)
	watcher := pahoSubscribe(t, mustPaho(t, "tcp://"+tcp, "ws-watcher"), "ws/#", 1)

	for _, c := range []struct{ name, url, ca string }{
		{"ws", "ws://" + ws + "/mqtt", ""},
		{"wss", "wss://" + wss + "/mqtt", pki.CA.File},
	} {
		for _, v := range []string{"4", "5"} {
			t.Run(c.name+"/v"+v, func(t *testing.T) {
				topic := "ws/" + c.name + "/" + v
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, "node", script, c.url, c.ca, v, topic)
				cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("MQTT.js over %s: %v\n%s\nhub:\n%s", c.url, err, out, p.out.String())
				}
				want := "got " + topic + " hello from mqtt.js v" + v
				if !strings.Contains(string(out), want) {
					t.Fatalf("MQTT.js printed %q, want %q", out, want)
				}
				if m := waitPaho(t, watcher); m.topic != topic || m.payload != "hello from mqtt.js v"+v {
					t.Fatalf("paho on TCP got %+v, want MQTT.js's message on %s", m, topic)
				}
			})
		}
	}
}

// TestWebSocketRawFrames: a coder/websocket client negotiates subprotocol
// mqtt and gets a CONNACK for a CONNECT split over two binary frames
// [MQTT-6.0.0-2]; without the subprotocol it is refused and the hub logs
// why [MQTT-6.0.0-3]; over wss the same works with the CA.
func TestWebSocketRawFrames(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	p := startOutpost(t, secConfig("  listeners:\n"+
		"    - {address: \"127.0.0.1:0\", websocket: true}\n"+
		strings.Replace(tlsListener(pki.Server, "", false, false), "      tls:", "      websocket: true\n      tls:", 1)))
	as := brokerAddrs(t, p, 2)
	ws, wss := as[0], as[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// [MQTT-3.1]: CONNECT, MQTT 3.1.1, clean session, keep alive 60, id "ws-raw".
	connect := []byte{0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 6, 'w', 's', '-', 'r', 'a', 'w'}

	for _, c := range []struct {
		name, url string
		client    *http.Client
	}{
		{"ws", "ws://" + ws + "/", nil},
		{"wss", "wss://" + wss + "/", &http.Client{Transport: &http.Transport{TLSClientConfig: pki.CA.tlsConfig(certFiles{})}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, resp, err := websocket.Dial(ctx, c.url, &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPClient: c.client})
			if err != nil {
				t.Fatalf("dial %s: %v (%v)", c.url, err, resp)
			}
			defer conn.CloseNow()
			if conn.Subprotocol() != "mqtt" {
				t.Fatalf("negotiated subprotocol %q, want mqtt", conn.Subprotocol())
			}
			for _, part := range [][]byte{connect[:7], connect[7:]} {
				if err := conn.Write(ctx, websocket.MessageBinary, part); err != nil {
					t.Fatal(err)
				}
			}
			typ, b, err := conn.Read(ctx)
			if err != nil || typ != websocket.MessageBinary || !bytes.Equal(b, []byte{0x20, 2, 0, 0}) {
				t.Fatalf("CONNACK over %s: type %v, % x, %v; want a binary frame 20 02 00 00", c.name, typ, b, err)
			}
		})
	}

	t.Run("no subprotocol", func(t *testing.T) {
		_, resp, err := websocket.Dial(ctx, "ws://"+ws+"/", nil)
		if err == nil {
			t.Fatal("WebSocket without subprotocol mqtt was accepted")
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("response %v, want 400", resp)
		}
		waitLog(t, p, "level=WARN", "cause=ws-subprotocol", ws, "no subprotocol", "Sec-WebSocket-Protocol: mqtt")
	})

	t.Run("ws on the wss listener", func(t *testing.T) {
		if _, _, err := websocket.Dial(ctx, "ws://"+wss+"/", &websocket.DialOptions{Subprotocols: []string{"mqtt"}}); err == nil {
			t.Fatal("plain ws:// was accepted by the wss listener")
		}
		waitLog(t, p, "level=WARN", "cause=http-on-tls", wss, "use wss://")
	})

	t.Run("wss on the ws listener", func(t *testing.T) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.CA.pool()}}}
		if _, _, err := websocket.Dial(ctx, "wss://"+ws+"/", &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPClient: hc}); err == nil {
			t.Fatal("wss:// was accepted by the plain ws listener")
		}
		waitLog(t, p, "level=WARN", "cause=tls-on-plain", ws, "plain WebSocket (ws://)")
	})
}
