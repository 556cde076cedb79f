package test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/outpost-iot/outpost/hub/console"
)

// consoleConfig is hubConfig with the console on a free loopback port and
// a forward rule with the uplink off, so the durable queue fills.
var consoleConfig = strings.Replace(hubConfig, `http: {listen: "off"}`, `http: {listen: "127.0.0.1:0"}`, 1) + `
uplink:
  enabled: false
  forward:
    - {filter: "sensors/#", qos: 1, remote_prefix: "sites/test/"}
`

func needConsoleConfig(t *testing.T) {
	if !strings.Contains(consoleConfig, `http: {listen: "127.0.0.1:0"}`) {
		t.Fatalf("hubConfig no longer has the line http: {listen: \"off\"} that consoleConfig replaces:\n%s", hubConfig)
	}
}

// consoleClient talks to the console's API with a cookie jar, as a page.
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func newConsoleClient(t *testing.T, addr string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: "http://" + addr, hc: &http.Client{Jar: jar, Timeout: 15 * time.Second}}
}

func (c *consoleClient) get(path string, v any) int {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func (c *consoleClient) post(path, body string, v any) int {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("POST %s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func connectPaho(t *testing.T, addr, id string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestConsoleAPIThroughHub runs the real binary and uses every console
// endpoint against the real parts: live sensor values, the topic tree, a
// paho client counted as connected, a test message published through the
// console reaching that client, metrics and health.
func TestConsoleAPIThroughHub(t *testing.T) {
	needConsoleConfig(t)
	p := startOutpost(t, consoleConfig)
	web := p.addr("web console")
	c := newConsoleClient(t, web)

	var sess struct {
		LoginRequired bool   `json:"login_required"`
		CSRF          string `json:"csrf"`
	}
	if c.get("/api/session", &sess) != 200 || sess.LoginRequired || sess.CSRF == "" {
		t.Fatalf("session = %+v", sess)
	}
	c.csrf = sess.CSRF

	// A paho client subscribes to what the console will publish.
	got := make(chan string, 4)
	cl := connectPaho(t, p.addr("MQTT broker"), "console-api-client")
	if tok := cl.Subscribe("test/console", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	type value struct {
		Quantity string  `json:"quantity"`
		Value    float64 `json:"value"`
		Unit     string  `json:"unit"`
	}
	eventually(t, 15*time.Second, func() error {
		var ss []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Last  *struct {
				Values []value `json:"values"`
			} `json:"last"`
		}
		c.get("/api/sensors", &ss)
		if len(ss) != 1 || ss[0].Name != "mast" || ss[0].State != "ok" || ss[0].Last == nil || len(ss[0].Last.Values) != 3 {
			return fmt.Errorf("sensors %+v", ss)
		}
		if v := ss[0].Last.Values[0]; v.Quantity != "temperature" || v.Unit != "°C" || v.Value < 0 || v.Value > 50 {
			return fmt.Errorf("temperature %+v", v)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		var h struct {
			Series []struct {
				Quantity string       `json:"quantity"`
				Points   [][2]float64 `json:"points"`
			} `json:"series"`
		}
		c.get("/api/sensors/mast/history", &h)
		if len(h.Series) != 3 || len(h.Series[0].Points) == 0 {
			return fmt.Errorf("history %+v", h)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		var tl struct {
			Topics []struct {
				Topic   string `json:"topic"`
				Payload string `json:"payload"`
			} `json:"topics"`
		}
		c.get("/api/topics?filter=sensors/", &tl)
		for _, tp := range tl.Topics {
			if tp.Topic == "sensors/mast" && strings.Contains(tp.Payload, `"temperature"`) {
				return nil
			}
		}
		return fmt.Errorf("sensors/mast not in the topic tree: %+v", tl)
	})
	eventually(t, 10*time.Second, func() error {
		var o struct {
			Broker struct {
				Connected int64 `json:"clients_connected"`
			} `json:"broker"`
			Uplink struct {
				State string `json:"state"`
			} `json:"uplink"`
			SensorsOK int  `json:"sensors_ok"`
			Healthy   bool `json:"healthy"`
		}
		c.get("/api/overview", &o)
		if o.Broker.Connected != 1 || o.Uplink.State != "disabled" || o.SensorsOK != 1 || !o.Healthy {
			return fmt.Errorf("overview %+v", o)
		}
		return nil
	})
	var cls struct {
		Connected int64          `json:"connected"`
		MQTTSN    map[string]int `json:"mqttsn"`
	}
	if c.get("/api/clients", &cls) != 200 || cls.Connected != 1 || cls.MQTTSN == nil {
		t.Errorf("clients = %+v", cls)
	}
	// The forward rule queues the sensor's readings (the uplink is off).
	eventually(t, 10*time.Second, func() error {
		var q struct {
			Depth int64 `json:"depth"`
			Lanes []struct {
				Lane  string `json:"lane"`
				Depth int64  `json:"depth"`
			} `json:"lanes"`
		}
		c.get("/api/queue", &q)
		if q.Depth < 2 || len(q.Lanes) != 1 || q.Lanes[0].Lane != "p0" {
			return fmt.Errorf("queue %+v", q)
		}
		return nil
	})
	var recs []struct {
		Lane    string `json:"lane"`
		Seq     uint64 `json:"seq"`
		Topic   string `json:"topic"`
		QoS     byte   `json:"qos"`
		Payload string `json:"payload"`
	}
	if c.get("/api/queue/peek?n=2", &recs) != 200 || len(recs) != 2 || recs[0].Seq >= recs[1].Seq {
		t.Errorf("peek = %+v", recs)
	}
	reading := false
	for _, r := range recs {
		reading = reading || (r.Topic == "sites/test/sensors/mast" && r.QoS == 1 && strings.Contains(r.Payload, `"temperature"`))
	}
	if !reading {
		t.Errorf("no queued reading of sensors/mast under the remote prefix in %+v", recs)
	}
	var u struct {
		State string `json:"state"`
	}
	if c.get("/api/uplink", &u) != 200 || u.State != "disabled" {
		t.Errorf("uplink = %+v", u)
	}

	// Actions: publish reaches the paho client; read-sensor reads; purge.
	if st := c.post("/api/actions/publish", `{"topic":"test/console","payload":"from the console","qos":1,"confirm":true}`, nil); st != 200 {
		t.Fatalf("publish: %d", st)
	}
	select {
	case m := <-got:
		if m != "from the console" {
			t.Errorf("paho got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the console's message did not reach the paho client")
	}
	var rd struct {
		Values []value `json:"values"`
	}
	if st := c.post("/api/actions/read-sensor", `{"name":"mast","confirm":true}`, &rd); st != 200 || len(rd.Values) != 3 {
		t.Errorf("read-sensor: %d %+v", st, rd)
	}
	var pr struct {
		Purged int64 `json:"purged"`
	}
	if st := c.post("/api/actions/purge", `{"lane":"","confirm":true}`, &pr); st != 200 || pr.Purged < 2 {
		t.Errorf("purge: %d %+v", st, pr)
	}

	// Forged: a fresh client with no session; and a too-large body.
	if st := newConsoleClient(t, web).post("/api/actions/publish", `{"topic":"test/console","payload":"forged","confirm":true}`, nil); st != 403 {
		t.Errorf("forged publish: %d, want 403", st)
	}
	if st := c.post("/api/actions/publish", `{"topic":"test/console","confirm":true,"payload":"`+strings.Repeat("x", 100<<10)+`"}`, nil); st != 413 {
		t.Errorf("oversized publish: %d, want 413", st)
	}
	select {
	case m := <-got:
		t.Errorf("a refused publish arrived: %q", m)
	case <-time.After(300 * time.Millisecond):
	}
	// The hub's log reaches the test through a pipe: poll for the lines.
	eventually(t, 5*time.Second, func() error {
		for _, l := range []string{"console published a message", "console read a sensor", "console purged the queue", "console action refused"} {
			if !strings.Contains(p.out.String(), l) {
				return fmt.Errorf("%q not in the hub's log", l)
			}
		}
		return nil
	})

	// Metrics, health, events.
	resp, err := http.Get("http://" + web + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"outpost_broker_clients_connected 1", `outpost_sensor_value{quantity="temperature",sensor="mast",unit="°C"}`, "outpost_queue_syncs_total", "process_resident_memory_bytes"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	resp, err = http.Get("http://" + web + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+web+"/api/events", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	seen := map[string]bool{}
	for sc.Scan() && !(seen["overview"] && seen["readings"]) {
		if n, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			seen[n] = true
		}
	}
	if !seen["overview"] || !seen["readings"] {
		t.Errorf("events seen: %v", seen)
	}
}

// TestConsoleInChromium loads the console in a real headless Chromium
// driven over the DevTools protocol, waits until live sensor values and the
// connected paho test client show in the DOM, and with
// UPDATE_SCREENSHOT=1 saves docs/console.png (not an OUTPOST_* name: the
// hub refuses unknown OUTPOST_* variables):
//
//	UPDATE_SCREENSHOT=1 go test -run TestConsoleInChromium ./test/
func TestConsoleInChromium(t *testing.T) {
	chromium := findChromium(t)
	needConsoleConfig(t)
	screenshot := os.Getenv("UPDATE_SCREENSHOT") == "1"
	p := startOutpost(t, consoleConfig)
	web := p.addr("web console")
	connectPaho(t, p.addr("MQTT broker"), "console-e2e-client")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b := startChromium(ctx, t, chromium)
	if err := b.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.call(ctx, "Page.navigate", map[string]any{"url": "http://" + web + "/#overview"}, nil); err != nil {
		t.Fatal(err)
	}

	// Live values: the sensor card's temperature (filled from the SSE
	// stream) and the overview's count of connected clients. When the
	// broker lists its sessions, the client's own row must show as well.
	var detail struct {
		Detail bool `json:"detail"`
	}
	newConsoleClient(t, web).get("/api/clients", &detail)
	check := `(() => { try {
	  const v = document.querySelector('[data-sensor="mast"][data-quantity="temperature"] b');
	  const live = document.getElementById("live").textContent;
	  const n = document.getElementById("o-clients").textContent;
	  const row = document.querySelector('#c-rows [data-client="console-e2e-client"]');
	  return JSON.stringify({temp: v ? v.textContent : "", live, clients: n, row: !!row});
	} catch (e) { return JSON.stringify({error: String(e)}); } })()`
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s string
		if err := b.eval(ctx, check, &s); err != nil {
			t.Fatal(err)
		}
		last = s
		var st struct {
			Temp, Live, Clients string
			Row                 bool
		}
		json.Unmarshal([]byte(s), &st)
		if regexp.MustCompile(`^-?[0-9.,]+ °C$`).MatchString(st.Temp) && st.Live == "live" && st.Clients == "1" && (st.Row || !detail.Detail) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not show live values and the client within 30s; last DOM state %s\nhub output:\n%s", last, p.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("DOM: %s", last)

	if screenshot {
		// Let the plots gather some points first.
		time.Sleep(20 * time.Second)
		var shot struct {
			Data string `json:"data"`
		}
		if err := b.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
			t.Fatal(err)
		}
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join("..", "docs", "console.png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}

// browser is a headless Chromium with one page, driven over the DevTools
// protocol (JSON over a WebSocket) with no browser-automation library.
type browser struct {
	conn *websocket.Conn
	id   int
}

func startChromium(ctx context.Context, t *testing.T, bin string) *browser {
	t.Helper()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // chromium and its helper processes
		cmd.Wait()
	})
	wsRE := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
	var browserWS string
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := wsRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case browserWS = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not print its DevTools address within 30s")
	}
	// The page target of about:blank.
	hostPort := strings.TrimPrefix(browserWS, "ws://")
	hostPort = hostPort[:strings.Index(hostPort, "/")]
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	eventually(t, 10*time.Second, func() error {
		resp, err := http.Get("http://" + hostPort + "/json/list")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		targets = nil
		if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
			return err
		}
		for _, tg := range targets {
			if tg.Type == "page" {
				return nil
			}
		}
		return errors.New("no page target yet")
	})
	var pageWS string
	for _, tg := range targets {
		if tg.Type == "page" {
			pageWS = tg.WS
			break
		}
	}
	conn, _, err := websocket.Dial(ctx, pageWS, nil)
	if err != nil {
		t.Fatalf("devtools websocket: %v", err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	t.Cleanup(func() { conn.CloseNow() })
	return &browser{conn: conn}
}

// call sends one DevTools command and waits for its answer, skipping events.
func (b *browser) call(ctx context.Context, method string, params any, result any) error {
	b.id++
	id := b.id
	req, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err := b.conn.Write(ctx, websocket.MessageText, req); err != nil {
		return fmt.Errorf("devtools %s: %w", method, err)
	}
	for {
		_, data, err := b.conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("devtools %s: %w", method, err)
		}
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &resp); err != nil || resp.ID != id {
			continue
		}
		if resp.Error != nil {
			return fmt.Errorf("devtools %s: %s", method, resp.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(resp.Result, result)
		}
		return nil
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func (b *browser) eval(ctx context.Context, expr string, v any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluate: %s", r.Exception.Text)
	}
	if len(r.Result.Value) == 0 {
		return errors.New("evaluate: no value")
	}
	return json.Unmarshal(r.Result.Value, v)
}

// TestConsolePageFollowsUplinkFlapping serves the console with fake
// sources whose uplink goes off, on and flaps, and checks in Chromium that
// the page shows every state (and its reason) within a few seconds.
func TestConsolePageFollowsUplinkFlapping(t *testing.T) {
	chromium := findChromium(t)
	var mu sync.Mutex
	up := console.UplinkState{State: "disabled"}
	c, err := console.New(console.Sources{
		Version: "test",
		Broker:  func() console.BrokerStats { return console.BrokerStats{ClientsConnected: 2} },
		Uplink: func() console.UplinkState {
			mu.Lock()
			defer mu.Unlock()
			return up
		},
		Queue: func() console.QueueState { return console.QueueState{Depth: 3} },
	}, console.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(runCtx) }()
	srv := httptest.NewServer(c)
	defer func() {
		stopRun()
		<-runDone
		srv.Close()
	}()

	b := startChromium(ctx, t, chromium)
	if err := b.call(ctx, "Page.navigate", map[string]any{"url": srv.URL + "/#overview"}, nil); err != nil {
		t.Fatal(err)
	}
	shown := func() (state, reason string) {
		var s string
		if err := b.eval(ctx, `(() => { try { return document.getElementById("o-uplink-state").textContent + "|" + document.getElementById("o-uplink-err").textContent } catch (e) { return "|" } })()`, &s); err != nil {
			t.Fatal(err)
		}
		state, reason, _ = strings.Cut(s, "|")
		return state, reason
	}
	steps := []console.UplinkState{
		{State: "disabled"},
		{Enabled: true, State: "connecting"},
		{Enabled: true, State: "connected", LastConnect: time.Now()},
		{Enabled: true, State: "disconnected", LastError: "read: connection reset by peer", LastDisconnect: time.Now()},
		{Enabled: true, State: "connected", LastError: "flap 1"},
		{Enabled: true, State: "disconnected", LastError: "flap 2"},
		{Enabled: true, State: "connected", LastError: "flap 3"},
	}
	for _, st := range steps {
		mu.Lock()
		up = st
		mu.Unlock()
		start := time.Now()
		wantReason := st.LastError
		if wantReason == "" {
			wantReason = "–"
		}
		for {
			s, r := shown()
			if s == st.State && r == wantReason {
				t.Logf("%s (%s) shown after %v", st.State, wantReason, time.Since(start).Round(10*time.Millisecond))
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("page shows %q (%q), want %q (%q)", s, r, st.State, wantReason)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian: apt-get install -y chromium; test/run.sh installs it)")
	return ""
}
