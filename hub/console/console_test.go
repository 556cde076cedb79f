package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-iot/outpost/brokercore/auth"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

func decode[T any](t *testing.T, resp *http.Response, wantStatus int) T {
	t.Helper()
	var v T
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, wantStatus, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q", resp.Request.URL.Path, ct)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v: %s", resp.Request.URL.Path, err, b)
	}
	return v
}

// session gets a session cookie and CSRF token (no login).
func (r *rig) session() (*http.Cookie, string) {
	r.t.Helper()
	resp := r.do("GET", "/api/session", "", nil)
	s := decode[Session](r.t, resp, 200)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			ck = c
		}
	}
	if ck == nil || s.CSRF == "" {
		r.t.Fatalf("no session cookie or csrf: %+v", s)
	}
	return ck, s.CSRF
}

func TestReadEndpoints(t *testing.T) {
	r := newRig(t, Options{})
	// A sensor reading on the sensor's topic feeds the topic tree and the history.
	payload := `{"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","temperature":{"value":21.5,"unit":"°C"},"humidity":{"value":40.1,"unit":"%"},"state":{"value":null}}`
	if err := r.broker.Publish(context.Background(), msg.Message{Topic: "sensors/mast", Payload: []byte(payload), QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	r.broker.Publish(context.Background(), msg.Message{Topic: "$SYS/broker/uptime", Payload: []byte("5 seconds")})

	o := decode[struct {
		Overview
		Rates RateHistory `json:"rates"`
	}](t, r.do("GET", "/api/overview", "", nil), 200)
	if o.Version != "1.2.3" || o.Broker.ClientsConnected != 3 || o.Uplink.State != "connected" || o.Queue.Depth != 12 ||
		o.SensorsOK != 1 || !o.Healthy || o.Gateway == nil || o.Gateway.Clients["active"] != 1 || o.Uptime < Duration(time.Hour) {
		t.Errorf("overview = %+v", o)
	}

	tl := decode[TopicList](t, r.do("GET", "/api/topics", "", nil), 200)
	if tl.Total != 2 || tl.Max != DefaultMaxTopics || len(tl.Topics) != 2 || tl.Topics[0].Topic != "$SYS/broker/uptime" {
		t.Fatalf("topics = %+v", tl)
	}
	if m := tl.Topics[1]; m.Topic != "sensors/mast" || m.Payload != payload || !m.Retain || !m.Retained || m.QoS != 1 || m.Count != 1 || m.Rate <= 0 {
		t.Errorf("sensors/mast = %+v", m)
	}
	tl = decode[TopicList](t, r.do("GET", "/api/topics?filter=SYS", "", nil), 200)
	if len(tl.Topics) != 1 || tl.Total != 2 {
		t.Errorf("filtered topics = %+v", tl)
	}

	ss := decode[[]Sensor](t, r.do("GET", "/api/sensors", "", nil), 200)
	if len(ss) != 1 || ss[0].Name != "mast" || ss[0].Last.Values[0].Unit != "°C" || ss[0].Interval != Duration(10*time.Second) {
		t.Errorf("sensors = %+v", ss)
	}

	h := decode[History](t, r.do("GET", "/api/sensors/mast/history", "", nil), 200)
	if h.Sensor != "mast" || len(h.Series) != 2 || h.Series[0].Quantity != "temperature" || h.Series[0].Unit != "°C" ||
		len(h.Series[0].Points) != 1 || h.Series[0].Points[0][1] != 21.5 || h.Series[1].Quantity != "humidity" {
		t.Errorf("history = %+v", h)
	}
	h = decode[History](t, r.do("GET", "/api/sensors/mast/history?span=24h", "", nil), 200)
	if h.Resolution != Duration(time.Minute) || len(h.Series) != 2 {
		t.Errorf("24h history = %+v", h)
	}
	decode[apiError](t, r.do("GET", "/api/sensors/nope/history", "", nil), 404)
	decode[apiError](t, r.do("GET", "/api/sensors/mast/history?span=48h", "", nil), 400)

	cl := decode[Clients](t, r.do("GET", "/api/clients", "", nil), 200)
	if !cl.Detail || cl.Connected != 3 || len(cl.Sessions) != 1 || cl.Sessions[0].ID != "paho-1" || cl.Sessions[0].Subscriptions[0].Filter != "sensors/#" || cl.MQTTSN["active"] != 1 {
		t.Errorf("clients = %+v", cl)
	}

	q := decode[struct {
		QueueState
		History [][2]float64 `json:"history"`
	}](t, r.do("GET", "/api/queue", "", nil), 200)
	if q.Depth != 12 || q.ETA != Duration(6*time.Second) || len(q.Lanes) != 1 {
		t.Errorf("queue = %+v", q)
	}
	eventually(t, 5*time.Second, func() error { // the tick samples the depth
		q := decode[struct {
			History [][2]float64 `json:"history"`
		}](t, r.do("GET", "/api/queue", "", nil), 200)
		if len(q.History) == 0 || q.History[len(q.History)-1][1] != 12 {
			return fmt.Errorf("queue history %v", q.History)
		}
		return nil
	})

	recs := decode[[]QueueRecord](t, r.do("GET", "/api/queue/peek?n=5", "", nil), 200)
	if len(recs) != 1 || recs[0].Payload != "hello" || recs[0].Seq != 1 {
		t.Errorf("peek = %+v", recs)
	}
	decode[apiError](t, r.do("GET", "/api/queue/peek?n=1000", "", nil), 400)
	decode[apiError](t, r.do("GET", "/api/queue/peek?lane=p9", "", nil), 500)

	u := decode[UplinkState](t, r.do("GET", "/api/uplink", "", nil), 200)
	if u.State != "connected" || u.URL == "" || u.LastConnect.IsZero() {
		t.Errorf("uplink = %+v", u)
	}
	decode[apiError](t, r.do("GET", "/api/nothing", "", nil), 404)

	// The page and its assets.
	for _, p := range []string{"/", "/app.js", "/app.css"} {
		resp := r.do("GET", p, "", nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(b) < 500 {
			t.Errorf("GET %s: %d, %d bytes", p, resp.StatusCode, len(b))
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", p)
		}
	}
	if resp := r.do("POST", "/", "x", nil); resp.StatusCode != 405 {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
}

func TestHealthz(t *testing.T) {
	r := newRig(t, Options{})
	resp := r.do("GET", "/healthz", "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("healthz = %d %q", resp.StatusCode, b)
	}
	r.parts.set(func(f *fakeParts) { f.health = errors.New("broker not running") })
	resp = r.do("GET", "/healthz", "", nil)
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "broker not running") {
		t.Fatalf("healthz = %d %q", resp.StatusCode, b)
	}
	o := decode[Overview](t, r.do("GET", "/api/overview", "", nil), 200)
	if o.Healthy || o.Health != "broker not running" {
		t.Errorf("overview health = %v %q", o.Healthy, o.Health)
	}
}

func TestMetrics(t *testing.T) {
	r := newRig(t, Options{})
	r.broker.Publish(context.Background(), msg.Message{Topic: "a/b", Payload: []byte("1")})
	resp := r.do("GET", "/metrics", "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %s", resp.StatusCode, b)
	}
	for _, want := range []string{
		"outpost_broker_clients_connected 3",
		"outpost_broker_messages_received_total 100",
		`outpost_broker_messages_received_by_qos_total{qos="1"} 30`,
		`outpost_broker_dropped_messages_total{reason="queue_full"} 1`,
		`outpost_mqttsn_clients{state="active"} 1`,
		`outpost_sensor_up{driver="bme280",sensor="mast"} 1`,
		`outpost_sensor_value{quantity="temperature",sensor="mast",unit="°C"} 21.5`,
		`outpost_queue_depth{lane="p0"} 12`,
		`outpost_queue_oldest_age_seconds{lane="p0"} 90`,
		"outpost_uplink_connected 1",
		"outpost_console_topics 1",
		`outpost_build_info{version="1.2.3"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Read at scrape time: a change shows at the next scrape.
	r.parts.set(func(f *fakeParts) { f.uplink.State = "disconnected" })
	b, _ = io.ReadAll(r.do("GET", "/metrics", "", nil).Body)
	if !strings.Contains(string(b), "outpost_uplink_connected 0") {
		t.Error("uplink_connected did not follow the state")
	}
	// A private registry: nothing of ours in the global default one.
	mfs, _ := prometheus.DefaultGatherer.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "outpost_") {
			t.Errorf("%s registered in the global default registry", mf.GetName())
		}
	}
}

// TestActionsRefuseForgedRequests: without the session cookie, without or
// with a wrong CSRF token, or without confirm, nothing happens.
func TestActionsRefuseForgedRequests(t *testing.T) {
	r := newRig(t, Options{})
	ck, csrf := r.session()
	pub := `{"topic":"test/x","payload":"hi","qos":1,"confirm":true}`
	actions := []struct{ path, body string }{
		{"/api/actions/publish", pub},
		{"/api/actions/purge", `{"lane":"","confirm":true}`},
		{"/api/actions/read-sensor", `{"name":"mast","confirm":true}`},
	}
	for _, a := range actions {
		if resp := r.do("POST", a.path, a.body, map[string]string{csrfHeader: csrf}); resp.StatusCode != 403 {
			t.Errorf("%s without cookie: %d, want 403", a.path, resp.StatusCode)
		}
		if resp := r.do("POST", a.path, a.body, nil, ck); resp.StatusCode != 403 {
			t.Errorf("%s without CSRF header: %d, want 403", a.path, resp.StatusCode)
		}
		if resp := r.do("POST", a.path, a.body, map[string]string{csrfHeader: csrf + "x"}, ck); resp.StatusCode != 403 {
			t.Errorf("%s with a wrong CSRF token: %d, want 403", a.path, resp.StatusCode)
		}
		forged := &http.Cookie{Name: cookieName, Value: randToken()}
		if resp := r.do("POST", a.path, a.body, map[string]string{csrfHeader: csrf}, forged); resp.StatusCode != 403 {
			t.Errorf("%s with a forged cookie: %d, want 403", a.path, resp.StatusCode)
		}
		unconfirmed := strings.Replace(a.body, `"confirm":true`, `"confirm":false`, 1)
		if resp := r.do("POST", a.path, unconfirmed, map[string]string{csrfHeader: csrf}, ck); resp.StatusCode != 400 {
			t.Errorf("%s unconfirmed: %d, want 400", a.path, resp.StatusCode)
		}
		if resp := r.do("GET", a.path, "", nil, ck); resp.StatusCode != 405 {
			t.Errorf("GET %s: %d, want 405", a.path, resp.StatusCode)
		}
	}
	r.parts.mu.Lock()
	purged, reads := len(r.parts.purged), len(r.parts.reads)
	r.parts.mu.Unlock()
	if n := r.broker.count(); n != 0 || purged != 0 || reads != 0 {
		t.Fatalf("refused actions changed things: %d published, %d purges, %d reads", n, purged, reads)
	}
	if !strings.Contains(r.logs.String(), "console action refused") {
		t.Error("refusals not logged")
	}

	// With everything, each action works and is logged. On loopback with
	// no login the console is the local operator: the broker's ACL (here
	// refusing everything) is not asked.
	r.parts.set(func(f *fakeParts) { f.mayPublish = func(string, string) bool { return false } })
	resp := r.do("POST", "/api/actions/publish", pub, map[string]string{csrfHeader: csrf}, ck)
	decode[map[string]any](t, resp, 200)
	if r.broker.count() != 1 {
		t.Fatal("publish did not publish")
	}
	r.parts.set(func(f *fakeParts) {
		if len(f.aclAsked) != 0 {
			t.Errorf("ACL asked %q for a console without login", f.aclAsked)
		}
	})
	if m := r.broker.published[0]; m.Topic != "test/x" || string(m.Payload) != "hi" || m.QoS != 1 {
		t.Errorf("published %+v", m)
	}
	p := decode[map[string]any](t, r.do("POST", "/api/actions/purge", actions[1].body, map[string]string{csrfHeader: csrf}, ck), 200)
	if p["purged"] != float64(12) {
		t.Errorf("purge = %v", p)
	}
	rd := decode[SensorReading](t, r.do("POST", "/api/actions/read-sensor", actions[2].body, map[string]string{csrfHeader: csrf}, ck), 200)
	if len(rd.Values) != 1 || rd.Values[0].Value != 22 {
		t.Errorf("read = %+v", rd)
	}
	logs := r.logs.String()
	for _, want := range []string{"console published a message", "topic=test/x", "console purged the queue", "console read a sensor", `user="(local, no login)"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// Bad input to an authorized action: refused, nothing published.
	for _, body := range []string{`{"topic":"a/#","confirm":true}`, `{"topic":"","confirm":true}`, `{"topic":"a","qos":3,"confirm":true}`, `{"topic":`} {
		if resp := r.do("POST", "/api/actions/publish", body, map[string]string{csrfHeader: csrf}, ck); resp.StatusCode != 400 {
			t.Errorf("publish %s: %d, want 400", body, resp.StatusCode)
		}
	}
	decode[apiError](t, r.do("POST", "/api/actions/read-sensor", `{"name":"nope","confirm":true}`, map[string]string{csrfHeader: csrf}, ck), 404)
	r.broker.mu.Lock()
	r.broker.fail = fmt.Errorf("publish a: %w", msg.ErrNotAuthorized)
	r.broker.mu.Unlock()
	decode[apiError](t, r.do("POST", "/api/actions/publish", pub, map[string]string{csrfHeader: csrf}, ck), 400)
	if r.broker.count() != 1 {
		t.Errorf("bad publishes went through: %d", r.broker.count())
	}
}

func TestOversizedBody(t *testing.T) {
	r := newRig(t, Options{})
	ck, csrf := r.session()
	big := `{"topic":"test/x","confirm":true,"payload":"` + strings.Repeat("x", 100<<10) + `"}`
	resp := r.do("POST", "/api/actions/publish", big, map[string]string{csrfHeader: csrf}, ck)
	decode[apiError](t, resp, 413)
	if r.broker.count() != 0 {
		t.Fatal("an oversized publish went through")
	}
	if !strings.Contains(r.logs.String(), "body too large") {
		t.Error("not logged")
	}
}

// TestHostCheck: without a login only loopback Host names are served (DNS
// rebinding).
func TestHostCheck(t *testing.T) {
	r := newRig(t, Options{})
	for host, want := range map[string]int{"evil.example:9883": 421, "127.0.0.1:9883": 200, "localhost:9883": 200, "[::1]:9883": 200} {
		req, _ := http.NewRequest("GET", r.srv.URL+"/api/overview", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func writePasswords(t *testing.T, users map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	first := true
	for u, pw := range users {
		if err := auth.SetPassword(p, u, []byte(pw), auth.HashOptions{}, first); err != nil {
			t.Fatal(err)
		}
		first = false
	}
	return p
}

func TestLogin(t *testing.T) {
	pw := writePasswords(t, map[string]string{"admin": "s3cret", "bob": "bobpw"})
	const delay = 200 * time.Millisecond
	r := newRig(t, Options{RequireLogin: true, Users: []string{"admin"}, PasswordFile: pw, TLS: true, LoginDelay: delay})

	s := decode[Session](t, r.do("GET", "/api/session", "", nil), 200)
	if !s.LoginRequired || s.LoggedIn || s.CSRF != "" {
		t.Fatalf("session before login = %+v", s)
	}
	for _, p := range []string{"/api/overview", "/api/topics", "/api/queue/peek", "/api/events"} {
		decode[apiError](t, r.do("GET", p, "", nil), 401)
	}
	if resp := r.do("GET", "/metrics", "", nil); resp.StatusCode != 401 {
		t.Errorf("/metrics without login: %d", resp.StatusCode)
	}
	if resp := r.do("GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz: %d (must stay open for probes)", resp.StatusCode)
	}

	// Wrong password, unlisted user (with a right password), malformed:
	// 401 after the delay, logged, no cookie.
	for _, body := range []string{`{"username":"admin","password":"nope"}`, `{"username":"bob","password":"bobpw"}`, `{"username":"eve","password":"x"}`} {
		start := time.Now()
		resp := r.do("POST", "/api/login", body, nil)
		decode[apiError](t, resp, 401)
		if el := time.Since(start); el < delay {
			t.Errorf("failed login answered after %v, before the %v delay", el, delay)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("failed login set a cookie")
		}
	}
	if logs := r.logs.String(); !strings.Contains(logs, "console login failed") || !strings.Contains(logs, "user not in http.users") || !strings.Contains(logs, "wrong password") {
		t.Errorf("failed logins not logged:\n%s", logs)
	}
	decode[apiError](t, r.do("POST", "/api/login", `{"user`, nil), 400)

	resp := r.do("POST", "/api/login", `{"username":"admin","password":"s3cret"}`, nil)
	s = decode[Session](t, resp, 200)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || s.User != "admin" || s.CSRF == "" {
		t.Fatalf("login cookie %+v, session %+v", ck, s)
	}
	decode[Overview](t, r.do("GET", "/api/overview", "", nil, ck), 200)
	// A Host that is not loopback is fine with a login.
	if resp := r.do("GET", "/api/overview", "", map[string]string{"Host": "gateway.lan"}, ck); resp.StatusCode != 200 {
		t.Errorf("login console refused Host gateway.lan: %d", resp.StatusCode)
	}
	// Actions still need the CSRF token.
	if resp := r.do("POST", "/api/actions/publish", `{"topic":"t","confirm":true}`, nil, ck); resp.StatusCode != 403 {
		t.Errorf("action without CSRF after login: %d", resp.StatusCode)
	}
	decode[map[string]any](t, r.do("POST", "/api/actions/publish", `{"topic":"t","confirm":true}`, map[string]string{csrfHeader: s.CSRF}, ck), 200)
	if !strings.Contains(r.logs.String(), "user=admin") {
		t.Error("action not logged with the user")
	}
	// The logged-in user publishes with the rights the broker's ACL gives
	// that name: a topic it may not write is refused and not published.
	r.parts.set(func(f *fakeParts) {
		f.mayPublish = func(user, topic string) bool { return !strings.HasPrefix(topic, "valves/") }
		f.aclAsked = nil
	})
	before := r.broker.count()
	e := decode[apiError](t, r.do("POST", "/api/actions/publish", `{"topic":"valves/3/open","confirm":true}`, map[string]string{csrfHeader: s.CSRF}, ck), 403)
	if !strings.Contains(e.Error, `user "admin" may not publish to "valves/3/open"`) {
		t.Errorf("ACL refusal says %q", e.Error)
	}
	if r.broker.count() != before {
		t.Error("a publish the ACL refuses reached the broker")
	}
	decode[map[string]any](t, r.do("POST", "/api/actions/publish", `{"topic":"t","confirm":true}`, map[string]string{csrfHeader: s.CSRF}, ck), 200)
	r.parts.set(func(f *fakeParts) {
		if want := []string{"admin valves/3/open", "admin t"}; !slices.Equal(f.aclAsked, want) {
			t.Errorf("ACL asked %q, want %q", f.aclAsked, want)
		}
	})
	if !strings.Contains(r.logs.String(), "console publish refused: the ACL does not let this user write the topic") {
		t.Error("ACL refusal not logged")
	}
	// Prometheus with basic auth.
	req, _ := http.NewRequest("GET", r.srv.URL+"/metrics", nil)
	req.SetBasicAuth("admin", "s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics with basic auth: %v %v", resp.StatusCode, err)
	}
	req.SetBasicAuth("admin", "wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("/metrics with a wrong password: %v %v", resp.StatusCode, err)
	}

	// Logout ends the session.
	decode[Session](t, r.do("POST", "/api/logout", `{}`, map[string]string{csrfHeader: s.CSRF}, ck), 200)
	decode[apiError](t, r.do("GET", "/api/overview", "", nil, ck), 401)
}

func TestLoginConfigErrors(t *testing.T) {
	if _, err := New(Sources{}, Options{RequireLogin: true}); err == nil {
		t.Error("RequireLogin without users accepted")
	}
	r := newRig(t, Options{})
	decode[apiError](t, r.do("POST", "/api/login", `{"username":"a","password":"b"}`, nil), 400)
}

func TestSessionExpiry(t *testing.T) {
	pw := writePasswords(t, map[string]string{"admin": "pw"})
	now := time.Now()
	clock := func() time.Time { return now }
	c, err := New(Sources{}, Options{RequireLogin: true, Users: []string{"admin"}, PasswordFile: pw, SessionTTL: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ss := c.sess.create("admin")
	req, _ := http.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: ss.token})
	if c.sess.get(req) == nil {
		t.Fatal("fresh session not found")
	}
	now = now.Add(time.Hour + time.Second)
	if c.sess.get(req) != nil {
		t.Fatal("expired session still valid")
	}
}

// event is one Server-Sent Event.
type event struct {
	name string
	data string
}

func readEvents(t *testing.T, body io.Reader) <-chan event {
	ch := make(chan event, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e event
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				e.name = l[7:]
			case strings.HasPrefix(l, "data: "):
				e.data = l[6:]
			case l == "" && e.name != "":
				ch <- e
				e = event{}
			}
		}
	}()
	return ch
}

// waitEvent reads events until one named name satisfies ok.
func waitEvent(t *testing.T, ch <-chan event, name string, d time.Duration, ok func(data string) bool) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("event stream ended while waiting for %s", name)
			}
			if e.name == name && ok(e.data) {
				return
			}
		case <-timeout:
			t.Fatalf("no matching %s event within %v", name, d)
		}
	}
}

