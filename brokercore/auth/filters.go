package auth

import "strings"

// Set algebra on topic filters, for CanSubscribe. A filter denotes the set
// of topic names it matches [MQTT-4.7]: each level a literal or '+' (any
// one level, possibly empty), and a final '#' standing for zero or more
// further levels ("a/#" matches "a" too). Names starting with '$' are not
// matched by a filter starting with a wildcard [MQTT-4.7.2-1].

// filt is a parsed filter: "a/+/#" is {levels: [a +], hash: true}; "#" is
// {levels: [], hash: true}.
type filt struct {
	levels []string
	hash   bool
}

func parseFilt(s string) filt {
	var f filt
	if s == "#" {
		return filt{hash: true}
	}
	if strings.HasSuffix(s, "/#") {
		f.hash = true
		s = s[:len(s)-2]
	}
	f.levels = strings.Split(s, "/")
	return f
}

func (f filt) String() string {
	s := strings.Join(f.levels, "/")
	if f.hash {
		if s == "" && len(f.levels) == 0 {
			return "#"
		}
		s += "/#"
	}
	return s
}

// firstWild reports whether f's first level is a wildcard, so it matches
// no '$' name.
func (f filt) firstWild() bool {
	return len(f.levels) == 0 || f.levels[0] == "+"
}

// dollar reports whether every name f matches starts with '$'.
func (f filt) dollar() bool {
	return len(f.levels) > 0 && strings.HasPrefix(f.levels[0], "$")
}

// intersect returns the filter matching exactly the names both a and b
// match, and false if there is none.
func intersect(a, b filt) (filt, bool) {
	n := min(len(a.levels), len(b.levels))
	out := filt{levels: make([]string, 0, max(len(a.levels), len(b.levels)))}
	for i := range n {
		x, y := a.levels[i], b.levels[i]
		switch {
		case x == "+":
			out.levels = append(out.levels, y)
		case y == "+" || x == y:
			out.levels = append(out.levels, x)
		default:
			return filt{}, false
		}
	}
	switch {
	case len(a.levels) == len(b.levels):
		out.hash = a.hash && b.hash
	case len(a.levels) < len(b.levels):
		if !a.hash {
			return filt{}, false
		}
		out.levels = append(out.levels, b.levels[n:]...)
		out.hash = b.hash
	default:
		if !b.hash {
			return filt{}, false
		}
		out.levels = append(out.levels, a.levels[n:]...)
		out.hash = a.hash
	}
	if len(out.levels) == 0 && !out.hash {
		return filt{}, false
	}
	// '$' names are only in the intersection if neither filter starts with
	// a wildcard.
	if out.dollar() && (a.firstWild() || b.firstWild()) {
		return filt{}, false
	}
	return out, true
}

// coverBudget bounds the search in covered. It is far above what real ACL
// files need; when it runs out covered answers false, which makes
// CanSubscribe answer true (the safe direction: Allow still filters).
const coverBudget = 100000

// covered reports whether every name x matches is matched by one of ds.
func covered(x filt, ds []filt, budget *int) bool {
	if len(ds) == 0 {
		return false
	}
	alive := ds
	if x.dollar() {
		// A wildcard-first deny does not match x's '$' names.
		alive = make([]filt, 0, len(ds))
		for _, d := range ds {
			if !d.firstWild() {
				alive = append(alive, d)
			}
		}
	}
	return cover(x, 0, alive, budget)
}

// cover: every name matched by x whose first i levels are fixed (matched
// by every filter in alive so far) is matched by some filter in alive.
func cover(x filt, i int, alive []filt, budget *int) bool {
	*budget--
	if *budget < 0 {
		return false
	}
	for _, d := range alive {
		if d.hash && len(d.levels) <= i {
			return true // d's '#' takes every name from here on
		}
	}
	if len(alive) == 0 {
		return false
	}
	if i == len(x.levels) {
		// The name that ends here (a name has at least one level).
		if i > 0 {
			exact := false
			for _, d := range alive {
				if len(d.levels) == i {
					exact = true
					break
				}
			}
			if !exact {
				return false
			}
		}
		if !x.hash {
			return true
		}
		// x's '#' goes on: one more level of any value, then '#' again.
		more := filt{levels: append(x.levels[:i:i], "+"), hash: true}
		return cover(more, i, alive, budget)
	}
	lv := x.levels[i]
	if lv != "+" {
		return cover(x, i+1, narrow(alive, i, lv, false), budget)
	}
	// x has '+' here: the names split into one class per literal the
	// filters in alive use at this level, plus one for every other value.
	seen := make(map[string]bool)
	for _, d := range alive {
		if len(d.levels) <= i {
			continue
		}
		v := d.levels[i]
		if v == "+" || seen[v] || (i == 0 && strings.HasPrefix(v, "$")) {
			continue // x's leading '+' matches no '$' name
		}
		seen[v] = true
		if !cover(x, i+1, narrow(alive, i, v, false), budget) {
			return false
		}
	}
	return cover(x, i+1, narrow(alive, i, "", true), budget)
}

// narrow keeps the filters of alive that match value v at level i; with
// other, v is a value none of them names, so only '+' (and '#') match it.
func narrow(alive []filt, i int, v string, other bool) []filt {
	out := make([]filt, 0, len(alive))
	for _, d := range alive {
		switch {
		case len(d.levels) > i && (d.levels[i] == "+" || (!other && d.levels[i] == v)):
			out = append(out, d)
		case d.hash && len(d.levels) <= i:
			out = append(out, d)
		}
	}
	return out
}
