package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// apiError is the body of every refusal: {"error": "..."}.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, apiError{Error: text})
}

// slogPrinter adapts the logger to promhttp's ErrorLog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }

func (c *Console) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if c.src.Health != nil {
		if err := c.src.Health(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
			return
		}
	}
	io.WriteString(w, "ok\n")
}

// metricsAuth: /metrics needs a console session or HTTP basic auth of an
// allowed user when a login is required (Prometheus: basic_auth).
func (c *Console) metricsAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.opts.RequireLogin {
			if ss, _ := c.authorize(r, false); ss == nil && !c.basicAuth(r) {
				w.Header().Set("WWW-Authenticate", `Basic realm="outpost"`)
				http.Error(w, "login required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// read wraps a GET endpoint: with login required it needs a session.
func (c *Console) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := c.authorize(r, false); err != nil {
			writeError(w, http.StatusUnauthorized, "login required")
			return
		}
		h(w, r)
	}
}

// actionFunc handles an authorized action with its JSON body; user is the
// logged-in user ("" on loopback without a login) and who logs with it.
type actionFunc func(w http.ResponseWriter, r *http.Request, who *slog.Logger, user string, body []byte)

// action wraps a state-changing endpoint: it needs the session cookie and
// the CSRF token (403 without), a body of at most 64 KiB (413), and logs
// who did it.
func (c *Console) action(name string, h actionFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, err := c.authorize(r, true)
		if err != nil {
			c.log.Warn("console action refused: no valid session or CSRF token", "action", name, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "forbidden: a session cookie and the X-CSRF-Token header from /api/session are required")
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
				c.log.Warn("console action refused: body too large", "action", name, "remote", r.RemoteAddr, "limit", mbe.Limit)
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit))
				return
			}
			writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
			return
		}
		shown := ss.user
		if shown == "" {
			shown = "(local, no login)"
		}
		h(w, r, c.log.With("action", name, "user", shown, "remote", r.RemoteAddr), ss.user, body)
	}
}

// confirmed decodes body into v and checks its "confirm": true.
func confirmed(w http.ResponseWriter, who *slog.Logger, body []byte, v any) bool {
	if err := json.Unmarshal(body, v); err != nil {
		who.Warn("console action refused: bad JSON", "err", err)
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	var conf struct {
		Confirm bool `json:"confirm"`
	}
	json.Unmarshal(body, &conf)
	if !conf.Confirm {
		who.Warn("console action refused: not confirmed")
		writeError(w, http.StatusBadRequest, `not confirmed: send "confirm": true`)
		return false
	}
	return true
}

// Session is GET /api/session.
type Session struct {
	LoginRequired bool      `json:"login_required"`
	LoggedIn      bool      `json:"logged_in"`
	User          string    `json:"user,omitempty"`
	CSRF          string    `json:"csrf,omitempty"`
	Expires       time.Time `json:"expires,omitzero"`
}

// apiSession tells the page whether it must log in and gives it the CSRF
// token. Without login a session is created on the first call.
func (c *Console) apiSession(w http.ResponseWriter, r *http.Request) {
	ss := c.sess.get(r)
	if ss == nil && !c.opts.RequireLogin {
		ss = c.sess.create("")
		c.setCookie(w, ss)
	}
	out := Session{LoginRequired: c.opts.RequireLogin}
	if ss != nil {
		out.LoggedIn, out.User, out.CSRF, out.Expires = true, ss.user, ss.csrf, ss.expires
	}
	writeJSON(w, http.StatusOK, out)
}

// apiLogin is POST /api/login {"username","password"}.
func (c *Console) apiLogin(w http.ResponseWriter, r *http.Request) {
	if !c.opts.RequireLogin {
		writeError(w, http.StatusBadRequest, "no login needed: the console listens on loopback only")
		return
	}
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe := new(http.MaxBytesError); errors.As(err, &mbe) {
			c.log.Warn("console login refused: body too large", "remote", r.RemoteAddr)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, `request body: want {"username": "...", "password": "..."}: `+err.Error())
		return
	}
	reason := ""
	if !slices.Contains(c.opts.Users, in.Username) {
		reason = "user not in http.users"
	} else if ok, err := c.pw.check(in.Username, []byte(in.Password)); err != nil {
		reason = err.Error()
	} else if !ok {
		reason = "wrong password"
	}
	if reason != "" {
		c.log.Warn("console login failed", "user", in.Username, "remote", r.RemoteAddr, "reason", reason)
		t := time.NewTimer(c.opts.LoginDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
		writeError(w, http.StatusUnauthorized, "wrong username or password")
		return
	}
	if old := c.sess.get(r); old != nil {
		c.sess.remove(old.token)
	}
	ss := c.sess.create(in.Username)
	c.setCookie(w, ss)
	c.log.Info("console login", "user", in.Username, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, Session{LoginRequired: true, LoggedIn: true, User: ss.user, CSRF: ss.csrf, Expires: ss.expires})
}

func (c *Console) apiLogout(w http.ResponseWriter, r *http.Request, who *slog.Logger, _ string, _ []byte) {
	if ss := c.sess.get(r); ss != nil {
		c.sess.remove(ss.token)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.opts.TLS})
	who.Info("console logout")
	writeJSON(w, http.StatusOK, Session{LoginRequired: c.opts.RequireLogin})
}

