// Package console is Outpost's HTTP side: the web console at /, its JSON API
// under /api/ (with live updates over Server-Sent Events at /api/events),
// Prometheus metrics at /metrics and the health check at /healthz.
//
// It reads the hub's state only through Sources, small funcs the hub fills
// from the real parts, so it imports brokercore/msg (to subscribe to the
// topic tree and publish test messages), brokercore/auth (console logins
// against the broker's password file), the standard library and the
// Prometheus client; never the parts themselves.
//
// # What it keeps in memory
//
//   - The topic tree: the last message of each topic (at most 256 payload
//     bytes), its QoS, retain flag, count and rate, for at most MaxTopics
//     topics (default 2000, least recently updated evicted first): under
//     600 bytes a topic, about 1.2 MiB when full.
//   - Sensor history, fed from the sensors' own topics (the adapters'
//     JSON payload): per quantity a ring of 5 s means for 30 minutes and
//     one of 1 min means for 24 hours, 28.8 KB per quantity, at most
//     MaxSeries quantities (default 64, 1.8 MB).
//   - Broker message rates and queue depth: 1 s points for 10 minutes and
//     queue depth per minute for 24 hours (about 43 KB).
//   - Sessions: at most 256, 12 h each.
//
// # Access
//
// On a loopback address no login is needed, but the Host header must be a
// loopback name (DNS rebinding). Otherwise Options.RequireLogin: the users
// in Options.Users log in with their password from the broker's password
// file; the session cookie is HttpOnly, SameSite=Strict and Secure under
// TLS. Every action (publish, purge, read-sensor, logout) needs the session
// cookie, the CSRF token in the X-CSRF-Token header and "confirm": true,
// and is logged with who did what. See API.md.
package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

//go:embed assets
var assets embed.FS

// Options configure the console besides its Sources.
type Options struct {
	Logger *slog.Logger // nil: discard
	// RequireLogin: every /api/ request but login and session needs a
	// logged-in session (the hub sets it for a non-loopback listen).
	RequireLogin bool
	// Users may log in; PasswordFile is where their passwords are
	// (mosquitto_passwd format, re-read when it changes).
	Users        []string
	PasswordFile string
	// TLS marks cookies Secure.
	TLS bool
	// MaxTopics bounds the topic tree (0 = DefaultMaxTopics); MaxSeries the
	// sensor quantities with history (0 = DefaultMaxSeries).
	MaxTopics, MaxSeries int
	SessionTTL           time.Duration // 0 = DefaultSessionTTL
	LoginDelay           time.Duration // 0 = DefaultLoginDelay
	// Tick is how often live updates are sent (0 = 1s).
	Tick time.Duration
	Now  func() time.Time // nil: time.Now
}

// maxBody bounds every request body (413 above it).
const maxBody = 64 << 10

// Console serves the web console. Build it with New, serve it with an
// http.Server, and Run it for the live parts (topic tree, history, events).
type Console struct {
	src  Sources
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	sess *sessions
	pw   *passwords
	live *live
	reg  *prometheus.Registry

	streams   sync.Mutex
	listeners map[chan []byte]struct{}
	closed    bool

	prevIn, prevOut int64
	prevAt          time.Time
	rateIn, rateOut float64
}

// New builds the console; it starts nothing (Run does).
func New(src Sources, opts Options) (*Console, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxTopics <= 0 {
		opts.MaxTopics = DefaultMaxTopics
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.LoginDelay <= 0 {
		opts.LoginDelay = DefaultLoginDelay
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.RequireLogin && (len(opts.Users) == 0 || opts.PasswordFile == "") {
		return nil, errors.New("console: a login is required (http.listen is not loopback) but http.users or the password file is not set")
	}
	if src.Started.IsZero() {
		src.Started = opts.Now()
	}
	c := &Console{
		src:       src,
		opts:      opts,
		log:       opts.Logger,
		sess:      &sessions{ttl: opts.SessionTTL, now: opts.Now, m: map[string]*session{}},
		live:      newLive(opts.MaxTopics, opts.MaxSeries),
		listeners: map[chan []byte]struct{}{},
	}
	if opts.PasswordFile != "" {
		c.pw = &passwords{path: opts.PasswordFile}
	}
	c.reg = newRegistry(c)
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		files.ServeHTTP(w, r)
	})
	m.HandleFunc("GET /healthz", c.healthz)
	metrics := promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{c.log}})
	m.Handle("GET /metrics", c.metricsAuth(metrics))

	m.HandleFunc("GET /api/session", c.apiSession)
	m.HandleFunc("POST /api/login", c.apiLogin)
	m.HandleFunc("POST /api/logout", c.action("logout", c.apiLogout))
	m.HandleFunc("GET /api/overview", c.read(c.apiOverview))
	m.HandleFunc("GET /api/topics", c.read(c.apiTopics))
	m.HandleFunc("GET /api/sensors", c.read(c.apiSensors))
	m.HandleFunc("GET /api/sensors/{name}/history", c.read(c.apiSensorHistory))
	m.HandleFunc("GET /api/clients", c.read(c.apiClients))
	m.HandleFunc("GET /api/queue", c.read(c.apiQueue))
	m.HandleFunc("GET /api/queue/peek", c.read(c.apiQueuePeek))
	m.HandleFunc("GET /api/uplink", c.read(c.apiUplink))
	m.HandleFunc("GET /api/events", c.read(c.apiEvents))
	m.HandleFunc("POST /api/actions/publish", c.action("publish", c.apiPublish))
	m.HandleFunc("POST /api/actions/purge", c.action("purge", c.apiPurge))
	m.HandleFunc("POST /api/actions/read-sensor", c.action("read-sensor", c.apiReadSensor))
	m.HandleFunc("/api/actions/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "actions take POST with a JSON body (see API.md)")
	})
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (see API.md)")
	})
	c.mux = m
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.hostAllowed(r) {
		c.log.Warn("console request refused: Host is not a loopback name", "host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
		http.Error(w, "Host not allowed: open the console as http://127.0.0.1:PORT/ or http://localhost:PORT/", http.StatusMisdirectedRequest)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	c.mux.ServeHTTP(w, r)
}

// Run keeps the live state: it subscribes to every topic ("#" and
// "$SYS/#") for the topic tree and sensor history, samples rates each Tick
// and sends events to every /api/events stream. It returns when ctx is
// done, after cancelling its subscriptions and ending every stream.
func (c *Console) Run(ctx context.Context) error {
	if c.src.Sensors != nil {
		c.live.setSensors(c.src.Sensors())
	}
	if c.src.Subscribe != nil {
		for _, f := range []string{"#", "$SYS/#"} {
			cancel, err := c.src.Subscribe.Subscribe(f, 0, c.onMessage)
			if err != nil {
				c.closeStreams()
				return err
			}
			defer cancel()
		}
	}
	t := time.NewTicker(c.opts.Tick)
	defer t.Stop()
	defer c.closeStreams()
	var last map[string][]byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			last = c.tick(last)
		}
	}
}

func (c *Console) onMessage(m msg.Message) { c.live.onMessage(m, c.opts.Now()) }
