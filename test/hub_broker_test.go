package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// hubConfig is a hub on free loopback ports with the MQTT-SN gateway and
// one fast simulated sensor.
const hubConfig = `
data_dir: %DATA%
http: {listen: "off"}
broker:
  listeners:
    - address: "127.0.0.1:0"
  sys_interval: 1s
mqttsn:
  enabled: true
  listen: "127.0.0.1:0"
  advertise_interval: -1s
sensors:
  - name: mast
    driver: bme280
    bus: {type: i2c, name: "SIM-I2C1", address: 0x76}
    interval: 200ms
    qos: 1
    retain: true
    simulate: {temperature: 21.5, humidity: 40, pressure: 101325}
`

// needTool skips the test when a Debian tool test/run.sh installs is missing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/bin/" + name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skipf("%s not installed (test/run.sh installs it)", name)
	return ""
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("bad address %q", addr)
	}
	return addr[:i], addr[i+1:]
}

// mosquittoSub runs mosquitto_sub with args until it exits (-C/-W bound it).
func mosquittoSub(ctx context.Context, t *testing.T, addr string, args ...string) *exec.Cmd {
	t.Helper()
	host, port := hostPort(t, addr)
	cmd := exec.CommandContext(ctx, needTool(t, "mosquitto_sub"), append([]string{"-h", host, "-p", port}, args...)...)
	return cmd
}

func mosquittoPub(t *testing.T, addr string, args ...string) {
	t.Helper()
	host, port := hostPort(t, addr)
	out, err := exec.Command(needTool(t, "mosquitto_pub"), append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
	}
}

// TestHubSensorsReachMosquittoSub runs the real binary and reads the
// simulated sensor's readings with the real mosquitto_sub, as the README's
// first command promises.
func TestHubSensorsReachMosquittoSub(t *testing.T) {
	p := startOutpost(t, hubConfig)
	addr := p.addr("MQTT broker")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := mosquittoSub(ctx, t, addr, "-t", "sensors/mast", "-v", "-C", "2", "-W", "15").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s\nhub output:\n%s", err, out, p.out.String())
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != 2 {
		t.Fatalf("want 2 readings, got %q", out)
	}
	for _, l := range got {
		if !strings.HasPrefix(l, "sensors/mast {") || !strings.Contains(l, "temperature") {
			t.Errorf("reading %q: want sensors/mast with a JSON payload holding temperature", l)
		}
	}
}

