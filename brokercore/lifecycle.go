package brokercore

import (
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// openOpts describe a client taking a session, from CONNECT or Sessions.Open.
type openOpts struct {
	clientID   string
	username   string
	cleanStart bool
	expiry     time.Duration
	will       *msg.Message
	willDelay  time.Duration
	conn       *conn             // network client
	deliver    func(msg.Message) // in-process client
	owner      *inprocSession    // the in-process client's handle
	window     int
}

// openSession gives the client id's session to a new connection: the
// current connection, if any, is taken over (v5: DISCONNECT 0x8E
// [MQTT-3.1.4-3]); with clean start, or when the old session was not
// persistent, the stored state is discarded [MQTT-3.1.2-4].
func (b *Broker) openSession(o openOpts) (s *session, present bool) {
	for {
		b.mu.Lock()
		s = b.sessions[o.clientID]
		var old *conn
		inprocOnline := false
		if s != nil {
			s.mu.Lock()
			old = s.conn
			inprocOnline = s.deliver != nil
			s.mu.Unlock()
		}
		b.mu.Unlock()
		if old != nil {
			old.takeOver()
			<-old.wait(&old.detached)
			continue
		}
		if inprocOnline {
			s.mu.Lock()
			owner := s.owner
			s.mu.Unlock()
			b.detachSession(s, nil, owner, true)
			continue
		}
		b.storeMu.Lock()
		b.mu.Lock()
		s = b.sessions[o.clientID]
		if s != nil {
			s.mu.Lock()
			busy := s.online()
			s.mu.Unlock()
			if busy {
				b.mu.Unlock()
				b.storeMu.Unlock()
				continue
			}
		}
		var ops []msg.Op
		if s != nil {
			s.mu.Lock()
			keep := s.persistent && !o.cleanStart && !s.gone
			s.mu.Unlock()
			if !keep {
				ops = s.destroyLocked()
				delete(b.sessions, o.clientID)
				s = nil
			}
		}
		if s == nil {
			s = b.newSession(o.clientID)
			b.sessions[o.clientID] = s
		} else {
			present = true
		}
		s.mu.Lock()
		s.conn = o.conn
		s.deliver = o.deliver
		s.owner = o.owner
		s.inproc = o.deliver != nil
		s.username = o.username
		s.expiry = o.expiry
		s.persistent = o.expiry > 0
		s.will = o.will
		s.willDelay = o.willDelay
		// A new connection before the will delay has passed cancels the
		// delayed will (MQTT 5.0 section 3.1.3.2.2).
		s.willDue = time.Time{}
		s.window = o.window
		if s.window <= 0 {
			s.window = b.cfg.MaxInflight
		}
		if s.persistent && b.store != nil {
			ops = append(ops, msg.Op{Key: infoKey(s.id), Value: encodeInfo(s)})
			s.storedInfo = true
			s.writes.Store(true)
		}
		s.mu.Unlock()
		b.mu.Unlock()
		b.commitLocked(ops, nil)
		b.storeMu.Unlock()
		return s, present
	}
}

// resumeSession re-sends the session's unacknowledged messages on c and
// fills its window from the queue.
func (b *Broker) resumeSession(s *session, c *conn) {
	locked := s.lockStore()
	s.mu.Lock()
	var ops []msg.Op
	if s.conn == c {
		ops = s.resumeLocked(nil)
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
	if locked {
		b.storeMu.Unlock()
	}
}

// resumeInproc hands an in-process session the messages queued while it
// was away, through its Deliver.
func (b *Broker) resumeInproc(s *session) {
	b.storeMu.Lock()
	s.mu.Lock()
	var ops []msg.Op
	if s.deliver != nil {
		all := append(s.inflight, s.queue...)
		b.stats.Queued.Add(-int64(len(s.queue)))
		s.inflight, s.queue = nil, nil
		for _, om := range all {
			if om.seq != 0 {
				ops = append(ops, msg.Op{Key: msgKey(s.id, om.seq), Delete: true})
			}
			if om.m.Expired(b.now()) {
				continue
			}
			s.pending = append(s.pending, om)
		}
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
	b.storeMu.Unlock()
	s.flushDeliver()
}

// detachSession lets go of s when connection c (nil: the in-process
// client) ends. With sendWill the will is published now, or after the
// will delay (MQTT 5.0 3.1.3.2.2) if the session outlives the connection.
func (b *Broker) detachSession(s *session, c *conn, owner *inprocSession, sendWill bool) {
	s.mu.Lock()
	if (c != nil && s.conn != c) || (c == nil && (s.deliver == nil || s.owner != owner)) {
		s.mu.Unlock()
		return
	}
	if c != nil {
		c.flow.stop()
	}
	s.conn = nil
	s.deliver = nil
	s.owner = nil
	if len(s.pending) > 0 {
		// Not yet handed to Deliver: back to the front of the queue.
		var keep []*outMsg
		for _, om := range s.pending {
			if om.qos > 0 {
				keep = append(keep, om)
			}
		}
		b.stats.Queued.Add(int64(len(keep)))
		s.queue = append(keep, s.queue...)
		s.pending = nil
	}
	now := b.now()
	s.offSince = now
	persistent := s.persistent && !s.gone
	var will *msg.Message
	if sendWill && s.will != nil {
		if s.willDelay > 0 && persistent {
			d := s.willDelay
			if s.expiry < d {
				d = s.expiry
			}
			s.willDue = now.Add(d)
		} else {
			will = s.will
			s.will = nil
		}
	} else {
		s.will = nil
	}
	// Online the queue may have grown past max_queued (flow control holds
	// publishers instead of dropping); offline the policy is max_queued,
	// oldest dropped. The session record keeps the disconnect time, so
	// the expiry counts from it across a restart.
	save := persistent && s.writes.Load()
	s.mu.Unlock()
	if save {
		b.storeMu.Lock()
		s.mu.Lock()
		var ops []msg.Op
		if !s.online() && !s.gone && s.persistent {
			ops = s.trimLocked(b.cfg.MaxQueued, nil)
			ops = append(ops, msg.Op{Key: infoKey(s.id), Value: encodeInfo(s)})
			s.storedInfo = true
		}
		s.mu.Unlock()
		b.commitLocked(ops, nil)
		b.storeMu.Unlock()
	} else if persistent {
		s.mu.Lock()
		if !s.online() && !s.gone {
			s.trimLocked(b.cfg.MaxQueued, nil) // no store: nothing to write
		}
		s.mu.Unlock()
	}
	if will != nil {
		b.publishWill(s, will)
	}
	if !persistent {
		b.removeSession(s)
	}
}

// takeOver closes c because another connection took its client id.
func (c *conn) takeOver() {
	c.reasonMu.Lock()
	c.takenOver = true
	c.reasonMu.Unlock()
	c.setReason("session taken over")
	if c.version == packet.V5 {
		c.closeAfter(&packet.Disconnect{ReasonCode: packet.SessionTakenOver})
	} else {
		c.closeAfter(nil)
	}
}

// setExpiry changes the session expiry (v5 DISCONNECT may).
func (b *Broker) setExpiry(s *session, d time.Duration) {
	b.storeMu.Lock()
	defer b.storeMu.Unlock()
	s.mu.Lock()
	s.expiry = d
	s.persistent = d > 0
	var ops []msg.Op
	if s.persistent && b.store != nil {
		ops = append(ops, msg.Op{Key: infoKey(s.id), Value: encodeInfo(s)})
		s.storedInfo = true
		s.writes.Store(true)
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
}

// saveInfo writes the session record (subscriptions, expiry) if persistent.
func (b *Broker) saveInfo(s *session) {
	if b.store == nil || !s.writes.Load() {
		return
	}
	b.storeMu.Lock()
	defer b.storeMu.Unlock()
	s.mu.Lock()
	var ops []msg.Op
	if s.persistent && !s.gone {
		ops = append(ops, msg.Op{Key: infoKey(s.id), Value: encodeInfo(s)})
		s.storedInfo = true
	}
	s.mu.Unlock()
	b.commitLocked(ops, nil)
}

// startExpiry runs the once-a-second sweep that publishes delayed wills
// and ends offline sessions whose expiry interval has passed.
func (b *Broker) startExpiry() {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-b.ctx.Done():
				return
			case <-t.C:
				b.sweep(b.now())
			}
		}
	}()
}

func (b *Broker) sweep(now time.Time) {
	b.limitLog.flush(now, false)
	all := b.sessionList()
	for _, s := range all {
		s.mu.Lock()
		if s.qDropped > 0 && (s.qDropLog.IsZero() || now.Sub(s.qDropLog) >= limitLogInterval) {
			n, queued := s.qDropped, len(s.queue)
			s.qDropped, s.qDropLog = 0, now
			s.mu.Unlock()
			b.log.Warn("offline session queue full: oldest messages dropped", "client", s.id,
				"dropped_since_last_log", n, "queued", queued, "max_queued", b.cfg.MaxQueued)
			s.mu.Lock()
		}
		if s.online() || s.gone {
			s.mu.Unlock()
			continue
		}
		var will *msg.Message
		expired := s.expiry != neverExpire && now.Sub(s.offSince) >= s.expiry
		if s.will != nil && !s.willDue.IsZero() && (!now.Before(s.willDue) || expired) {
			will = s.will
			s.will = nil
			s.willDue = time.Time{}
		}
		s.mu.Unlock()
		if will != nil {
			b.publishWill(s, will)
		}
		if expired {
			b.log.Debug("session expired", "client", s.id)
			b.removeSession(s)
		}
	}
}

// flushDelayedWills publishes every will still waiting for its delay (the
// server is shutting down, which ends the wait).
func (b *Broker) flushDelayedWills() {
	all := b.sessionList()
	for _, s := range all {
		s.mu.Lock()
		var will *msg.Message
		if !s.online() && s.will != nil && !s.willDue.IsZero() {
			will = s.will
			s.will = nil
			s.willDue = time.Time{}
		}
		s.mu.Unlock()
		if will != nil {
			b.publishWill(s, will)
		}
	}
}

// publishWill publishes a will message, subject to the ACL like any publish.
func (b *Broker) publishWill(s *session, will *msg.Message) {
	if b.crashed.Load() {
		return
	}
	m := *will
	m.ClientID = s.id
	m.Received = b.now()
	s.mu.Lock()
	user := s.username
	s.mu.Unlock()
	if _, az := b.auth(); az != nil && !az.Allow(s.id, user, m.Topic, AccessWrite) {
		b.log.Info("Denied will PUBLISH", "client", s.id, "topic", m.Topic)
		return
	}
	b.log.Debug("Sending will", "client", s.id, "topic", m.Topic)
	b.stats.countReceived(&m)
	b.route(&m, nil, nil, nil)
}

// sessionList is a snapshot of the sessions, taken under b.mu, for work
// that must then lock each session on its own (lock order: b.mu before
// session.mu, never both held for the walk).
func (b *Broker) sessionList() []*session {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		all = append(all, s)
	}
	return all
}
