package hub

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/hub/console"
	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// consoleClientID is the client id the console's test messages carry,
// for ACL pattern lines (%c).
const consoleClientID = "outpost-console"

// defaultHTTPListen is http.listen's default (DESIGN.md).
const defaultHTTPListen = "127.0.0.1:9883"

// httpState is the running console: where it listens and the adapters'
// own small state (the drain-rate estimate, the cached disk usage).
type httpState struct {
	addr net.Addr
	tls  bool
	cert *consoleCert // with http.tls; re-read by Reload (SIGHUP)

	mu        sync.Mutex
	disk      int64
	diskAt    time.Time
	ackedPrev int64
	ackedAt   time.Time
	drainRate float64 // records/s, smoothed
}

// consoleCert is the console's TLS certificate. New handshakes read the
// current one, so a renewed certificate (certbot's deploy hook, a site's
// own CA) takes effect on SIGHUP like the broker's listeners', and open
// sessions keep going.
type consoleCert struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// load reads the certificate and key files; on error the current
// certificate stays.
func (c *consoleCert) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("http.tls: cert_file %s, key_file %s: %w", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&cert)
	return nil
}

func (c *consoleCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }

// httpURL is the console's URL for the summary.
func (s *httpState) url() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.addr.String() + "/"
}

// startHTTP starts the web console, /api, /metrics and /healthz on
// http.listen; on a non-loopback address it requires a login (and TLS when
// http.tls is set).
func (h *Hub) startHTTP(ctx context.Context) (func(context.Context) error, error) {
	hc := h.cfg.HTTP
	addr := hc.Listen
	if addr == "" {
		addr = defaultHTTPListen
	}
	pwFile := hc.PasswordFile
	if pwFile == "" {
		pwFile = h.cfg.Broker.PasswordFile
	}
	st := &httpState{tls: hc.TLS.CertFile != ""}
	c, err := console.New(h.consoleSources(st), console.Options{
		Logger:       h.log.With("component", "console"),
		RequireLogin: !console.IsLoopback(addr) || len(hc.Users) > 0,
		Users:        hc.Users,
		PasswordFile: pwFile,
		TLS:          st.tls,
	})
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if st.tls {
		st.cert = &consoleCert{certFile: hc.TLS.CertFile, keyFile: hc.TLS.KeyFile}
		if err := st.cert.load(); err != nil {
			return nil, err
		}
		tlsCfg = &tls.Config{GetCertificate: st.cert.get, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	st.addr = ln.Addr()
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	h.http = st
	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // /api/events lifts it for its stream
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.With("component", "console").Handler(), slog.LevelWarn),
	}
	return h.runPart("http console", func(ctx context.Context) error {
		runCtx, stopRun := context.WithCancel(ctx)
		defer stopRun()
		errc := make(chan error, 2)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := c.Run(runCtx); err != nil {
				errc <- err
			}
		})
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", st.addr, err)
			}
		})
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case err = <-errc:
		}
		stopRun() // ends Run, which ends every /api/events stream
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
		wg.Wait()
		return err
	}), nil
}

// consoleSources adapts the real parts to what the console reads.
func (h *Hub) consoleSources(st *httpState) console.Sources {
	src := console.Sources{
		Version:    h.opts.Version,
		Started:    time.Now(),
		Broker:     func() console.BrokerStats { return brokerStats(h.broker.Stats()) },
		Publish:    h.broker,
		MayPublish: func(user, topic string) bool { return h.broker.MayPublish(consoleClientID, user, topic) },
		Subscribe:  h.broker,
		Health:     h.Healthy,
		Uplink:     h.consoleUplink,
	}
	if h.gateway != nil {
		src.Gateway = func() console.GatewayStats { return gatewayStats(h.gateway.Stats()) }
	}
	if h.sensors.Load() != nil {
		// Through the pointer each time: SIGHUP may replace the sensors.
		src.Sensors = func() []console.Sensor {
			if a := h.sensors.Load(); a != nil {
				return consoleSensors(a.Status())
			}
			return nil
		}
		src.ReadSensor = func(ctx context.Context, name string) (console.SensorReading, error) {
			a := h.sensors.Load()
			if a == nil {
				return console.SensorReading{}, fmt.Errorf("read sensor %s: no sensors configured", name)
			}
			r, err := a.ReadNow(ctx, name)
			if err != nil {
				return console.SensorReading{}, err
			}
			return consoleReading(r), nil
		}
	}
	if h.db != nil {
		src.Queue = func() console.QueueState {
			q := st.queueState(h.db)
			if h.uplink != nil && h.cfg.Uplink.Enabled {
				q = queueFromUplink(q, h.uplink.Status().Queue)
			}
			return q
		}
		src.Peek = func(lane string, n int) ([]console.QueueRecord, error) { return peekQueue(h.db, lane, n) }
		src.Purge = func(lane string) (int64, error) { return purgeQueue(h.db, lane) }
	}
	src.Clients = h.consoleClients
	return src
}

