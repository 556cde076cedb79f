package storeforward

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-iot/outpost/brokercore/msg"
)

// keyBudget holds today's sent bytes ("<YYYY-MM-DD> <bytes>"), saved with
// each status tick, so a restart does not hand out the day's budget again.
const keyBudget = "u/budget"

// budgetLimits parses uplink.budget.
func budgetLimits(b Budget) (daily, reserve int64, err error) {
	if b.DailyBytes == "" {
		if b.Reserve != "" {
			return 0, 0, errors.New("uplink.budget.reserve: set without uplink.budget.daily_bytes")
		}
		return 0, 0, nil
	}
	if daily, err = parseSize(b.DailyBytes); err != nil || daily <= 0 {
		return 0, 0, fmt.Errorf("uplink.budget.daily_bytes: %q: want a size such as 50MB or 1GiB", b.DailyBytes)
	}
	if b.Reserve != "" {
		if reserve, err = parseSize(b.Reserve); err != nil || reserve < 0 || reserve > daily {
			return 0, 0, fmt.Errorf("uplink.budget.reserve: %q: want a size up to daily_bytes (%s)", b.Reserve, b.DailyBytes)
		}
	}
	return daily, reserve, nil
}

// parseSize reads "50MB", "1.5GiB", "1048576" (the units of
// uplink.queue.max_bytes: SI kB/MB/GB/TB and IEC KiB/MiB/GiB/TiB).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	if mult == 0 || f*mult > math.MaxInt64 {
		return 0, fmt.Errorf("unit %q", unit)
	}
	return int64(f * mult), nil
}

// budgetAllows reports whether lanes[i] may send now: below the daily
// budget, and for every lane but the highest-priority one below the
// budget less the reserve.
func (f *Forwarder) budgetAllows(i int) bool {
	if f.daily <= 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &f.st.Status
	f.rollDay(st, f.now())
	limit := f.daily
	if i > 0 {
		limit -= f.reserve
	}
	if st.BytesToday < limit {
		if st.BytesToday < f.daily-f.reserve {
			st.Paused = ""
		}
		return true
	}
	if st.BytesToday >= f.daily {
		st.Paused = fmt.Sprintf("daily budget of %d bytes used; draining again after midnight", f.daily)
	} else {
		st.Paused = fmt.Sprintf("only the reserve of the daily budget is left: lane %s only", f.lanes[0].name)
	}
	return false
}

// loadBudget restores today's count after a restart.
func (f *Forwarder) loadBudget() error {
	return f.db.Scan([]byte(keyBudget), func(k, v []byte) error {
		day, n, ok := strings.Cut(string(v), " ")
		if string(k) != keyBudget || !ok {
			return nil
		}
		bytes, err := strconv.ParseInt(n, 10, 64)
		if err == nil && day == f.now().Format(time.DateOnly) {
			f.st.Day, f.st.BytesToday = day, bytes
		}
		return nil
	})
}

// saveBudget stores today's count if it changed since the last save.
func (f *Forwarder) saveBudget() {
	if f.daily <= 0 {
		return
	}
	f.mu.Lock()
	v := f.st.Day + " " + strconv.FormatInt(f.st.BytesToday, 10)
	changed := v != f.savedBudget
	f.savedBudget = v
	f.mu.Unlock()
	if changed {
		f.db.Commit([]msg.Op{{Key: []byte(keyBudget), Value: []byte(v)}}, func(err error) {
			if err != nil {
				f.log.Warn("saving today's uplink byte count", "err", err)
			}
		})
	}
}
