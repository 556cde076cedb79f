package listener

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// rateLimiter is a token bucket: rate new connections per second with a
// burst of about one second's worth (at least 1, at most 100), so a few
// devices coming back together after a link drop get in at once and a
// reconnect storm is spread out.
type rateLimiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newRateLimiter(rate float64, now func() time.Time) *rateLimiter {
	burst := math.Min(math.Max(math.Ceil(rate), 1), 100)
	return &rateLimiter{rate: rate, burst: burst, tokens: burst, last: now(), now: now}
}

// allow takes a token if there is one.
func (r *rateLimiter) allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now()
	r.tokens = math.Min(r.burst, r.tokens+t.Sub(r.last).Seconds()*r.rate)
	r.last = t
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// refusalLog logs refused connections without flooding the journal: the
// first refusal for a cause in an interval is logged at once, in full,
// with the client's address; further ones for that cause are counted and
// summed up in one line at the end of the interval.
type refusalLog struct {
	log      *slog.Logger
	listener string
	interval time.Duration

	mu     sync.Mutex
	causes map[string]*refusalCount
}

type refusalCount struct {
	n          int    // refusals after the first, this interval
	lastClient string // the latest of them
}

func newRefusalLog(log *slog.Logger, listener string, interval time.Duration) *refusalLog {
	return &refusalLog{log: log, listener: listener, interval: interval, causes: make(map[string]*refusalCount)}
}

// report records one refused or failed connection. cause is a short
// stable name ("tls-on-plain"); msg is the whole sentence for the log.
func (r *refusalLog) report(cause, client, msg string) {
	r.mu.Lock()
	c, seen := r.causes[cause]
	if !seen {
		r.causes[cause] = &refusalCount{}
	} else {
		c.n++
		c.lastClient = client
	}
	r.mu.Unlock()
	if !seen {
		r.log.Warn(msg, "client", client, "listener", r.listener, "cause", cause)
	}
}

// flush logs the counts of the interval that ended and starts a new one.
func (r *refusalLog) flush() {
	r.mu.Lock()
	counts := r.causes
	r.causes = make(map[string]*refusalCount)
	r.mu.Unlock()
	for cause, c := range counts {
		if c.n == 0 {
			continue
		}
		r.log.Warn(fmt.Sprintf("%d more connections on listener %s failed or were refused in the last %s for the same cause (%s); last from %s",
			c.n, r.listener, r.interval, cause, c.lastClient),
			"listener", r.listener, "cause", cause, "count", c.n, "last_client", c.lastClient)
	}
}
