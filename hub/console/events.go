package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// streamBuffer is how many events a slow /api/events client may be behind
// before it is dropped (its browser reconnects and refetches).
const streamBuffer = 64

// maxTopicChanges is the most topic updates one "topics" event carries;
// past it the event is "topics-reset" and the page refetches /api/topics.
const maxTopicChanges = 500

func frame(event string, v any) []byte {
	var b bytes.Buffer
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteString("\ndata: ")
	if err := json.NewEncoder(&b).Encode(v); err != nil { // Encode ends with \n
		b.WriteString("{}\n")
	}
	b.WriteString("\n")
	return b.Bytes()
}

// tick samples the parts once: rates and queue depth always; the events
// only while someone listens. last holds the previous frame of each
// snapshot event, so unchanged ones are not resent.
func (c *Console) tick(last map[string][]byte) map[string][]byte {
	now := c.opts.Now()
	var bs BrokerStats
	if c.src.Broker != nil {
		bs = c.src.Broker()
	}
	c.sampleRates(now, bs)
	var qs QueueState
	if c.src.Queue != nil {
		qs = c.src.Queue()
		c.live.mu.Lock()
		c.live.queueDepth.add(now, float64(qs.Depth))
		c.live.queueCoarse.add(now, float64(qs.Depth))
		c.live.mu.Unlock()
	}
	var ss []Sensor
	if c.src.Sensors != nil {
		ss = c.src.Sensors()
		c.live.setSensors(ss)
	}

	c.live.mu.Lock()
	readings := c.live.readings
	c.live.readings = nil
	topics, reset := c.live.topics.changes(now, maxTopicChanges)
	c.live.mu.Unlock()

	if c.listenerCount() == 0 {
		return nil
	}
	if last == nil {
		last = map[string][]byte{}
	}
	c.broadcast(frame("overview", c.overview(now, bs, qs, ss)))
	snap := func(name string, v any) {
		f := frame(name, v)
		if !bytes.Equal(f, last[name]) {
			c.broadcast(f)
			last[name] = f
		}
	}
	snap("sensors", sensorsOrEmpty(ss))
	snap("clients", c.clients(bs))
	if len(readings) > 0 {
		c.broadcast(frame("readings", readings))
	}
	switch {
	case reset:
		c.broadcast(frame("topics-reset", struct{}{}))
	case len(topics) > 0:
		c.broadcast(frame("topics", topics))
	}
	return last
}

func sensorsOrEmpty(ss []Sensor) []Sensor {
	if ss == nil {
		return []Sensor{}
	}
	return ss
}

func (c *Console) sampleRates(now time.Time, bs BrokerStats) {
	c.streams.Lock()
	if !c.prevAt.IsZero() {
		if dt := now.Sub(c.prevAt).Seconds(); dt > 0 {
			c.rateIn = max(0, float64(bs.MessagesReceived-c.prevIn)/dt)
			c.rateOut = max(0, float64(bs.MessagesSent-c.prevOut)/dt)
		}
	}
	c.prevIn, c.prevOut, c.prevAt = bs.MessagesReceived, bs.MessagesSent, now
	in, out := c.rateIn, c.rateOut
	c.streams.Unlock()
	c.live.mu.Lock()
	c.live.rateIn.add(now, in)
	c.live.rateOut.add(now, out)
	c.live.mu.Unlock()
}

func (c *Console) rates() (in, out float64) {
	c.streams.Lock()
	defer c.streams.Unlock()
	return round4(c.rateIn), round4(c.rateOut)
}

func (c *Console) listenerCount() int {
	c.streams.Lock()
	defer c.streams.Unlock()
	return len(c.listeners)
}

// broadcast queues f on every stream; a stream that is streamBuffer events
// behind is closed (the browser's EventSource reconnects).
func (c *Console) broadcast(f []byte) {
	c.streams.Lock()
	defer c.streams.Unlock()
	for ch := range c.listeners {
		select {
		case ch <- f:
		default:
			delete(c.listeners, ch)
			close(ch)
		}
	}
}

func (c *Console) addListener() (chan []byte, bool) {
	c.streams.Lock()
	defer c.streams.Unlock()
	if c.closed {
		return nil, false
	}
	ch := make(chan []byte, streamBuffer)
	c.listeners[ch] = struct{}{}
	return ch, true
}

func (c *Console) removeListener(ch chan []byte) {
	c.streams.Lock()
	defer c.streams.Unlock()
	if _, ok := c.listeners[ch]; ok {
		delete(c.listeners, ch)
		close(ch)
	}
}

// closeStreams ends every stream (Run is returning) and refuses new ones.
func (c *Console) closeStreams() {
	c.streams.Lock()
	defer c.streams.Unlock()
	c.closed = true
	for ch := range c.listeners {
		delete(c.listeners, ch)
		close(ch)
	}
}

// apiEvents is GET /api/events: a text/event-stream of overview (every
// tick), sensors and clients (when they change), readings (new sensor
// values), topics (changed topics) and topics-reset events.
func (c *Console) apiEvents(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.addListener()
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "console is stopping")
		return
	}
	defer c.removeListener(ch)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	now := c.opts.Now()
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
	w.Write([]byte("retry: 2000\n\n"))
	w.Write(frame("overview", c.overview(now, bs, qs, ss)))
	w.Write(frame("sensors", sensorsOrEmpty(ss)))
	w.Write(frame("clients", c.clients(bs)))
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case f, ok := <-ch:
			if !ok {
				return
			}
			if _, err := w.Write(f); err != nil {
				return
			}
			// Write what else is already queued before flushing once.
			for more := true; more; {
				select {
				case f, ok := <-ch:
					if !ok {
						rc.Flush()
						return
					}
					w.Write(f)
				default:
					more = false
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}