// TestEventsFollowUplinkFlapping: the uplink off, on and flapping, each
// change shows in the overview stream within a few ticks.
func TestEventsFollowUplinkFlapping(t *testing.T) {
	r := newRig(t, Options{Tick: 100 * time.Millisecond})
	r.parts.set(func(f *fakeParts) { f.uplink = UplinkState{State: "disabled"} })
	resp := r.do("GET", "/api/events", "", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ch := readEvents(t, resp.Body)
	state := func(want string) func(string) bool {
		return func(d string) bool {
			var o Overview
			json.Unmarshal([]byte(d), &o)
			return o.Uplink.State == want
		}
	}
	waitEvent(t, ch, "overview", 2*time.Second, state("disabled"))
	waitEvent(t, ch, "clients", 2*time.Second, func(d string) bool { return strings.Contains(d, `"paho-1"`) })
	waitEvent(t, ch, "sensors", 2*time.Second, func(d string) bool { return strings.Contains(d, `"mast"`) })

	for i, st := range []string{"connecting", "connected", "disconnected", "connected", "disconnected", "connecting", "connected"} {
		r.parts.set(func(f *fakeParts) {
			f.uplink = UplinkState{Enabled: true, State: st, LastError: fmt.Sprintf("flap %d", i)}
		})
		waitEvent(t, ch, "overview", 2*time.Second, func(d string) bool {
			var o Overview
			json.Unmarshal([]byte(d), &o)
			return o.Uplink.State == st && o.Uplink.LastError == fmt.Sprintf("flap %d", i)
		})
	}

	// A new client and a sensor reading appear; a topic update is pushed.
	r.parts.set(func(f *fakeParts) { f.clients = append(f.clients, Client{ID: "late-client", State: "connected"}) })
	waitEvent(t, ch, "clients", 2*time.Second, func(d string) bool { return strings.Contains(d, `"late-client"`) })
	r.broker.Publish(context.Background(), msg.Message{Topic: "sensors/mast", Payload: []byte(`{"time":"2026-11-28T13:05:00.000Z","temperature":{"value":23.25,"unit":"°C"}}`)})
	waitEvent(t, ch, "readings", 2*time.Second, func(d string) bool { return strings.Contains(d, `"value":23.25`) })
	r.broker.Publish(context.Background(), msg.Message{Topic: "plant/pump/1", Payload: []byte("on"), Retain: true})
	waitEvent(t, ch, "topics", 2*time.Second, func(d string) bool { return strings.Contains(d, `"plant/pump/1"`) })
}

// TestEventsEndOnShutdown: Run returning ends every stream.
func TestEventsEndOnShutdown(t *testing.T) {
	b := newFakeBroker()
	c, err := New(newFakeParts().sources(b), Options{Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	srv := httptestServer(t, c)
	resp, err := http.Get(srv + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ch := readEvents(t, resp.Body)
	waitEvent(t, ch, "overview", 2*time.Second, func(string) bool { return true })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range ch { // ends when the handler returns
	}
	if b.nsubs() != 0 {
		t.Errorf("%d subscriptions left after Run", b.nsubs())
	}
}

func TestTopicBound(t *testing.T) {
	r := newRig(t, Options{MaxTopics: 10})
	resp := r.do("GET", "/api/events", "", nil)
	ch := readEvents(t, resp.Body)
	waitEvent(t, ch, "overview", 2*time.Second, func(string) bool { return true })
	for i := range 25 {
		r.broker.Publish(context.Background(), msg.Message{Topic: fmt.Sprintf("t/%02d", i), Payload: []byte{0xff, 0xfe}})
	}
	waitEvent(t, ch, "topics-reset", 2*time.Second, func(string) bool { return true })
	tl := decode[TopicList](t, r.do("GET", "/api/topics", "", nil), 200)
	if tl.Total != 10 || tl.Evicted != 15 || tl.Topics[0].Topic != "t/15" || !tl.Topics[0].Base64 || tl.Topics[0].Payload != "//4=" {
		t.Fatalf("topics = %+v", tl)
	}
}