func (c *Console) overview(now time.Time, bs BrokerStats, qs QueueState, ss []Sensor) Overview {
	in, out := c.rates()
	o := Overview{
		Version: c.src.Version,
		Uptime:  Duration(now.Sub(c.src.Started).Truncate(time.Second)),
		Time:    now.UTC(),
		RateIn:  in, RateOut: out,
		Broker:  bs,
		Queue:   qs,
		Healthy: true,
		Sensors: []SensorBrief{},
	}
	if o.Broker.Dropped == nil {
		o.Broker.Dropped = map[string]int64{}
	}
	if o.Queue.Lanes == nil {
		o.Queue.Lanes = []QueueLane{}
	}
	if c.src.Gateway != nil {
		g := c.src.Gateway()
		o.Gateway = &g
	}
	if c.src.Uplink != nil {
		o.Uplink = c.src.Uplink()
	} else {
		o.Uplink = UplinkState{State: "disabled"}
	}
	for _, s := range ss {
		o.Sensors = append(o.Sensors, SensorBrief{Name: s.Name, State: s.State, Error: s.Error})
		if s.State == "error" {
			o.SensorsError++
		} else if s.State == "ok" {
			o.SensorsOK++
		}
	}
	if c.src.Health != nil {
		if err := c.src.Health(); err != nil {
			o.Healthy, o.Health = false, err.Error()
		}
	}
	return o
}

func (c *Console) apiOverview(w http.ResponseWriter, r *http.Request) {
	var bs BrokerStats
	if c.src.Broker != nil {
		bs = c.src.Broker()
	}
	var qs QueueState
	if c.src.Queue != nil {
		qs = c.src.Queue()
	}
	var ss []Sensor
	if c.src.Sensors != nil {
		ss = c.src.Sensors()
	}
	o := c.overview(c.opts.Now(), bs, qs, ss)
	// The rate plots: 1 s points over the last 10 minutes.
	since := c.opts.Now().Add(-10 * time.Minute)
	c.live.mu.Lock()
	hist := RateHistory{In: c.live.rateIn.points(since), Out: c.live.rateOut.points(since)}
	c.live.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Overview
		Rates RateHistory `json:"rates"`
	}{o, hist})
}

// RateHistory is the broker's message rates, [unix seconds, messages/s].
type RateHistory struct {
	In  [][2]float64 `json:"in"`
	Out [][2]float64 `json:"out"`
}

// TopicList is GET /api/topics.
type TopicList struct {
	Topics  []Topic `json:"topics"`
	Total   int     `json:"total"`   // topics kept (before the filter)
	Max     int     `json:"max"`     // the bound
	Evicted uint64  `json:"evicted"` // topics dropped to stay within it
}

