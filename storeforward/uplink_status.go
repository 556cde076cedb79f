package storeforward

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Link states (Status.State).
const (
	StateDisabled     = "disabled" // uplink.enabled is false: the queue only fills
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
)

// Status is the uplink's state and counters, for the console, /metrics and
// $SYS/outpost/uplink/. Counters count since the Forwarder was built.
type Status struct {
	State           string
	URL             string
	ClientID        string
	StatusTopic     string
	LastConnect     time.Time // zero: never connected
	LastDisconnect  time.Time
	LastError       string // why the link last went down or a connect failed
	Connects        int64  // successful connections
	Reconnects      int64  // connections after the first
	ConnectFailures int64

	// What the cloud's CONNACK allowed on the current (or last) connection.
	Limits client.Limits

	InFlight int   // QoS 1/2 messages sent and not yet acknowledged (window: Limits.Window)
	Sent     int64 // PUBLISH packets handed to the link (resends by the client not counted)
	Acked    int64 // PUBACK/PUBCOMP received, or QoS 0 written
	Rejected int64 // refused by the cloud (v5 reason code >= 0x80); dropped
	// Throttled counts refusals for now (v5 0x97 Quota exceeded, 0x89
	// Server busy, 0x80, 0x83, 0x91): the message stays queued and is
	// sent again after a pause.
	Throttled int64
	Refused   int64 // too large for the cloud's Maximum Packet Size or an invalid topic; dropped
	Expired   int64 // message expiry passed while queued; dropped
	Corrupt   int64 // records that did not decode; dropped
	// Downgraded counts messages sent with a lower QoS or without retain
	// because the cloud does not support them (AWS IoT Core: no QoS 2).
	Downgraded int64

	BytesToday int64  // estimated bytes of PUBLISH packets sent since local midnight
	Day        string // the day BytesToday counts (YYYY-MM-DD)
	Budget     int64  // uplink.budget.daily_bytes; 0 = none
	Paused     string // why the drain is held back (budget), "" when it is not

	Downlinked     int64 // cloud messages published locally
	DownlinkErrors int64 // cloud messages the local broker refused

	Queue QueueStatus
}

// QueueStatus summarises the durable queue (all lanes).
type QueueStatus struct {
	Depth     int64         // records queued (including those in flight)
	Bytes     int64         // stored bytes
	OldestAge time.Duration // of the oldest record; 0 when empty
	// Rate is the recent acknowledgement rate (messages/s); ETA the time
	// to drain Depth at that rate (0 when empty or nothing drains).
	Rate  float64
	ETA   time.Duration
	Lanes []LaneStatus
}

// LaneStatus is one lane of the queue.
type LaneStatus struct {
	Lane      string
	Priority  int
	Depth     int64
	Bytes     int64
	OldestAge time.Duration
}

// linkState is the mutable part of Status plus the bookkeeping behind it.
type linkState struct {
	Status
	logged   map[string]bool // downgrade kinds already logged
	rateAt   time.Time
	rateAck  int64
	rateEWMA float64
}

// Status returns a snapshot of the link and the queue.
func (f *Forwarder) Status() Status {
	now := f.now()
	f.mu.Lock()
	f.rollDay(&f.st.Status, now)
	st := f.st.Status
	f.updateRate(now)
	rate := f.st.rateEWMA
	f.mu.Unlock()
	st.URL, st.ClientID, st.StatusTopic = f.cfg.URL, f.clientID, f.status
	st.InFlight = f.store.outgoing()
	st.Queue = f.queueStatus(now)
	st.Queue.Rate = rate
	if rate > 0 && st.Queue.Depth > 0 {
		st.Queue.ETA = time.Duration(float64(st.Queue.Depth) / rate * float64(time.Second))
	}
	return st
}

