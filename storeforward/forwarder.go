// Package storeforward is Outpost's store-and-forward part: forward rules
// (the tap) that make cloud-bound messages durable in the queue before the
// broker acknowledges them, the uplink that drains the queue to a cloud
// MQTT broker over an intermittent link, and downlink rules that bring
// cloud messages into the local broker.
//
// The uplink keeps the durable-ack promise end to end (DESIGN.md, data flow
// 4): records drain in queue order within a priority lane, with a window
// of messages in flight (the cloud's Receive Maximum in MQTT 5, max_inflight
// in 3.1.1); a record is deleted only after the cloud's PUBACK/PUBCOMP;
// after a reconnect the client resends what is unacknowledged in its
// original order with DUP set [MQTT-4.6.0-1]; QoS 2 packet ids and PUBREL
// state live in the same database (u/ keys), so exactly-once holds across
// restarts of the hub. Its session with the cloud is persistent (clean
// session false, a week of session expiry in MQTT 5).
//
// What the cloud cannot take is handled, counted and logged once per kind:
// QoS above its Maximum QoS is lowered, retain is dropped where it has no
// retained messages, a message over its Maximum Packet Size is dropped.
// A refusal for now (MQTT 5 0x97 Quota exceeded, as a throttling cloud
// answers, or busy) keeps the message queued and sends it again after a
// growing pause; a refusal of the message itself (0x87 Not authorized,
// 0x90 Topic Name invalid, ...) drops it, since sending it again would only
// block the lane behind it.
//
// It imports brokercore/msg, brokercore/client, brokercore/packet,
// brokercore/topic and storeforward/queue, never brokercore itself: the hub
// hands it a msg.Publisher and msg.Sessions and registers its Tap.
package storeforward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
	"github.com/outpost-iot/outpost/brokercore/topic"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// Deps are what the hub hands the Forwarder besides its Config.
type Deps struct {
	// DB is the hub's database: the queue the tap appends to and the
	// uplink drains, and the uplink's session state (u/ keys).
	DB *queue.DB
	// Publisher publishes the link status under $SYS/outpost/uplink/ and,
	// when Sessions is nil, downlinked messages.
	Publisher msg.Publisher
	// Sessions, if set, gives downlinked messages a broker session named
	// DownlinkClientID(), so the tap knows them and never forwards them
	// back up (a message published through the plain Publisher has no
	// client id). The session publishes anonymously: with an ACL file, the
	// ACL must let that client id write the downlink's local topics.
	Sessions msg.Sessions
	// Logger; nil discards.
	Logger *slog.Logger
	// Site names the hub: the default client id is outpost-<site>.
	Site string
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// SysInterval is how often the link status is published under
	// $SYS/outpost/uplink/ (the broker's sys_interval); 0 = 10 s, negative = never.
	SysInterval time.Duration
	// ThrottleBackoff bounds the growing pause before re-sending messages
	// the cloud refused for now (0x97 quota exceeded, busy); zero = 1 s
	// to 1 min, what a throttling cloud such as AWS IoT Core expects.
	ThrottleBackoff Backoff
}

// Forwarder is the store-and-forward part: its tap makes cloud-bound
// messages durable in the queue, its uplink drains the queue to the cloud
// broker, its downlink rules bring cloud messages into the local broker.
type Forwarder struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	db       *queue.DB
	store    *sessionStore
	tap      msg.Tap
	inner    *Tap
	lanes    []*laneCursor // highest priority first
	clientID string
	dlID     string
	status   string // status topic (birth/will)
	ccfg     client.Config
	dl       []DownlinkRule

	dbID     string        // random id of the database, in every outpost-id
	daily    int64         // uplink.budget.daily_bytes; 0 = no cap
	reserve  int64         // uplink.budget.reserve
	appended chan struct{} // a tap append completed: there is more to drain

	// Owned by the Run goroutine (and the client's reader, after Dial).
	pub          msg.Publisher // downlink: the session or the Publisher
	subscribed   bool          // downlink filters subscribed in this process
	willQoS      byte          // guarded by mu
	willNoRetain bool          // guarded by mu
	retry0       []uint64      // guarded by mu: QoS 0 records to send again, in order
	throttled    int           // guarded by mu: refusals-for-now rounds in a row (pause backoff)
	// skip holds the records the session held when the Forwarder was
	// built; the drain's first pass leaves them to the client.
	skip map[uint64]bool

	mu sync.Mutex // guards st and the counters in st
	st linkState

	savedBudget string // guarded by mu: the u/budget value last written

	runMu   sync.Mutex
	running bool
}