func (c *Console) apiTopics(w http.ResponseWriter, r *http.Request) {
	now := c.opts.Now()
	c.live.mu.Lock()
	out := TopicList{
		Topics:  c.live.topics.list(r.URL.Query().Get("filter"), now),
		Total:   len(c.live.topics.byName),
		Max:     c.live.topics.max,
		Evicted: c.live.topics.evicted,
	}
	c.live.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (c *Console) apiSensors(w http.ResponseWriter, r *http.Request) {
	var ss []Sensor
	if c.src.Sensors != nil {
		ss = c.src.Sensors()
	}
	writeJSON(w, http.StatusOK, sensorsOrEmpty(ss))
}

func (c *Console) findSensor(name string) (Sensor, bool) {
	if c.src.Sensors == nil {
		return Sensor{}, false
	}
	for _, s := range c.src.Sensors() {
		if s.Name == name {
			return s, true
		}
	}
	return Sensor{}, false
}

// apiSensorHistory is GET /api/sensors/{name}/history?span=30m (at most
// 24h; up to 30m in 5 s means, longer in 1 min means).
func (c *Console) apiSensorHistory(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s, ok := c.findSensor(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no sensor %q", name))
		return
	}
	span := 30 * time.Minute
	if v := r.URL.Query().Get("span"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 24*time.Hour {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("span %q: want a duration up to 24h, e.g. 30m or 24h", v))
			return
		}
		span = d
	}
	var order []string
	if s.Last != nil {
		for _, v := range s.Last.Values {
			order = append(order, v.Quantity)
		}
	}
	h, ok := c.live.sensorHistory(name, span, c.opts.Now(), order)
	if !ok {
		h = History{Sensor: name, Resolution: Duration(fineWidth), Series: []HistorySeries{}}
	}
	writeJSON(w, http.StatusOK, h)
}

// Clients is GET /api/clients.
type Clients struct {
	// Detail is false when the broker offers no per-session list: only
	// the counts are known.
	Detail       bool           `json:"detail"`
	Connected    int64          `json:"connected"`
	Disconnected int64          `json:"disconnected"` // persistent sessions offline
	MQTTSN       map[string]int `json:"mqttsn,omitempty"`
	Sessions     []Client       `json:"sessions"`
}

func (c *Console) clients(bs BrokerStats) Clients {
	out := Clients{Connected: bs.ClientsConnected, Disconnected: bs.ClientsDisconnected, Sessions: []Client{}}
	if c.src.Gateway != nil {
		out.MQTTSN = c.src.Gateway().Clients
	}
	if c.src.Clients != nil {
		out.Detail = true
		if cs := c.src.Clients(); cs != nil {
			out.Sessions = cs
		}
		for i := range out.Sessions {
			if out.Sessions[i].Subscriptions == nil {
				out.Sessions[i].Subscriptions = []Subscription{}
			}
		}
	}
	return out
}

func (c *Console) apiClients(w http.ResponseWriter, r *http.Request) {
	var bs BrokerStats
	if c.src.Broker != nil {
		bs = c.src.Broker()
	}
	writeJSON(w, http.StatusOK, c.clients(bs))
}

func (c *Console) apiQueue(w http.ResponseWriter, r *http.Request) {
	if c.src.Queue == nil {
		writeError(w, http.StatusNotFound, "no queue")
		return
	}
	span := 10 * time.Minute
	if r.URL.Query().Get("span") == "24h" {
		span = 24 * time.Hour
	}
	now := c.opts.Now()
	qs := c.src.Queue()
	if qs.Lanes == nil {
		qs.Lanes = []QueueLane{}
	}
	c.live.mu.Lock()
	rg := c.live.queueDepth
	if span > 10*time.Minute {
		rg = c.live.queueCoarse
	}
	pts := rg.points(now.Add(-span))
	c.live.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		QueueState
		History [][2]float64 `json:"history"` // [unix seconds, depth]
	}{qs, pts})
}