// consoleClients lists the broker's sessions, with the MQTT-SN gateway's
// view (state, node address) for the sessions of its nodes.
func (h *Hub) consoleClients() []console.Client {
	sn := map[string]snbridge.ClientInfo{}
	if h.gateway != nil {
		for _, c := range h.gateway.Clients() {
			sn[c.ClientID] = c
		}
	}
	var out []console.Client
	for _, c := range h.broker.Clients() {
		cc := console.Client{
			ID: c.ClientID, Username: c.Username, Remote: c.RemoteAddr, Persistent: c.Persistent,
			InFlight: c.InFlight, Queued: c.Queued, State: "disconnected", Since: c.OfflineSince,
		}
		switch c.Protocol {
		case 3:
			cc.Protocol = "mqtt 3.1"
		case 4:
			cc.Protocol = "mqtt 3.1.1"
		case 5:
			cc.Protocol = "mqtt 5.0"
		default:
			cc.Protocol = "in-process"
		}
		if c.Connected {
			cc.State = "connected"
		}
		if n, ok := sn[c.ClientID]; ok {
			cc.Protocol, cc.State, cc.Remote = "mqtt-sn 1.2", n.State, n.Addr
			delete(sn, c.ClientID)
		}
		for _, s := range c.Subscriptions {
			cc.Subscriptions = append(cc.Subscriptions, console.Subscription{Filter: s.Filter, QoS: s.QoS})
		}
		out = append(out, cc)
	}
	// SN clients without a broker session (lost, clean) still show.
	for _, n := range sn {
		out = append(out, console.Client{ID: n.ClientID, Protocol: "mqtt-sn 1.2", State: n.State, Remote: n.Addr})
	}
	return out
}

func brokerStats(s *brokercore.Stats) console.BrokerStats {
	d := &s.Dropped
	return console.BrokerStats{
		ClientsConnected:    s.ClientsConnected.Load(),
		ClientsTotal:        s.ClientsTotal.Load(),
		ClientsMaximum:      s.ClientsMaximum.Load(),
		ClientsDisconnected: s.ClientsDisconnected.Load(),
		MessagesReceived:    s.MessagesReceived.Load(),
		MessagesSent:        s.MessagesSent.Load(),
		ReceivedByQoS:       [3]int64{s.ReceivedByQoS[0].Load(), s.ReceivedByQoS[1].Load(), s.ReceivedByQoS[2].Load()},
		SentByQoS:           [3]int64{s.SentByQoS[0].Load(), s.SentByQoS[1].Load(), s.SentByQoS[2].Load()},
		BytesReceived:       s.BytesReceived.Load(),
		BytesSent:           s.BytesSent.Load(),
		Subscriptions:       s.Subscriptions.Load(),
		Retained:            s.Retained.Load(),
		Queued:              s.Queued.Load(),
		Dropped: map[string]int64{
			"queue_full":     d.QueueFull.Load(),
			"slow_client":    d.SlowClient.Load(),
			"expired":        d.Expired.Load(),
			"too_large":      d.TooLarge.Load(),
			"not_authorized": d.NotAuthorized.Load(),
			"no_subscribers": d.NoSubscribers.Load(),
			"tap_failed":     d.TapFailed.Load(),
			"malformed":      d.Malformed.Load(),
		},
	}
}

