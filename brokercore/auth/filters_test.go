package auth

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/topic"
)

func TestIntersectExamples(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"a/#", "a", "a"}, // '#' includes the parent level
		{"a/#", "+/b", "a/b"},
		{"a/+/#", "+/b", "a/b"}, // "a/+/#" matches "a/b"
		{"a/+/#", "+/b/c", "a/b/c"},
		{"#", "$SYS/#", ""}, // [MQTT-4.7.2-1]
		{"+/x", "$SYS/x", ""},
		{"$SYS/#", "$SYS/+/load", "$SYS/+/load"},
		{"#", "#", "#"},
		{"a/b", "a/c", ""},
		{"a/+", "a/+/c", ""},
		{"a/#", "a/+/c/#", "a/+/c/#"},
		{"sensors/+/temp", "sensors/#", "sensors/+/temp"},
		{"a//b", "a/+/b", "a//b"},
	} {
		x, ok := intersect(parseFilt(c.a), parseFilt(c.b))
		got := ""
		if ok {
			got = x.String()
		}
		if got != c.want {
			t.Errorf("intersect(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestCoveredExamples(t *testing.T) {
	for _, c := range []struct {
		x    string
		ds   []string
		want bool
	}{
		{"a/b", []string{"a/#"}, true},
		{"a/#", []string{"a/+/#"}, false}, // "a" itself is not covered
		{"a/#", []string{"a/+/#", "a"}, true},
		{"a/+", []string{"a/b", "a/c"}, false},
		{"a/+", []string{"a/b", "+/+"}, true},
		{"+", []string{"#"}, true},
		{"$SYS/x", []string{"#"}, false}, // '#' does not match $ names
		{"$SYS/x", []string{"$SYS/#"}, true},
		{"#", []string{"+", "+/+/#"}, true},
		{"#", []string{"+", "+/+"}, false},
		{"+/b", []string{"a/b", "+/c"}, false},
		{"a//b", []string{"a//b"}, true},
		{"a/+/b", []string{"a//b"}, false},
		{"x", nil, false},
	} {
		var ds []filt
		for _, d := range c.ds {
			ds = append(ds, parseFilt(d))
		}
		b := coverBudget
		if got := covered(parseFilt(c.x), ds, &b); got != c.want {
			t.Errorf("covered(%q, %q) = %v, want %v", c.x, c.ds, got, c.want)
		}
	}
}

// Random filters over a small alphabet, checked against brute force over
// every name up to two levels longer than any filter.
func TestFilterAlgebraBruteForce(t *testing.T) {
	values := []string{"a", "b", "$s", "", "z"} // "z" appears in no filter: "any other value"
	var names []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		for _, v := range values {
			n := v
			if depth > 0 {
				n = prefix + "/" + v
			}
			names = append(names, n)
			if depth < 3 { // names up to 4 levels: one more than any filter
				gen(n, depth+1)
			}
		}
	}
	gen("", 0)
	rng := rand.New(rand.NewPCG(1, 2))
	randFilter := func() string {
		n := rng.IntN(3)
		var lv []string
		for range n + 1 {
			lv = append(lv, []string{"a", "b", "$s", "", "+", "+"}[rng.IntN(6)])
		}
		if rng.IntN(2) == 0 {
			lv = append(lv, "#")
		}
		if rng.IntN(8) == 0 {
			lv = []string{"#"}
		}
		f := strings.Join(lv, "/")
		if topic.ValidFilter(f) != nil {
			return "a" // "" alone is not a filter
		}
		return f
	}
	for range 3000 {
		a, b := randFilter(), randFilter()
		if topic.ValidFilter(a) != nil || topic.ValidFilter(b) != nil {
			t.Fatalf("generated invalid filter %q or %q", a, b)
		}
		x, ok := intersect(parseFilt(a), parseFilt(b))
		for _, n := range names {
			both := topic.Match(a, n) && topic.Match(b, n)
			in := ok && topic.Match(x.String(), n)
			if both != in {
				t.Fatalf("intersect(%q, %q) = %q (ok=%v): name %q in both=%v, in result=%v", a, b, x, ok, n, both, in)
			}
		}
		var ds []string
		var dfs []filt
		for range rng.IntN(4) + 1 {
			d := randFilter()
			ds = append(ds, d)
			dfs = append(dfs, parseFilt(d))
		}
		want := true
		for _, n := range names {
			if !topic.Match(a, n) {
				continue
			}
			hit := false
			for _, d := range ds {
				if topic.Match(d, n) {
					hit = true
					break
				}
			}
			if !hit {
				want = false
				break
			}
		}
		budget := coverBudget
		if got := covered(parseFilt(a), dfs, &budget); got != want {
			t.Fatalf("covered(%q, %q) = %v, brute force %v", a, ds, got, want)
		}
	}
}