// apiQueuePeek is GET /api/queue/peek?lane=&n=10 (n 1..100).
func (c *Console) apiQueuePeek(w http.ResponseWriter, r *http.Request) {
	if c.src.Peek == nil {
		writeError(w, http.StatusNotFound, "no queue")
		return
	}
	n := 10
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("n %q: want 1 to 100", v))
			return
		}
	}
	recs, err := c.src.Peek(r.URL.Query().Get("lane"), n)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "peek: "+err.Error())
		return
	}
	if recs == nil {
		recs = []QueueRecord{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (c *Console) apiUplink(w http.ResponseWriter, r *http.Request) {
	u := UplinkState{State: "disabled"}
	if c.src.Uplink != nil {
		u = c.src.Uplink()
	}
	writeJSON(w, http.StatusOK, u)
}

// validTopicName checks a topic name for publishing [MQTT-4.7.3-1]
// (at least one character), [MQTT-3.3.2-2] (no wildcards), [MQTT-1.5.4-2]
// (no NUL), [MQTT-1.5.4-1] (UTF-8), at most 65535 bytes.
func validTopicName(t string) error {
	switch {
	case t == "":
		return errors.New("empty topic")
	case len(t) > 65535:
		return errors.New("topic longer than 65535 bytes")
	case !utf8.ValidString(t):
		return errors.New("topic is not UTF-8")
	case strings.ContainsAny(t, "+#"):
		return errors.New("a topic name must not contain + or #")
	case strings.ContainsRune(t, 0):
		return errors.New("topic contains NUL")
	}
	return nil
}

// apiPublish publishes a test message. A logged-in user publishes with the
// rights the broker's ACL gives that user name (as mosquitto_pub -u USER
// would); on loopback without a login the console is the local operator.
func (c *Console) apiPublish(w http.ResponseWriter, r *http.Request, who *slog.Logger, user string, body []byte) {
	var in struct {
		Topic   string `json:"topic"`
		Payload string `json:"payload"`
		QoS     byte   `json:"qos"`
		Retain  bool   `json:"retain"`
	}
	if !confirmed(w, who, body, &in) {
		return
	}
	if err := validTopicName(in.Topic); err != nil {
		who.Warn("console publish refused", "topic", in.Topic, "err", err)
		writeError(w, http.StatusBadRequest, fmt.Sprintf("topic %q: %v", in.Topic, err))
		return
	}
	if in.QoS > 2 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("qos %d: want 0, 1 or 2", in.QoS))
		return
	}
	if c.src.Publish == nil {
		writeError(w, http.StatusServiceUnavailable, "no broker to publish to")
		return
	}
	if user != "" && c.src.MayPublish != nil && !c.src.MayPublish(user, in.Topic) {
		who.Warn("console publish refused: the ACL does not let this user write the topic", "topic", in.Topic)
		writeError(w, http.StatusForbidden, fmt.Sprintf("user %q may not publish to %q (broker.acl_file)", user, in.Topic))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	err := c.src.Publish.Publish(ctx, msg.Message{Topic: in.Topic, Payload: []byte(in.Payload), QoS: in.QoS, Retain: in.Retain})
	if err != nil {
		who.Warn("console publish failed", "topic", in.Topic, "qos", in.QoS, "err", err)
		status := http.StatusServiceUnavailable
		if errors.Is(err, msg.ErrInvalidTopic) || errors.Is(err, msg.ErrNotAuthorized) {
			status = http.StatusBadRequest
		}
		writeError(w, status, "publish: "+err.Error())
		return
	}
	who.Info("console published a message", "topic", in.Topic, "qos", in.QoS, "retain", in.Retain, "bytes", len(in.Payload))
	writeJSON(w, http.StatusOK, map[string]any{"published": true, "topic": in.Topic})
}

func (c *Console) apiPurge(w http.ResponseWriter, r *http.Request, who *slog.Logger, _ string, body []byte) {
	var in struct {
		Lane string `json:"lane"`
	}
	if !confirmed(w, who, body, &in) {
		return
	}
	if c.src.Purge == nil {
		writeError(w, http.StatusNotFound, "no queue")
		return
	}
	n, err := c.src.Purge(in.Lane)
	if err != nil {
		who.Error("console queue purge failed", "lane", in.Lane, "err", err)
		writeError(w, http.StatusInternalServerError, "purge: "+err.Error())
		return
	}
	who.Warn("console purged the queue", "lane", in.Lane, "records", n)
	writeJSON(w, http.StatusOK, map[string]any{"purged": n, "lane": in.Lane})
}

func (c *Console) apiReadSensor(w http.ResponseWriter, r *http.Request, who *slog.Logger, _ string, body []byte) {
	var in struct {
		Name string `json:"name"`
	}
	if !confirmed(w, who, body, &in) {
		return
	}
	if _, ok := c.findSensor(in.Name); !ok || c.src.ReadSensor == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no sensor %q", in.Name))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	rd, err := c.src.ReadSensor(ctx, in.Name)
	if err != nil {
		who.Warn("console sensor read failed", "sensor", in.Name, "err", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("read sensor %q: %v", in.Name, err))
		return
	}
	who.Info("console read a sensor", "sensor", in.Name)
	writeJSON(w, http.StatusOK, rd)
}