// TestHubMosquittoClientsAllVersions publishes and subscribes with the real
// mosquitto clients at every QoS and protocol version through the binary.
func TestHubMosquittoClientsAllVersions(t *testing.T) {
	p := startOutpost(t, hubConfig)
	addr := p.addr("MQTT broker")
	for _, v := range []string{"mqttv31", "mqttv311", "5"} {
		for _, qos := range []string{"0", "1", "2"} {
			t.Run(v+"/qos"+qos, func(t *testing.T) {
				topic := fmt.Sprintf("it/%s/%s", v, qos)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				// A retained marker comes back first, which tells the test
				// that mosquitto_sub's subscription is live.
				mosquittoPub(t, addr, "-V", v, "-q", qos, "-r", "-t", topic, "-m", "ready")
				sub := mosquittoSub(ctx, t, addr, "-V", v, "-q", qos, "-t", topic, "-C", "4", "-W", "10", "-v")
				stdout, err := sub.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := sub.Start(); err != nil {
					t.Fatal(err)
				}
				got := lines(stdout)
				select {
				case l := <-got:
					if l != topic+" ready" {
						t.Fatalf("first line %q, want the retained marker", l)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("mosquitto_sub got no retained marker within 10s; hub:\n%s", p.out.String())
				}
				for i := 0; i < 3; i++ {
					mosquittoPub(t, addr, "-V", v, "-q", qos, "-t", topic, "-m", fmt.Sprintf("m%d", i))
				}
				var recv []string
				for l := range got {
					recv = append(recv, l)
				}
				if err := sub.Wait(); err != nil {
					t.Fatalf("mosquitto_sub: %v (got %q)", err, recv)
				}
				want := []string{topic + " m0", topic + " m1", topic + " m2"}
				if strings.Join(recv, "|") != strings.Join(want, "|") {
					t.Fatalf("got %q, want %q in order", recv, want)
				}
			})
		}
	}
}

// TestHubPythonPahoSeedExample runs the seed's own python3-paho-mqtt
// example against the binary with a password file.
func TestHubPythonPahoSeedExample(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import paho.mqtt.client").Run(); err != nil {
		t.Skipf("python3-paho-mqtt not installed for /usr/bin/python3 (test/run.sh installs it): %v", err)
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	out, err := exec.Command(outpostBin, "passwd", "-c", "-b", pw, "admin", "password").CombinedOutput()
	if err != nil {
		t.Fatalf("outpost passwd: %v\n%s", err, out)
	}
	p2 := startOutpost(t, strings.Replace(hubConfig, "  sys_interval: 1s", "  sys_interval: 1s\n  allow_anonymous: false\n  password_file: "+pw, 1))
	addr := p2.addr("MQTT broker")
	host, port := hostPort(t, addr)
	script := `
import sys, time, threading
import paho.mqtt.client as mqtt
host, port = sys.argv[1], int(sys.argv[2])
got = threading.Event()
msgs = []
def on_connect(client, userdata, flags, rc, *args):
    client.subscribe("seed/test", 1)
def on_subscribe(client, userdata, mid, *args):
    client.publish("seed/test", "hello from paho", qos=1)
def on_message(client, userdata, msg):
    msgs.append((msg.topic, msg.payload.decode()))
    got.set()
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, "seed-example")
except AttributeError:
    client = mqtt.Client("seed-example")
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.username_pw_set('admin', 'password')
client.connect_async(host, port, 60)
client.loop_start()
ok = got.wait(10)
client.loop_stop()
print(msgs)
sys.exit(0 if ok else 1)
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := exec.CommandContext(ctx, py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python paho seed example: %v\n%s\nhub:\n%s", err, res, p2.out.String())
	}
	if !strings.Contains(string(res), "hello from paho") {
		t.Fatalf("python paho got %s", res)
	}

	// A wrong password is refused with CONNACK 5 (not authorised).
	bad := strings.Replace(script, "'password'", "'wrong'", 1)
	res, err = exec.CommandContext(ctx, py, "-c", bad, host, port).CombinedOutput()
	if err == nil {
		t.Fatalf("wrong password accepted: %s", res)
	}
}

// TestHubKill9KeepsSessionsAndRetained: a persistent session's queued QoS 1
// messages and the retained messages survive kill -9 of the binary.
func TestHubKill9KeepsSessionsAndRetained(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := strings.Replace(hubConfig, "sensors:", "sensors_off:", 1)
	cfg = cfg[:strings.Index(cfg, "sensors_off:")]
	p := startOutpostIn(t, dir, data, cfg)
	addr := p.addr("MQTT broker")

	// A persistent subscriber registers, then goes away.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := mosquittoSub(ctx, t, addr, "-i", "field-sub", "-c", "-q", "1", "-t", "k9/#", "-E")
	if out, err := sub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_sub -E: %v\n%s", err, out)
	}
	for i := 0; i < 5; i++ {
		mosquittoPub(t, addr, "-q", "1", "-t", "k9/q", "-m", fmt.Sprintf("q%d", i))
	}
	mosquittoPub(t, addr, "-q", "1", "-r", "-t", "k9/retained", "-m", "kept")
	p.kill9()

	p = startOutpostIn(t, dir, data, cfg)
	addr = p.addr("MQTT broker")
	out, err := mosquittoSub(ctx, t, addr, "-i", "field-sub", "-c", "-q", "1", "-t", "k9/#", "-v", "-C", "6", "-W", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("resume after kill -9: %v\n%s\nhub:\n%s", err, out, p.out.String())
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"k9/q q0", "k9/q q1", "k9/q q2", "k9/q q3", "k9/q q4", "k9/retained kept"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("after kill -9 got %q, want %q", got, want)
	}
	// A new subscriber gets the retained message too.
	out, err = mosquittoSub(ctx, t, addr, "-t", "k9/retained", "-v", "-C", "1", "-W", "5").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "k9/retained kept" {
		t.Fatalf("retained after kill -9: %v %q", err, out)
	}
}

// TestHubSIGTERMSendsWillsAndStopsCleanly: on SIGTERM the hub stops
// accepting, publishes the wills of connected clients (a server-side close
// is not a DISCONNECT, [MQTT-3.1.2-8]) and exits 0; a persistent subscriber
// gets the will after the restart.
func TestHubSIGTERMSendsWillsAndStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := hubConfig[:strings.Index(hubConfig, "sensors:")]
	p := startOutpostIn(t, dir, data, cfg)
	addr := p.addr("MQTT broker")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := mosquittoSub(ctx, t, addr, "-i", "will-watch", "-c", "-q", "1", "-t", "wills/#", "-E").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_sub -E: %v\n%s", err, out)
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://"+addr).SetClientID("valve-7").
		SetWill("wills/valve-7", "offline", 1, false).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if err := p.stop(); err != nil {
		t.Fatalf("outpost did not exit cleanly on SIGTERM: %v\n%s", err, p.out.String())
	}
	if !strings.Contains(p.out.String(), "stopped cleanly") {
		t.Fatalf("no clean stop line:\n%s", p.out.String())
	}
	p = startOutpostIn(t, dir, data, cfg)
	addr = p.addr("MQTT broker")
	out, err := mosquittoSub(ctx, t, addr, "-i", "will-watch", "-c", "-q", "1", "-t", "wills/#", "-v", "-C", "1", "-W", "10").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "wills/valve-7 offline" {
		t.Fatalf("will after SIGTERM: %v %q\nhub:\n%s", err, out, p.out.String())
	}
}

// TestHubRefusesBadConfig: a wrong key stops outpost run with the key named.
func TestHubRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("broker:\n  listners: []\n"), 0o600)
	out, err := exec.Command(outpostBin, "run", "-c", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("outpost run accepted a bad key:\n%s", out)
	}
	if !strings.Contains(string(out), "broker.listners: unknown key; did you mean broker.listeners?") {
		t.Fatalf("error does not name the key:\n%s", out)
	}
}

// TestHubPortInUse: the commonest first-day failure, mosquitto's own
// service still on the port, stops outpost run with one clear line that
// names the address and what to do.
func TestHubPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "busy.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nbroker:\n  listeners:\n    - address: "+busy.Addr().String()+
		"\nmqttsn: {enabled: false}\nsensors: []\nhttp: {listen: \"off\"}\n"), 0o600)
	out, err := exec.Command(outpostBin, "run", "-c", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("outpost run started on a port in use:\n%s", out)
	}
	want := "outpost: start broker: listen tcp " + busy.Addr().String() + ": bind: address already in use (another broker"
	if !strings.Contains(string(out), want) {
		t.Fatalf("want a line %q... that says another broker holds the port:\n%s", want, out)
	}
	if strings.Contains(string(out), "start broker: start broker") {
		t.Fatalf("the operation is named twice:\n%s", out)
	}
}

// TestHubSummarySaysWhatIsOff: a config file starts from the documented
// defaults, not the embedded one, so a file without mqttsn or sensors runs
// neither; the start-up summary says so instead of leaving them out.
func TestHubSummarySaysWhatIsOff(t *testing.T) {
	p := startOutpost(t, "data_dir: %DATA%\nbroker:\n  listeners:\n    - address: \"127.0.0.1:0\"\nhttp: {listen: \"off\"}\n")
	p.waitFor("uplink off (no cloud configured)", 10*time.Second)
	for _, want := range []string{"MQTT-SN gateway off (mqttsn.enabled is false)", "no sensors configured"} {
		if !strings.Contains(p.out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, p.out.String())
		}
	}
}