func gatewayStats(s snbridge.Stats) console.GatewayStats {
	return console.GatewayStats{
		Clients: map[string]int{
			"active": s.Active, "asleep": s.Asleep, "awake": s.Awake, "lost": s.Lost, "disconnected": s.Disconnected,
		},
		MessagesIn: s.MessagesIn, MessagesOut: s.MessagesOut,
		PublishIn: s.PublishIn, PublishOut: s.PublishOut,
		Drops: s.Drops,
	}
}

func consoleReading(r adapters.Reading) console.SensorReading {
	out := console.SensorReading{Time: r.Time, Values: make([]console.Value, len(r.Values))}
	for i, v := range r.Values {
		out.Values[i] = console.Value{Quantity: v.Quantity, Value: v.Value, Unit: v.Unit}
	}
	return out
}

func consoleSensors(ss []adapters.Status) []console.Sensor {
	out := make([]console.Sensor, len(ss))
	for i, s := range ss {
		out[i] = console.Sensor{
			Name: s.Name, Driver: s.Driver, Bus: s.Bus, Topic: s.Topic,
			Interval: console.Duration(s.Interval), Simulated: s.Simulated,
			State: s.State, Error: s.Error, Since: s.Since, LastPublish: s.LastPublish,
			Reads: s.Reads, Errors: s.Errors, Publishes: s.Publishes, PublishErrors: s.PublishErrors,
		}
		if s.Last != nil {
			r := consoleReading(*s.Last)
			out[i].Last = &r
		}
	}
	return out
}

// queueState reads the queue's lanes and counters. The drain rate is the
// smoothed rate of acknowledgements (replaced by the uplink's own figure
// when it runs); the disk usage is re-measured every 10 s.
func (st *httpState) queueState(db *queue.DB) console.QueueState {
	now := time.Now()
	m := db.Metrics()
	var q console.QueueState
	for _, l := range db.Lanes() {
		q.Depth += l.Depth
		q.Bytes += l.Bytes
		q.OldestAge = max(q.OldestAge, console.Duration(l.Age))
		q.Lanes = append(q.Lanes, console.QueueLane{Lane: l.Lane, Depth: l.Depth, Bytes: l.Bytes, OldestAge: console.Duration(l.Age)})
	}
	sortLanes(q.Lanes, func(l console.QueueLane) string { return l.Lane })
	q.Appends, q.Acked = m.Appends, m.Acked
	q.Dropped = m.DroppedFull + m.DroppedAge
	q.Rejected = m.RejectedFull + m.RejectedDisk
	q.Syncs, q.SyncErrors = m.Txns, m.SyncErrors
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Sub(st.diskAt) > 10*time.Second {
		if n, err := db.DiskUsage(); err == nil {
			st.disk = n
		}
		st.diskAt = now
	}
	q.DiskBytes = st.disk
	if !st.ackedAt.IsZero() {
		if dt := now.Sub(st.ackedAt).Seconds(); dt >= 0.5 {
			r := float64(m.Acked-st.ackedPrev) / dt
			st.drainRate = 0.7*st.drainRate + 0.3*r
			st.ackedPrev, st.ackedAt = m.Acked, now
		}
	} else {
		st.ackedPrev, st.ackedAt = m.Acked, now
	}
	if st.drainRate < 0.01 {
		st.drainRate = 0
	}
	q.Rate = st.drainRate
	if q.Depth > 0 && q.Rate > 0 {
		q.ETA = console.Duration(time.Duration(float64(q.Depth) / q.Rate * float64(time.Second)))
	}
	return q
}

// sortLanes orders lanes by priority, highest first ("p10" before "p0"),
// the order the uplink drains them.
func sortLanes[T any](ls []T, name func(T) string) {
	prio := func(s string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "p"))
		if err != nil {
			return -1 << 31
		}
		return n
	}
	sort.SliceStable(ls, func(i, j int) bool { return prio(name(ls[i])) > prio(name(ls[j])) })
}

