package storeforward

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/brokercore/client"
	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Reconnect delays when uplink.reconnect leaves them zero.
const (
	defaultReconnectMin = time.Second
	defaultReconnectMax = 5 * time.Minute
	// A connection that lasted this long resets the backoff to its minimum.
	backoffReset = time.Minute
)

// backoff is the delay before reconnect attempt n (0-based): min·2^n capped
// at max, with "equal jitter" (a random half of it added to the other half)
// so a fleet of hubs that lost the same cloud do not come back in step.
func backoff(b Backoff, n int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = defaultReconnectMin
	}
	if hi <= 0 {
		hi = defaultReconnectMax
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(half+1)
}

// runLink connects, runs a session until the link drops, and reconnects
// after a backoff, until ctx is done.
func (f *Forwarder) runLink(ctx context.Context) error {
	sess, err := f.openDownlinkSession(ctx)
	if err != nil {
		return err
	}
	if sess != nil {
		defer sess.Close(false)
	}
	attempt := 0
	for ctx.Err() == nil {
		f.setState(StateConnecting, "")
		c, err := f.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			d := backoff(f.cfg.Reconnect, attempt)
			attempt++
			f.linkDown(err)
			f.log.Warn("cloud connection failed", "url", f.cfg.URL, "err", err, "attempt", attempt, "retry_in", d.Round(time.Millisecond))
			if !sleepCtx(ctx, d) {
				break
			}
			continue
		}
		start := time.Now()
		err = f.session(ctx, c)
		if ctx.Err() != nil {
			f.linkDown(errors.New("stopped"))
			break
		}
		if time.Since(start) >= backoffReset {
			attempt = 0
		}
		d := backoff(f.cfg.Reconnect, attempt)
		attempt++
		f.linkDown(err)
		f.log.Warn("cloud connection lost", "url", f.cfg.URL, "err", err, "retry_in", d.Round(time.Millisecond))
		if !sleepCtx(ctx, d) {
			break
		}
	}
	// Whatever completed is acknowledged in the queue before Run returns
	// (the hub closes the database next).
	if err := f.store.flush(); err != nil {
		f.log.Error("acknowledging sent records in the queue", "err", err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dial connects with the will set. A cloud that refuses the will as it
// is (v5 CONNACK 0x9A Retain not supported, 0x9B QoS not supported) gets it
// again without retain / at QoS 0, and we remember that.
func (f *Forwarder) dial(ctx context.Context) (*client.Client, error) {
	for range 3 {
		cfg := f.ccfg
		f.mu.Lock()
		will := &client.Message{Topic: f.status, Payload: []byte("offline"), QoS: f.willQoS, Retain: !f.willNoRetain}
		f.mu.Unlock()
		cfg.Will = will
		c, err := client.Dial(ctx, cfg)
		var se *client.ServerError
		if errors.As(err, &se) && se.Op == "connect" {
			f.mu.Lock()
			switch {
			case se.Code == packet.RetainNotSupported && !f.willNoRetain:
				f.willNoRetain = true
				f.mu.Unlock()
				f.log.Warn("the cloud does not support retained messages: the will is sent without retain", "topic", f.status)
				continue
			case se.Code == packet.QoSNotSupported && f.willQoS > 0:
				f.willQoS = 0
				f.mu.Unlock()
				f.log.Warn("the cloud refused the will's QoS: the will is sent at QoS 0", "topic", f.status)
				continue
			}
			f.mu.Unlock()
		}
		return c, err
	}
	return nil, fmt.Errorf("connect %s: the cloud refused every form of the will", f.cfg.URL)
}

// session runs one connection: birth message, downlink subscriptions, the
// drain, and on ctx's end a graceful goodbye. It returns why the
// connection ended.
func (f *Forwarder) session(ctx context.Context, c *client.Client) error {
	lim := c.Limits()
	f.linkUp(c)
	f.noteLimits(lim)

	comp := make(chan sent, completionBuffer)
	var cwg sync.WaitGroup
	cwg.Go(func() { f.complete(c, comp) })
	for _, t := range c.Resumed() {
		comp <- sent{tok: t, tag: t.Message().Tag, qos: t.Message().QoS}
	}

	// Birth: retained "online" on the status topic (the will says "offline").
	birth := &client.Message{Topic: f.status, Payload: []byte("online"), QoS: min(1, lim.MaxQoS), Retain: lim.RetainAvailable}
	if t, err := c.PublishAsync(ctx, birth); err == nil {
		comp <- sent{tok: t, qos: birth.QoS}
	} else {
		f.log.Warn("publishing the birth message", "topic", f.status, "err", err)
	}
	f.subscribeDownlink(ctx, c)

	err := f.drain(ctx, c, comp)
	if ctx.Err() != nil {
		f.goodbye(c)
	} else if err != nil && c.Err() == nil {
		// The drain stopped on its own (the database closed): end the link.
		c.Close()
	}
	<-c.Done()
	close(comp)
	cwg.Wait()
	if err == nil || ctx.Err() != nil {
		err = c.Err()
	}
	return err
}

// goodbye publishes "offline" on the status topic (a DISCONNECT discards
// the will [MQTT-3.14.4-3]) and disconnects, waiting a few seconds at most.
func (f *Forwarder) goodbye(c *client.Client) {
	gctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lim := c.Limits()
	bye := &client.Message{Topic: f.status, Payload: []byte("offline"), QoS: min(1, lim.MaxQoS), Retain: lim.RetainAvailable}
	if err := c.Publish(gctx, bye); err != nil {
		f.log.Warn("publishing offline status", "topic", f.status, "err", err)
	}
	if err := c.Disconnect(gctx); err != nil {
		f.log.Warn("disconnecting from the cloud", "err", err)
		c.Close()
	}
}

// completionBuffer bounds the sent-but-not-completed messages the drain
// hands to complete; QoS 1/2 are bounded by the window anyway.
const completionBuffer = 4096

// sent is a message handed to the client, tracked to its end.
type sent struct {
	tok  *client.Token
	tag  uint64 // 0: not a queue record (birth)
	qos  byte
	size int
}

// complete waits for every token of the connection in send order and
// counts how each ended. A QoS 1/2 record's queue ack is done by the
// session store when the client deletes its entry; a QoS 0 record is
// acknowledged here once written.
func (f *Forwarder) complete(c *client.Client, comp <-chan sent) {
	for s := range comp {
		select {
		case <-s.tok.Done():
		case <-c.Done():
			// The client completes the tokens of QoS 1/2 messages when the
			// connection ends; a QoS 0 message still queued for the
			// writer was never written.
			select {
			case <-s.tok.Done():
			default:
				if s.qos == 0 && s.tag != 0 {
					f.mu.Lock()
					f.retry0 = append(f.retry0, s.tag)
					f.mu.Unlock()
				}
				continue
			}
		}
		err := s.tok.Err()
		var se *client.ServerError
		switch {
		case err != nil && s.qos == 0 && s.tag != 0 && !errors.As(err, &se):
			// Not known to be written: the next connection sends it again.
			f.mu.Lock()
			f.retry0 = append(f.retry0, s.tag)
			f.mu.Unlock()
		case err == nil:
			if s.tag == 0 {
				continue
			}
			f.count(func(st *Status) { st.Acked++ })
			f.mu.Lock()
			f.throttled = 0
			f.mu.Unlock()
			if s.qos == 0 {
				f.store.ackTag(s.tag)
			}
		case errors.As(err, &se) && retryable(err) && s.tag != 0:
			// Kept in the queue by the session store; the drain sends it
			// again after a pause.
			f.count(func(st *Status) { st.Throttled++ })
		case errors.As(err, &se):
			// The cloud refused it (v5 reason code >= 0x80): sending it
			// again would be refused again. The client has deleted its
			// entry, which acknowledged the record.
			var n int64
			f.count(func(st *Status) { st.Rejected++; n = st.Rejected })
			if n <= 10 || n%1000 == 0 { // a cloud policy refusing a whole topic must not flood the journal
				f.log.Warn("the cloud refused a message; it is dropped from the queue",
					"topic", s.tok.Message().Topic, "code", fmt.Sprintf("0x%02X", se.Code), "reason", se.Reason, "refused_total", n)
			}
		}
	}
}