func (f *Forwarder) queueStatus(now time.Time) QueueStatus {
	var q QueueStatus
	prio := make(map[string]int, len(f.lanes))
	for _, l := range f.lanes {
		prio[l.name] = l.prio
	}
	for _, ls := range f.db.Lanes() {
		age := time.Duration(0)
		if ls.Depth > 0 && !ls.Oldest.IsZero() {
			age = now.Sub(ls.Oldest)
		}
		q.Depth += ls.Depth
		q.Bytes += ls.Bytes
		q.OldestAge = max(q.OldestAge, age)
		q.Lanes = append(q.Lanes, LaneStatus{Lane: ls.Lane, Priority: prio[ls.Lane], Depth: ls.Depth, Bytes: ls.Bytes, OldestAge: age})
	}
	return q
}

// updateRate folds the acks since the last call into an exponentially
// weighted rate (time constant about 30 s); f.mu held.
func (f *Forwarder) updateRate(now time.Time) {
	s := &f.st
	if s.rateAt.IsZero() {
		s.rateAt, s.rateAck = now, s.Acked
		return
	}
	dt := now.Sub(s.rateAt).Seconds()
	if dt < 1 {
		return
	}
	inst := float64(s.Acked-s.rateAck) / dt
	w := min(dt/30, 1)
	s.rateEWMA = s.rateEWMA*(1-w) + inst*w
	s.rateAt, s.rateAck = now, s.Acked
}

// count applies fn to the counters under the lock.
func (f *Forwarder) count(fn func(*Status)) {
	f.mu.Lock()
	fn(&f.st.Status)
	f.mu.Unlock()
}

// setPaused sets (or with "" clears) why the drain is held back, unless the
// budget holds it.
func (f *Forwarder) setPaused(why string) {
	f.mu.Lock()
	if why != "" || !strings.HasPrefix(f.st.Paused, "daily budget") && !strings.HasPrefix(f.st.Paused, "only the reserve") {
		f.st.Paused = why
	}
	f.mu.Unlock()
}

func (f *Forwarder) setState(state, why string) {
	f.mu.Lock()
	f.st.State = state
	if why != "" {
		f.st.LastError = why
	}
	f.mu.Unlock()
}

func (f *Forwarder) linkUp(c *client.Client) {
	f.mu.Lock()
	f.st.State = StateConnected
	f.st.LastConnect = f.now()
	f.st.Connects++
	if f.st.Connects > 1 {
		f.st.Reconnects++
	}
	f.st.Limits = c.Limits()
	f.mu.Unlock()
	lim := c.Limits()
	f.log.Info("connected to the cloud", "url", f.cfg.URL, "client_id", f.clientID,
		"session_present", lim.SessionPresent, "window", lim.Window, "max_qos", lim.MaxQoS,
		"retain", lim.RetainAvailable, "max_packet_size", lim.MaxPacketSize, "topic_aliases", lim.TopicAliasMaximum,
		"resent", len(c.Resumed()))
	f.publishSys(context.Background(), true)
}

func (f *Forwarder) linkDown(err error) {
	f.mu.Lock()
	wasUp := f.st.State == StateConnected
	f.st.State = StateDisconnected
	if err != nil {
		f.st.LastError = err.Error()
	}
	if wasUp {
		f.st.LastDisconnect = f.now()
	} else {
		f.st.ConnectFailures++
	}
	f.mu.Unlock()
	f.publishSys(context.Background(), true)
}

// noteLimits logs, once per kind, what the cloud rules out.
func (f *Forwarder) noteLimits(lim client.Limits) {
	if lim.TopicAliasMaximum > 0 {
		f.log.Debug("using topic aliases towards the cloud", "max", lim.TopicAliasMaximum)
	}
}

// downgraded counts a message sent with less than it asked for, and logs
// each reason the first time.
func (f *Forwarder) downgraded(why []string) {
	f.mu.Lock()
	f.st.Downgraded++
	var first []string
	for _, w := range why {
		if !f.st.logged[w] {
			if f.st.logged == nil {
				f.st.logged = map[string]bool{}
			}
			f.st.logged[w] = true
			first = append(first, w)
		}
	}
	f.mu.Unlock()
	for _, w := range first {
		f.log.Warn(w + " (logged once; counted in $SYS/outpost/uplink/messages/downgraded)")
	}
}

