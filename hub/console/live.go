package console

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// History sizes. Each series is two rings: a fine one for the last half
// hour and a coarse one for the last 24 hours.
const (
	fineWidth     = 5 * time.Second
	fineBuckets   = 360 // 30 min
	coarseWidth   = time.Minute
	coarseBuckets = 1440 // 24 h
	// seriesBytes is the memory of one series: (360+1440) buckets × 16 B.
	seriesBytes = (fineBuckets + coarseBuckets) * 16
	// DefaultMaxSeries bounds the sensor quantities with a history
	// (Options.MaxSeries): 64 × 28.8 KB = 1.8 MB at most.
	DefaultMaxSeries = 64
	// rateBuckets: one point per second of broker message rates and
	// queue depth for the overview and queue plots (10 min).
	rateBuckets = 600
)

// series is the history of one quantity of one sensor.
type series struct {
	unit   string
	fine   *ring
	coarse *ring
}

func newSeries(unit string) *series {
	return &series{unit: unit, fine: newRing(fineWidth, fineBuckets), coarse: newRing(coarseWidth, coarseBuckets)}
}

func (s *series) add(t time.Time, v float64) {
	s.fine.add(t, v)
	s.coarse.add(t, v)
}

// live is the state the console builds from what it sees: the topic tree,
// sensor histories and rate histories. mu guards everything.
type live struct {
	mu            sync.Mutex
	topics        *topicStore
	sensorOf      map[string]string             // sensor topic -> sensor name
	history       map[string]map[string]*series // sensor -> quantity -> series
	nSeries       int
	maxSeries     int
	droppedSeries uint64
	readings      []sensorEvent // parsed since the last tick

	rateIn, rateOut *ring // broker messages/s, 1 s buckets
	queueDepth      *ring // 1 s buckets, 10 min
	queueCoarse     *ring // 1 min buckets, 24 h
}

func newLive(maxTopics, maxSeries int) *live {
	return &live{
		topics:      newTopicStore(maxTopics),
		sensorOf:    map[string]string{},
		history:     map[string]map[string]*series{},
		maxSeries:   maxSeries,
		rateIn:      newRing(time.Second, rateBuckets),
		rateOut:     newRing(time.Second, rateBuckets),
		queueDepth:  newRing(time.Second, rateBuckets),
		queueCoarse: newRing(time.Minute, coarseBuckets),
	}
}

// sensorEvent is a reading seen on a sensor's topic.
type sensorEvent struct {
	Sensor string    `json:"sensor"`
	Time   time.Time `json:"time"`
	Values []Value   `json:"values"`
}

// onMessage is the console's subscription callback: it runs on the
// broker's delivery path, so it only updates memory under mu.
func (l *live) onMessage(m msg.Message, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.topics.update(&m, now)
	if name, ok := l.sensorOf[m.Topic]; ok {
		if r, ok := parseReading(m.Payload); ok {
			if r.Time.IsZero() {
				r.Time = now
			}
			l.addReading(name, r)
		}
	}
}

// addReading records r in the sensor's histories; mu held.
func (l *live) addReading(name string, r SensorReading) {
	h := l.history[name]
	if h == nil {
		h = map[string]*series{}
		l.history[name] = h
	}
	for _, v := range r.Values {
		s := h[v.Quantity]
		if s == nil {
			if l.nSeries >= l.maxSeries {
				l.droppedSeries++
				continue
			}
			s = newSeries(v.Unit)
			h[v.Quantity] = s
			l.nSeries++
		}
		s.add(r.Time, v.Value)
	}
	if len(l.readings) < 1000 {
		l.readings = append(l.readings, sensorEvent{Sensor: name, Time: r.Time, Values: r.Values})
	}
}

// parseReading decodes the adapters' payload (adapters.AppendPayload):
//
//	{"time":"2026-11-28T13:05:00.000Z","temperature":{"value":21.5,"unit":"°C"},"state":{"value":1}}
//
// Quantities whose value is null (not a number) are skipped. Key order is
// kept, so quantities come in the driver's order.
func parseReading(p []byte) (SensorReading, bool) {
	var r SensorReading
	dec := json.NewDecoder(strings.NewReader(string(p)))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return r, false
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return r, false
		}
		key, _ := kt.(string)
		if key == "time" {
			var s string
			if err := dec.Decode(&s); err != nil {
				return r, false
			}
			r.Time, _ = time.Parse(time.RFC3339Nano, s)
			continue
		}
		var q struct {
			Value *float64 `json:"value"`
			Unit  string   `json:"unit"`
		}
		if err := dec.Decode(&q); err != nil {
			return r, false
		}
		if q.Value != nil {
			r.Values = append(r.Values, Value{Quantity: key, Value: *q.Value, Unit: q.Unit})
		}
	}
	return r, len(r.Values) > 0
}

// setSensors refreshes the topic -> sensor map.
func (l *live) setSensors(ss []Sensor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.sensorOf)
	for _, s := range ss {
		if s.Topic != "" {
			l.sensorOf[s.Topic] = s.Name
		}
	}
}

// History is /api/sensors/{name}/history.
type History struct {
	Sensor     string          `json:"sensor"`
	Resolution Duration        `json:"resolution"` // bucket width: values are bucket means
	Series     []HistorySeries `json:"series"`
}

// HistorySeries is one quantity's points: [unix seconds, value].
type HistorySeries struct {
	Quantity string       `json:"quantity"`
	Unit     string       `json:"unit,omitempty"`
	Points   [][2]float64 `json:"points"`
}

// sensorHistory returns a sensor's series over span: the fine ring for
// spans up to its length, else the coarse one. ok is false for a sensor
// with no history.
func (l *live) sensorHistory(name string, span time.Duration, now time.Time, order []string) (History, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.history[name]
	if !ok {
		return History{}, false
	}
	fine := span <= fineWidth*fineBuckets
	out := History{Sensor: name, Resolution: Duration(coarseWidth)}
	if fine {
		out.Resolution = Duration(fineWidth)
	}
	add := func(q string, s *series) {
		r := s.coarse
		if fine {
			r = s.fine
		}
		out.Series = append(out.Series, HistorySeries{Quantity: q, Unit: s.unit, Points: r.points(now.Add(-span))})
	}
	done := map[string]bool{}
	for _, q := range order {
		if s, ok := h[q]; ok && !done[q] {
			add(q, s)
			done[q] = true
		}
	}
	for _, q := range slices.Sorted(maps.Keys(h)) {
		if !done[q] {
			add(q, h[q])
		}
	}
	return out, true
}
