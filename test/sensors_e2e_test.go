package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// sensorsConfig is a hub with one simulated sensor of each kind issue 6
// names, all on emulated buses, plus one whose chip has vanished (NACK).
// Resolutions the checks below rely on:
//   - bme280 at oversampling 1: 16-bit raw values, temperature 0.005 °C,
//     humidity 0.008 %RH, pressure 2.62 Pa (BST-BME280-DS002 section 3.4.1,
//     table 3 and 4);
//   - ds18b20 at resolution 10: 0.25 °C steps (datasheet table 2);
//   - ina219: bus voltage LSB 4 mV, shunt voltage LSB 10 µV (0.1 mA over
//     0.1 Ω), current LSB max_current/32768 (SBOS448G page 12, 18-19).
const sensorsConfig = `
data_dir: %DATA%
http: {listen: "off"}
broker:
  listeners:
    - address: "127.0.0.1:0"
mqttsn: {enabled: false}
sensors:
  - name: mast
    driver: bme280
    bus: {type: i2c, name: "SIM-I2C1", address: 0x76}
    interval: 200ms
    qos: 1
    retain: true
    simulate: {temperature: 21.5, humidity: 40, pressure: 101325}
  - name: water
    driver: ds18b20
    bus: {type: onewire, name: "w1"}
    interval: 300ms
    retain: true
    options: {resolution: 10}
    simulate: {temperature: 11.3}
  - name: battery
    driver: ina219
    bus: {type: i2c, name: "1", address: 0x40}
    interval: 200ms
    retain: true
    plain_topics: true
    simulate: {voltage: 12.6, current: 0.35}
  - name: rain
    driver: gpio-counter
    bus: {type: gpio, name: "GPIO17"}
    interval: 200ms
    retain: true
    options: {scale: 0.2794, unit: mm, debounce: 5ms}
    simulate: {rate: RAINRATE}
  - name: pump
    driver: gpio-output
    bus: {type: gpio, name: "GPIO27"}
    interval: 200ms
    retain: true
    simulate: {}
  - name: attic
    driver: bme280
    bus: {type: i2c, name: "1", address: 0x77}
    interval: 200ms
    retain: true
    simulate: {temperature: 30, fault: nack}
`

func sensorsCfg(rainPerMinute int) string {
	return strings.Replace(sensorsConfig, "RAINRATE", strconv.Itoa(rainPerMinute), 1)
}

// quantity is one quantity of the documented payload (adapters package doc).
type quantity struct {
	Value *float64 `json:"value"`
	Unit  *string  `json:"unit"`
}

// reading is a parsed sensor payload: its time and its quantities.
type reading struct {
	Time time.Time
	Q    map[string]quantity
}

var payloadTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// parseReading checks a payload against the documented format:
// {"time":"<RFC 3339 UTC, milliseconds>","<quantity>":{"value":v,"unit":u},...}
func parseReading(payload string) (reading, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &raw); err != nil {
		return reading{}, fmt.Errorf("payload %q is not a JSON object: %v", payload, err)
	}
	var ts string
	if err := json.Unmarshal(raw["time"], &ts); err != nil || !payloadTimeRE.MatchString(ts) {
		return reading{}, fmt.Errorf("payload %q: time %s is not RFC 3339 UTC with milliseconds", payload, raw["time"])
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return reading{}, fmt.Errorf("payload %q: time: %v", payload, err)
	}
	r := reading{Time: t, Q: map[string]quantity{}}
	for k, v := range raw {
		if k == "time" {
			continue
		}
		var q quantity
		dec := json.NewDecoder(strings.NewReader(string(v)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil {
			return reading{}, fmt.Errorf("payload %q: quantity %s: %v", payload, k, err)
		}
		if q.Value == nil {
			return reading{}, fmt.Errorf("payload %q: quantity %s has no value", payload, k)
		}
		r.Q[k] = q
	}
	return r, nil
}

// check asserts that quantity name is want±tol in unit ("" = no unit key).
func (r reading) check(name, unit string, want, tol float64) error {
	q, ok := r.Q[name]
	if !ok {
		return fmt.Errorf("no %s in reading %+v", name, r.Q)
	}
	switch {
	case unit == "" && q.Unit != nil:
		return fmt.Errorf("%s: unit %q, want none (dimensionless)", name, *q.Unit)
	case unit != "" && (q.Unit == nil || *q.Unit != unit):
		return fmt.Errorf("%s: unit %v, want %q", name, q.Unit, unit)
	case math.Abs(*q.Value-want) > tol:
		return fmt.Errorf("%s = %v, want %v ± %v", name, *q.Value, want, tol)
	}
	return nil
}

// checkSensor checks one reading of a sensor of sensorsConfig: the
// quantities, units and values the simulation was configured with, each
// within the chip's resolution, and a time within the last minute.
func checkSensor(name, payload string) error {
	r, err := parseReading(payload)
	if err != nil {
		return err
	}
	if age := time.Since(r.Time); age < -2*time.Second || age > time.Minute {
		return fmt.Errorf("%s: reading time %v is %v from now", name, r.Time, age)
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	want := 0
	switch name {
	case "mast":
		want = 3
		add(r.check("temperature", "°C", 21.5, 0.01))
		add(r.check("humidity", "%", 40, 0.01))
		add(r.check("pressure", "Pa", 101325, 2.62))
	case "water":
		want = 1
		add(r.check("temperature", "°C", 11.3, 0.25))
		if v := *r.Q["temperature"].Value; v*4 != math.Trunc(v*4) {
			add(fmt.Errorf("water temperature %v is not a multiple of 0.25 °C (resolution: 10)", v))
		}
	case "battery":
		want = 3
		add(r.check("voltage", "V", 12.6, 0.004))
		add(r.check("current", "A", 0.35, 0.0002))
		add(r.check("power", "W", 12.6*0.35, 0.01))
	case "rain":
		want = 3
		add(r.check("pulses", "pulses", 0, math.Inf(1)))
		add(r.check("rate", "mm/min", 0, math.Inf(1)))
		if q, ok := r.Q["pulses"]; ok {
			add(r.check("total", "mm", *q.Value*0.2794, 1e-4))
		}
	case "pump":
		want = 1
		add(r.check("state", "", 0, 1))
	default:
		return fmt.Errorf("no checks for sensor %s", name)
	}
	if len(r.Q) != want {
		add(fmt.Errorf("%d quantities, want %d", len(r.Q), want))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %v (payload %s)", name, errs, payload)
	}
	return nil
}

// collector keeps every message of a paho subscription, appended from
// paho's callback without blocking it (pahoSubscribe's channel holds 16,
// too few for a hub full of sensors), so a test can wait for the one it wants.
type collector struct {
	mu   sync.Mutex
	msgs []pahoMsg
}

func collect(t *testing.T, c mqtt.Client, filter string, qos byte) *collector {
	t.Helper()
	col := &collector{}
	tok := c.Subscribe(filter, qos, func(_ mqtt.Client, m mqtt.Message) {
		col.mu.Lock()
		col.msgs = append(col.msgs, pahoMsg{m.Topic(), string(m.Payload()), m.Qos(), m.Retained()})
		col.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho subscribe %s: %v", filter, tok.Error())
	}
	return col
}

// since returns the messages from index i on, and the next index.
func (c *collector) since(i int) ([]pahoMsg, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pahoMsg(nil), c.msgs[i:]...), len(c.msgs)
}

// wait polls until f accepts a message received at or after index from,
// and returns it with the index after it.
func (c *collector) wait(t *testing.T, d time.Duration, from int, what string, f func(pahoMsg) bool) (pahoMsg, int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ms, _ := c.since(from)
		for i, m := range ms {
			if f(m) {
				return m, from + i + 1
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; got %d messages since #%d: %v", what, d, len(ms), from, tail(ms, 12))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(ms []pahoMsg, n int) []pahoMsg {
	if len(ms) > n {
		return ms[len(ms)-n:]
	}
	return ms
}

// TestSensorsE2EReadings runs the binary with one simulated sensor of each
// kind and reads them with paho.mqtt.golang and mosquitto_sub: the
// documented payload with values near the simulated ones, retained last
// values for a late subscriber, plain topics, a vanished chip's retained
// error status while the others keep publishing, and a relay switched over
// its command topic.
func TestSensorsE2EReadings(t *testing.T) {
	needTool(t, "mosquitto_sub")
	p := startOutpost(t, sensorsCfg(300))
	for _, s := range []string{
		"sensor mast (bme280, simulated) publishing to sensors/mast every 200ms",
		"sensor water (ds18b20, simulated) publishing to sensors/water every 300ms",
		"sensor battery (ina219, simulated) publishing to sensors/battery every 200ms",
		"sensor rain (gpio-counter, simulated) publishing to sensors/rain every 200ms",
		"sensor pump (gpio-output, simulated) publishing to sensors/pump every 200ms",
	} {
		if !strings.Contains(p.out.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, p.out.String())
		}
	}
	addr := p.addr("MQTT broker")
	paho := pahoClient(t, addr, "sensors-watch")
	all := collect(t, paho, "sensors/#", 1)

	// Every working sensor publishes live readings in the documented format,
	// at its configured QoS (mast: 1, the others 0).
	for _, name := range []string{"mast", "water", "battery", "rain", "pump"} {
		m, _ := all.wait(t, 10*time.Second, 0, "live reading of "+name, func(m pahoMsg) bool {
			return m.topic == "sensors/"+name && !m.retained
		})
		if err := checkSensor(name, m.payload); err != nil {
			t.Error(err)
		}
		if wantQoS := map[string]byte{"mast": 1}[name]; m.qos != wantQoS {
			t.Errorf("%s reading at QoS %d, want %d", name, m.qos, wantQoS)
		}
	}
	// plain_topics: each quantity as a bare number as well.
	m, _ := all.wait(t, 5*time.Second, 0, "sensors/battery/voltage", func(m pahoMsg) bool { return m.topic == "sensors/battery/voltage" })
	if v, err := strconv.ParseFloat(m.payload, 64); err != nil || math.Abs(v-12.6) > 0.004 {
		t.Errorf("sensors/battery/voltage = %q, want a bare number near 12.6", m.payload)
	}

	// The same readings through mosquitto_sub.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := mosquittoSub(ctx, t, addr, "-t", "sensors/+", "-v", "-R", "-C", "10", "-W", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		topic, payload, _ := strings.Cut(l, " ")
		name := strings.TrimPrefix(topic, "sensors/")
		if name == "attic" {
			t.Errorf("mosquitto_sub got a reading from the vanished sensor: %q", l)
			continue
		}
		if err := checkSensor(name, payload); err != nil {
			t.Errorf("mosquitto_sub: %v", err)
		}
	}

	// The vanished chip: a retained "error: ..." status naming the cause,
	// delivered to a late subscriber; the other sensors keep publishing.
	st, _ := all.wait(t, 10*time.Second, 0, "error status of attic", func(m pahoMsg) bool {
		return m.topic == "sensors/attic/status" && strings.HasPrefix(m.payload, "error: ")
	})
	if !strings.Contains(st.payload, "not acknowledged") || !strings.Contains(st.payload, "0x77") {
		t.Errorf("attic status %q does not say the chip at 0x77 did not answer", st.payload)
	}
	out, err = mosquittoSub(ctx, t, addr, "-t", "sensors/attic/status", "--retained-only", "-C", "1", "-W", "5").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "error: ") {
		t.Errorf("late subscriber to sensors/attic/status: %v %q, want the retained error", err, out)
	}
	_, mark := all.since(0)
	for _, name := range []string{"mast", "water", "battery", "rain", "pump"} {
		all.wait(t, 5*time.Second, mark, "reading of "+name+" after attic failed", func(m pahoMsg) bool {
			return m.topic == "sensors/"+name && !m.retained
		})
	}
	for _, name := range []string{"mast", "water", "battery", "rain", "pump"} {
		m, _ := all.wait(t, time.Second, 0, name+" status", func(m pahoMsg) bool { return m.topic == "sensors/"+name+"/status" })
		if m.payload != "online" {
			t.Errorf("sensors/%s/status = %q, want online", name, m.payload)
		}
	}
	ms, _ := all.since(0)
	for _, m := range ms {
		if m.topic == "sensors/attic" {
			t.Errorf("a reading from the vanished sensor: %+v", m)
		}
	}

	// A late subscriber gets the retained last reading, flagged retained.
	late := pahoClient(t, addr, "sensors-late")
	r := waitPaho(t, pahoSubscribe(t, late, "sensors/mast", 1))
	if !r.retained || r.topic != "sensors/mast" {
		t.Errorf("late subscriber's first message %+v, want the retained reading", r)
	}
	if err := checkSensor("mast", r.payload); err != nil {
		t.Errorf("retained reading: %v", err)
	}

	// The relay: commands on sensors/pump/set, the new state reported.
	_, mark = all.since(0)
	for _, c := range []struct {
		cmd   string
		state float64
	}{{"on", 1}, {"toggle", 0}, {`{"state":"on"}`, 1}, {"off", 0}} {
		mosquittoPub(t, addr, "-t", "sensors/pump/set", "-m", c.cmd)
		var got pahoMsg
		got, mark = all.wait(t, 5*time.Second, mark, fmt.Sprintf("pump state %v after %q", c.state, c.cmd), func(m pahoMsg) bool {
			if m.topic != "sensors/pump" {
				return false
			}
			r, err := parseReading(m.payload)
			return err == nil && r.check("state", "", c.state, 0) == nil
		})
		if err := checkSensor("pump", got.payload); err != nil {
			t.Error(err)
		}
	}
}

// TestSensorsE2ERainTotalSurvivesRestart: the rain gauge's total is kept in
// the data directory across a stop and start of the binary.
func TestSensorsE2ERainTotalSurvivesRestart(t *testing.T) {
	rainOnly := func(rate int) string {
		cfg := sensorsCfg(rate)
		i := strings.Index(cfg, "  - name: rain")
		j := strings.Index(cfg, "  - name: pump")
		return cfg[:strings.Index(cfg, "  - name: mast")] + cfg[i:j]
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// 600 tips a minute: a tip every 100 ms.
	p := startOutpostIn(t, dir, data, rainOnly(600))
	c := collect(t, pahoClient(t, p.addr("MQTT broker"), "rain-1"), "sensors/rain/#", 1)
	var before reading
	_, next := c.wait(t, 10*time.Second, 0, "a rain total of 5 tips or more", func(m pahoMsg) bool {
		if m.topic != "sensors/rain" || m.retained {
			return false
		}
		r, err := parseReading(m.payload)
		if err != nil {
			return false
		}
		before = r
		return *r.Q["pulses"].Value >= 5
	})
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.out.String())
	}
	// A clean stop says so on the status topic before the listeners close.
	c.wait(t, 2*time.Second, next, "sensors/rain/status offline", func(m pahoMsg) bool {
		return m.topic == "sensors/rain/status" && m.payload == "offline"
	})
	// Restarted with no more rain: the total must carry on from where it was.
	cfg := rainOnly(0)
	p = startOutpostIn(t, dir, data, cfg)
	c = collect(t, pahoClient(t, p.addr("MQTT broker"), "rain-2"), "sensors/rain", 1)
	m, _ := c.wait(t, 10*time.Second, 0, "a live rain reading after the restart", func(m pahoMsg) bool { return !m.retained })
	after, err := parseReading(m.payload)
	if err != nil {
		t.Fatal(err)
	}
	pb, pa := *before.Q["pulses"].Value, *after.Q["pulses"].Value
	if pa < pb {
		t.Fatalf("after the restart pulses = %v, below the %v published before it: the count was lost (%s)", pa, pb, m.payload)
	}
	if err := after.check("total", "mm", pa*0.2794, 1e-4); err != nil {
		t.Error(err)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// `outpost sensors read` reads the same state directory.
	out, err := exec.Command(outpostBin, "sensors", "read", "-c", p.cfgPath, "rain").CombinedOutput()
	if err != nil {
		t.Fatalf("outpost sensors read rain: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("%.4g mm", pa*0.2794); !strings.Contains(string(out), want) {
		t.Errorf("outpost sensors read rain:\n%s\nwant the kept total %s", out, want)
	}
}

// TestSensorsE2EDeadband: with a deadband no reading moves past, a sensor
// polled every 200 ms publishes only every max_interval.
func TestSensorsE2EDeadband(t *testing.T) {
	cfg := sensorsConfig[:strings.Index(sensorsConfig, "  - name: mast")] + `  - name: tank
    driver: bme280
    bus: {type: i2c, name: "2", address: 0x76}
    interval: 200ms
    deadband: {temperature: 1, humidity: 50, pressure: 1000}
    max_interval: 1s
    simulate: {temperature: 20, humidity: {base: 50, noise: 0.5}, pressure: 90000}
`
	p := startOutpost(t, cfg)
	c := collect(t, pahoClient(t, p.addr("MQTT broker"), "deadband"), "sensors/tank", 1)
	var times []time.Time
	next := 0
	for len(times) < 3 {
		var m pahoMsg
		m, next = c.wait(t, 5*time.Second, next, "a tank reading", func(pahoMsg) bool { return true })
		r, err := parseReading(m.payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.check("temperature", "°C", 20, 0.01); err != nil {
			t.Error(err)
		}
		times = append(times, r.Time)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 950*time.Millisecond || gap > 3*time.Second {
			t.Errorf("readings %v apart, want about max_interval (1s) with a 200ms interval: %v", gap, times)
		}
	}
}

// TestSensorsE2EBadConfig: `outpost config check` and `outpost run` both
// refuse a bad sensors list, naming the sensor (its index and line) and the
// problem.
func TestSensorsE2EBadConfig(t *testing.T) {
	head := "data_dir: %s\nhttp: {listen: \"off\"}\nbroker:\n  listeners:\n    - address: \"127.0.0.1:0\"\nmqttsn: {enabled: false}\nsensors:\n"
	ok := "  - name: mast\n    driver: bme280\n    bus: {type: i2c, name: \"1\", address: 0x76}\n    simulate: {}\n"
	cases := []struct {
		name    string
		sensors string
		want    []string
		needs   string
	}{
		{"unknown driver", ok + "  - name: tank\n    driver: bme281\n    bus: {type: i2c, name: \"1\", address: 0x77}\n    simulate: {}\n",
			[]string{`:12: sensors[1]: unknown driver "bme281" (known: `, "bme280"}, ""},
		{"address out of range", ok + "  - name: tank\n    driver: ina219\n    bus: {type: i2c, name: \"2\", address: 0x76}\n    simulate: {}\n",
			[]string{`:12: sensors[1]: i2c address 0x76 out of range for ina219 (0x40-0x4f)`}, ""},
		{"7-bit address out of range", ok + "  - name: tank\n    driver: bme280\n    bus: {type: i2c, name: \"2\", address: 0x78}\n    simulate: {}\n",
			[]string{`:12: sensors[1]: i2c address 0x78 out of range: 7-bit addresses are 0x08-0x77`}, ""},
		{"two sensors on one address", ok + "  - name: tank\n    driver: bme280\n    bus: {type: i2c, name: \"1\", address: 0x76}\n    simulate: {}\n",
			[]string{`:12: sensors[1]: same i2c bus 1 at address 0x76 as sensor "mast"`}, ""},
		{"hardware bus missing", ok + "  - name: attic\n    driver: bme280\n    bus: {type: i2c, name: \"7\", address: 0x77}\n",
			[]string{`sensors[1]`, `i2c bus "7" does not exist on this machine`}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs != "" {
				t.Skip(tc.needs)
			}
			dir := t.TempDir()
			cfg := filepath.Join(dir, "outpost.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(head, filepath.Join(dir, "data"))+tc.sensors), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"config", "check", "-c", cfg}, {"run", "-c", cfg}} {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				out, err := exec.CommandContext(ctx, outpostBin, args...).CombinedOutput()
				timedOut := ctx.Err() != nil
				cancel()
				if err == nil {
					t.Errorf("outpost %s accepted the config:\n%s", args[0], out)
					continue
				}
				if timedOut {
					t.Errorf("outpost %s did not exit within 15s:\n%s", args[0], out)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("outpost %s output lacks %q:\n%s", args[0], w, out)
					}
				}
				if strings.Contains(string(out), "listening on") {
					t.Errorf("outpost %s started listening with a bad sensors list:\n%s", args[0], out)
				}
			}
		})
	}
}

// TestSensorsE2ECommands: `outpost sensors list`, `read` and `scan` on the
// sensors config.
func TestSensorsE2ECommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "outpost.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(sensorsCfg(0), "%DATA%", filepath.Join(dir, "data"))), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, outpostBin, args...).CombinedOutput()
		return string(out), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("outpost %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	matches := func(out string, res ...string) {
		t.Helper()
		for _, re := range res {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("output lacks /%s/:\n%s", re, out)
			}
		}
	}

	out := mustRun("sensors", "list", "-c", cfg)
	matches(out, `NAME\s+DRIVER\s+BUS\s+TOPIC\s+INTERVAL\s+MODE`,
		`(?m)^mast\s+bme280\s+i2c SIM-I2C1 @0x76\s+sensors/mast\s+200ms\s+simulated$`,
		`(?m)^water\s+ds18b20\s+onewire w1\s+sensors/water\s+300ms\s+simulated$`,
		`(?m)^battery\s+ina219\s+i2c 1 @0x40\s+sensors/battery\s+200ms\s+simulated$`,
		`(?m)^rain\s+gpio-counter\s+gpio GPIO17\s+sensors/rain\s+200ms\s+simulated$`,
		`(?m)^pump\s+gpio-output\s+gpio GPIO27\s+sensors/pump\s+200ms\s+simulated$`,
		`(?m)^attic\s+bme280\s+i2c 1 @0x77\s+sensors/attic\s+200ms\s+simulated$`)

	// Human units: °C, %, hPa; V and mA.
	out = mustRun("sensors", "read", "-c", cfg, "mast")
	matches(out, `(?m)^mast\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`, `(?m)^\s+temperature\s+21\.50 °C$`,
		`(?m)^\s+humidity\s+40\.0 %$`, `(?m)^\s+pressure\s+1013\.2\d hPa$`)
	out = mustRun("sensors", "read", "-c", cfg, "battery")
	matches(out, `(?m)^\s+voltage\s+12\.60\d V$`, `(?m)^\s+current\s+(349\.[89]|350\.[01]) mA$`, `(?m)^\s+power\s+4\.4\d W$`)
	out = mustRun("sensors", "read", "-c", cfg, "water")
	matches(out, `(?m)^\s+temperature\s+11\.25 °C$`)

	// Failures name the sensor and the cause, with a non-zero exit.
	for _, c := range []struct{ name, want string }{
		{"attic", `sensor "attic": open i2c 1 @0x77: .*not acknowledged`},
		{"nosuch", `no sensor called "nosuch" \(have: mast, water, battery, rain, pump, attic\)`},
		{"pump", `sensor "pump" is an output`},
	} {
		out, err := run("sensors", "read", "-c", cfg, c.name)
		if err == nil {
			t.Errorf("outpost sensors read %s succeeded:\n%s", c.name, out)
		}
		matches(out, c.want)
	}

	// scan: no hardware here, the emulated buses and the chips that answer
	// (not the vanished one at 0x77).
	out = mustRun("sensors", "scan", "-c", cfg)
	matches(out, `Hardware buses \(periph\):`, `Simulated buses \(simulate: sensors\):`,
		`(?m)^\s+i2c\s+SIM-I2C1$`, `(?m)^\s+gpio\s+SIM-GPIO17, SIM-GPIO27$`,
		`(?m)^\s+i2c SIM-I2C1: 0x40\s+INA219`, `(?m)^\s+i2c SIM-I2C1: 0x76\s+BME280$`,
		`(?m)^\s+onewire SIM-W1-w1: 28-[0-9a-f]{12}$`)
	if strings.Contains(out, "0x77") {
		t.Errorf("scan lists the vanished chip at 0x77:\n%s", out)
	}
}