// rollDay starts a new BytesToday at local midnight; f.mu held.
func (f *Forwarder) rollDay(st *Status, now time.Time) {
	day := now.Format(time.DateOnly)
	if st.Day != day {
		st.Day, st.BytesToday = day, 0
	}
}

// addBytes counts bytes sent today; f.mu held.
func (f *Forwarder) addBytes(st *Status, now time.Time, n int) {
	f.rollDay(st, now)
	st.BytesToday += int64(n)
}

// sysPrefix is where the link status is published in the local broker.
const sysPrefix = "$SYS/outpost/uplink/"

// runSys publishes the status every Deps.SysInterval until ctx is done.
func (f *Forwarder) runSys(ctx context.Context) {
	iv := f.deps.SysInterval
	if iv == 0 {
		iv = 10 * time.Second
	}
	if iv < 0 || f.deps.Publisher == nil {
		// No status to publish; still save the budget now and then.
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				f.saveBudget()
				return
			case <-t.C:
				f.saveBudget()
			}
		}
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	f.publishSys(ctx, false)
	for {
		select {
		case <-ctx.Done():
			f.saveBudget()
			return
		case <-t.C:
			f.publishSys(ctx, false)
			f.saveBudget()
		}
	}
}

// publishSys publishes the status as retained QoS 0 messages; with
// stateOnly just the link state (on every change).
func (f *Forwarder) publishSys(ctx context.Context, stateOnly bool) {
	if f.deps.Publisher == nil || f.deps.SysInterval < 0 {
		return
	}
	st := f.Status()
	kv := [][2]string{
		{"state", st.State},
		{"last_connect", fmtTime(st.LastConnect)},
		{"last_disconnect", fmtTime(st.LastDisconnect)},
		{"last_error", st.LastError},
		{"reconnects", strconv.FormatInt(st.Reconnects, 10)},
	}
	if !stateOnly {
		kv = append(kv, [][2]string{
			{"inflight", strconv.Itoa(st.InFlight)},
			{"messages/sent", strconv.FormatInt(st.Sent, 10)},
			{"messages/acked", strconv.FormatInt(st.Acked, 10)},
			{"messages/rejected", strconv.FormatInt(st.Rejected, 10)},
			{"messages/throttled", strconv.FormatInt(st.Throttled, 10)},
			{"messages/refused", strconv.FormatInt(st.Refused, 10)},
			{"messages/expired", strconv.FormatInt(st.Expired, 10)},
			{"messages/downgraded", strconv.FormatInt(st.Downgraded, 10)},
			{"messages/downlinked", strconv.FormatInt(st.Downlinked, 10)},
			{"bytes/today", strconv.FormatInt(st.BytesToday, 10)},
			{"budget/daily", strconv.FormatInt(st.Budget, 10)},
			{"budget/paused", st.Paused},
			{"queue/depth", strconv.FormatInt(st.Queue.Depth, 10)},
			{"queue/bytes", strconv.FormatInt(st.Queue.Bytes, 10)},
			{"queue/oldest_age", fmt.Sprintf("%.0f", st.Queue.OldestAge.Seconds())},
			{"queue/drain_rate", fmt.Sprintf("%.1f", st.Queue.Rate)},
			{"queue/drain_eta", fmt.Sprintf("%.0f", st.Queue.ETA.Seconds())},
		}...)
	}
	for _, e := range kv {
		m := msg.Message{Topic: sysPrefix + e[0], Payload: []byte(e[1]), Retain: true}
		if err := f.deps.Publisher.Publish(ctx, m); err != nil {
			f.log.Debug("publishing uplink status", "topic", m.Topic, "err", err)
			return
		}
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