// laneCursor is the drain's position in one queue lane.
type laneCursor struct {
	name string
	prio int
	next uint64 // next seq to read; 0 = from the head
}

// New builds the Forwarder; it connects nothing (Run does). The tap is
// ready at once: register Tap() with the broker before Run so nothing
// cloud-bound is missed while the link comes up.
func New(cfg Config, deps Deps) (*Forwarder, error) {
	if deps.DB == nil {
		return nil, errors.New("storeforward: no database")
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	f := &Forwarder{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger,
		now:      deps.Now,
		db:       deps.DB,
		dl:       cfg.Downlink,
		appended: make(chan struct{}, 1),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.log = f.log.With("component", "uplink")
	if f.now == nil {
		f.now = time.Now
	}
	f.clientID = cfg.ClientID
	if f.clientID == "" {
		f.clientID = "outpost-" + deps.Site
		if deps.Site == "" {
			f.clientID = "outpost"
		}
	}
	f.dlID = f.clientID + "-downlink"
	f.status = cfg.StatusTopic
	if f.status == "" {
		f.status = defaultStatusTopic(cfg, f.clientID)
	}
	tap, err := NewTap(cfg, deps.DB, f.log)
	if err != nil {
		return nil, err
	}
	f.inner = tap
	f.tap = &signalTap{inner: tap, skipClient: f.dlID, appended: f.appended}
	f.lanes = f.laneCursors()
	if f.store, err = openSessionStore(deps.DB, f.log); err != nil {
		return nil, err
	}
	if f.ccfg, err = f.clientConfig(); err != nil {
		return nil, err
	}
	f.skip = f.store.heldTags()
	if f.dbID, err = loadIdentity(deps.DB); err != nil {
		return nil, err
	}
	if f.daily, f.reserve, err = budgetLimits(cfg.Budget); err != nil {
		return nil, err
	}
	if err := f.loadBudget(); err != nil {
		return nil, fmt.Errorf("load uplink budget: %w", err)
	}
	f.st.Budget = f.daily
	f.willQoS = 1
	f.st.State = StateDisconnected
	return f, nil
}

// defaultStatusTopic is <first remote_prefix>status, or outpost/<client id>/status
// when the first forward rule has no prefix.
func defaultStatusTopic(cfg Config, clientID string) string {
	if len(cfg.Forward) > 0 && cfg.Forward[0].RemotePrefix != "" {
		return cfg.Forward[0].RemotePrefix + "status"
	}
	return "outpost/" + clientID + "/status"
}

// Tap is the msg.Tap to register with the broker: it takes the messages
// that match a forward rule (except those the downlink itself published)
// into the durable queue before the publisher is acknowledged.
func (f *Forwarder) Tap() msg.Tap { return f.tap }

// ClientID is the client id the uplink connects to the cloud with.
func (f *Forwarder) ClientID() string { return f.clientID }

// DownlinkClientID is the broker client id downlinked messages are
// published under (see Deps.Sessions); the tap never forwards those.
func (f *Forwarder) DownlinkClientID() string { return f.dlID }

// StatusTopic is the cloud topic of the retained birth ("online") and
// will ("offline") messages.
func (f *Forwarder) StatusTopic() string { return f.status }

// Run owns the cloud connection until ctx is done: it connects (with
// exponential backoff and jitter between attempts), drains the queue, runs
// the downlink and publishes the link status. It returns nil once ctx is
// done and every goroutine it started has exited, after a graceful
// DISCONNECT with the "offline" status. With uplink.enabled false it only
// waits for ctx (the tap keeps queueing).
func (f *Forwarder) Run(ctx context.Context) error {
	f.runMu.Lock()
	if f.running {
		f.runMu.Unlock()
		return errors.New("storeforward: Run called twice")
	}
	f.running = true
	f.runMu.Unlock()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { f.store.run(stop) })
	wg.Go(func() { f.runSys(ctx) })
	var err error
	if f.cfg.Enabled {
		err = f.runLink(ctx)
	} else {
		f.setState(StateDisabled, "uplink.enabled is false")
		<-ctx.Done()
	}
	close(stop)
	wg.Wait()
	return err
}

// clientConfig builds the cloud connection's client.Config.
func (f *Forwarder) clientConfig() (client.Config, error) {
	cfg := f.cfg
	c := client.Config{
		URL:             cfg.URL,
		ClientID:        f.clientID,
		Username:        cfg.Username,
		ProtocolVersion: packet.V5,
		KeepAlive:       cfg.KeepAlive,
		MaxInflight:     cfg.MaxInflight,
		Store:           f.store,
		Logger:          f.log,
		// A persistent cloud session: QoS 1/2 state and downlink
		// subscriptions survive link drops [MQTT-3.1.2-4]; in v5 the
		// session must outlive the connection (Session Expiry > 0).
		CleanStart:    false,
		SessionExpiry: sessionExpiry,
		// Downlinked QoS 1/2 messages in flight towards us.
		ReceiveMaximum: 64,
		// Let the cloud use topic aliases towards us too.
		TopicAliasMaximum: 64,
		OnMessage:         f.downlink,
	}
	if cfg.ProtocolVersion == 4 {
		c.ProtocolVersion = packet.V311
		if c.MaxInflight == 0 {
			c.MaxInflight = 20
		}
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return c, fmt.Errorf("uplink.password_file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		c.Password = []byte(strings.TrimRight(line, "\r"))
	}
	if strings.HasPrefix(cfg.URL, "mqtts://") || strings.HasPrefix(cfg.URL, "wss://") ||
		strings.HasPrefix(cfg.URL, "ssl://") || strings.HasPrefix(cfg.URL, "tls://") {
		t, err := tlsConfig(cfg.TLS)
		if err != nil {
			return c, err
		}
		c.TLS = t
	}
	return c, nil
}

// sessionExpiry (v5) asks the cloud to keep our session a week across a
// link outage; a cloud may announce a shorter one (AWS IoT: 1 hour by
// default), and then what it had in flight is published again as new.
const sessionExpiry = 7 * 24 * 3600

func tlsConfig(t TLSConfig) (*tls.Config, error) {
	c := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink.tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("uplink.tls cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// checkConfig reports what would make the forwarder fail, naming the key
// (configs.Validate reports these and more for a config file; this guards
// a Config built in code).
func checkConfig(c Config) error {
	var errs []error
	for i, r := range c.Forward {
		if err := topic.ValidFilter(r.Filter); err != nil {
			errs = append(errs, fmt.Errorf("uplink.forward[%d].filter: %w", i, err))
		}
		if r.QoS > 2 {
			errs = append(errs, fmt.Errorf("uplink.forward[%d].qos: %d is not 0, 1 or 2", i, r.QoS))
		}
		if strings.ContainsAny(r.RemotePrefix, "+#") {
			errs = append(errs, fmt.Errorf("uplink.forward[%d].remote_prefix: %q contains a wildcard", i, r.RemotePrefix))
		}
	}
	for i, r := range c.Downlink {
		if err := topic.ValidFilter(r.Filter); err != nil {
			errs = append(errs, fmt.Errorf("uplink.downlink[%d].filter: %w", i, err))
		}
		if r.QoS > 2 {
			errs = append(errs, fmt.Errorf("uplink.downlink[%d].qos: %d is not 0, 1 or 2", i, r.QoS))
		}
		if strings.ContainsAny(r.LocalPrefix, "+#") {
			errs = append(errs, fmt.Errorf("uplink.downlink[%d].local_prefix: %q contains a wildcard", i, r.LocalPrefix))
		}
	}
	if c.Reconnect.Min < 0 || c.Reconnect.Max < 0 {
		errs = append(errs, fmt.Errorf("uplink.reconnect: negative delay"))
	}
	if c.Enabled && c.URL == "" {
		errs = append(errs, errors.New("uplink.url: required when uplink.enabled is true"))
	}
	if c.StatusTopic != "" {
		if err := topic.ValidName(c.StatusTopic); err != nil {
			errs = append(errs, fmt.Errorf("uplink.status_topic: %w", err))
		}
	}
	return errors.Join(errs...)
}