// laneNames returns lane, or every lane when lane is "", highest priority
// first; an unknown lane is an error listing the known ones.
func laneNames(db *queue.DB, lane string) ([]string, error) {
	ls := db.Lanes()
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Lane
	}
	sortLanes(names, func(s string) string { return s })
	if lane == "" {
		return names, nil
	}
	for _, n := range names {
		if n == lane {
			return []string{lane}, nil
		}
	}
	return nil, fmt.Errorf("no queue lane %q (lanes: %s)", lane, strings.Join(names, ", "))
}

const maxPeekPayload = 1024

// peekQueue reads up to n records from the head of lane ("" = the lanes in
// drain order) without removing them.
func peekQueue(db *queue.DB, lane string, n int) ([]console.QueueRecord, error) {
	lanes, err := laneNames(db, lane)
	if err != nil {
		return nil, err
	}
	var out []console.QueueRecord
	for _, l := range lanes {
		if len(out) >= n {
			break
		}
		recs, err := db.Read(l, 0, n-len(out))
		if err != nil {
			return out, fmt.Errorf("read lane %s: %w", l, err)
		}
		for _, r := range recs {
			qr := console.QueueRecord{Lane: l, Seq: r.Seq, Appended: r.Appended}
			rec, err := storeforward.DecodeRecord(r.Value)
			if err != nil {
				qr.Error = err.Error()
				out = append(out, qr)
				continue
			}
			qr.Topic, qr.QoS, qr.Retain, qr.Size = rec.Topic, rec.QoS, rec.Retain, len(rec.Payload)
			p := rec.Payload
			if len(p) > maxPeekPayload {
				p = p[:maxPeekPayload]
			}
			if utf8.Valid(p) {
				qr.Payload = string(p)
			} else {
				qr.Payload, qr.Base64 = base64.StdEncoding.EncodeToString(p), true
			}
			out = append(out, qr)
		}
	}
	return out, nil
}

// purgeQueue deletes every record of lane ("" = every lane), as the cloud's
// acknowledgements would, and returns how many there were. Records the
// uplink has in flight may still be sent once.
func purgeQueue(db *queue.DB, lane string) (int64, error) {
	lanes, err := laneNames(db, lane)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range lanes {
		s := db.Stat(l)
		if s.Depth == 0 {
			continue
		}
		if err := db.AckThrough(l, s.Next-1); err != nil {
			return n, fmt.Errorf("purge lane %s: %w", l, err)
		}
		n += s.Depth
	}
	return n, nil
}

// consoleUplink is the uplink's state for the console: the Forwarder's
// status when the hub runs one (forward rules or uplink configured).
func (h *Hub) consoleUplink() console.UplinkState {
	if h.uplink != nil {
		return uplinkState(h.uplink.Status(), h.cfg.Uplink.Enabled)
	}
	if !h.cfg.Uplink.Enabled {
		return console.UplinkState{State: storeforward.StateDisabled, URL: h.cfg.Uplink.URL}
	}
	return console.UplinkState{Enabled: true, State: storeforward.StateDisconnected, URL: h.cfg.Uplink.URL,
		LastError: "the uplink is not running"}
}

// uplinkState converts the Forwarder's status (storeforward.Status) for the
// console.
func uplinkState(s storeforward.Status, enabled bool) console.UplinkState {
	return console.UplinkState{
		Enabled: enabled, State: s.State, URL: s.URL, ClientID: s.ClientID,
		LastConnect: s.LastConnect, LastDisconnect: s.LastDisconnect, LastError: s.LastError,
		Connects: s.Connects, Reconnects: s.Reconnects, ConnectFailures: s.ConnectFailures,
		InFlight: s.InFlight, Sent: s.Sent, Acked: s.Acked, Rejected: s.Rejected + s.Refused, Paused: s.Paused,
	}
}

// queueFromUplink overlays the uplink's own drain rate and ETA (measured
// where the acknowledgements arrive) on the queue state.
func queueFromUplink(q console.QueueState, s storeforward.QueueStatus) console.QueueState {
	q.Rate = s.Rate
	q.ETA = console.Duration(s.ETA)
	return q
}
