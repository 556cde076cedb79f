package topic

import (
	"fmt"
	"slices"
	"testing"
)

func TestTrieMatchAgreesWithMatch(t *testing.T) {
	filters := []string{"a/b", "a/+", "a/#", "#", "+", "+/+", "/+", "a//c", "a/+/c", "$SYS/#", "+/broker/uptime",
		"a/b/#", "a/b/c", "$SYS/broker/+", "sport/tennis/#", "+/+/+"}
	names := []string{"a/b", "a/b/c", "a", "/a", "a//c", "$SYS/broker/uptime", "$SYS", "sport/tennis", "sport/tennis/player1",
		"x/y/z", "a/b/c/d", "/", "//"}
	var tr Trie[int, string]
	for i, f := range filters {
		tr.Add(f, i, f)
	}
	for _, n := range names {
		got := tr.Match(n, nil)
		var want []string
		for _, f := range filters {
			if Match(f, n) {
				want = append(want, f)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %q, want %q", n, got, want)
		}
		if tr.HasSubscribers(n) != (len(want) > 0) {
			t.Errorf("HasSubscribers(%q) = %v, want %v", n, !(len(want) > 0), len(want) > 0)
		}
	}
}

// [MQTT-4.7.2-1] a leading wildcard does not match a $-topic.
func TestTrieDollarRule_MQTT_4_7_2_1(t *testing.T) {
	var tr Trie[int, string]
	tr.Add("#", 1, "#")
	tr.Add("+/broker/#", 2, "+/broker/#")
	tr.Add("$SYS/#", 3, "$SYS/#")
	if got := tr.Match("$SYS/broker/uptime", nil); !slices.Equal(got, []string{"$SYS/#"}) {
		t.Fatalf("got %q", got)
	}
}

func TestTrieReplaceRemovePrune(t *testing.T) {
	var tr Trie[string, int]
	if !tr.Add("a/+/c", "k", 1) || tr.Add("a/+/c", "k", 2) {
		t.Fatal("Add new/replace reported wrongly")
	}
	if got := tr.Match("a/b/c", nil); !slices.Equal(got, []int{2}) {
		t.Fatalf("after replace got %v", got)
	}
	if tr.Len() != 1 {
		t.Fatalf("Len = %d", tr.Len())
	}
	if tr.Remove("a/+/c", "other") || !tr.Remove("a/+/c", "k") || tr.Remove("a/+/c", "k") {
		t.Fatal("Remove reported wrongly")
	}
	if !tr.root.empty() {
		t.Fatal("trie not pruned")
	}
}

// MQTT 5.0 section 4.8.2: a shared subscription delivers each message to
// one member of the group, round-robin.
func TestTrieSharedRoundRobin(t *testing.T) {
	var tr Trie[string, string]
	tr.Add("$share/g/a/#", "s1", "s1")
	tr.Add("$share/g/a/#", "s2", "s2")
	tr.Add("$share/h/a/b", "s3", "s3")
	tr.Add("a/b", "s4", "s4")
	counts := map[string]int{}
	for i := 0; i < 10; i++ {
		tr.HasSubscribers("a/b") // must not take a turn
		for _, v := range tr.Match("a/b", nil) {
			counts[v]++
		}
	}
	if counts["s1"] != 5 || counts["s2"] != 5 || counts["s3"] != 10 || counts["s4"] != 10 {
		t.Fatalf("counts %v", counts)
	}
	var walked []string
	tr.Walk(func(f, k, v string) { walked = append(walked, f+"="+k) })
	slices.Sort(walked)
	want := []string{"$share/g/a/#=s1", "$share/g/a/#=s2", "$share/h/a/b=s3", "a/b=s4"}
	if !slices.Equal(walked, want) {
		t.Fatalf("Walk = %q want %q", walked, want)
	}
	tr.Remove("$share/g/a/#", "s1")
	tr.Remove("$share/g/a/#", "s2")
	if got := tr.Match("a/b", nil); len(got) != 2 {
		t.Fatalf("after removal got %v", got)
	}
}

func TestTrieMatchNoAlloc(t *testing.T) {
	tr := benchTrie(1000)
	dst := make([]int, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		dst = tr.Match("site/17/sensor/3/temp", dst[:0])
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %v times", allocs)
	}
	if len(dst) == 0 {
		t.Fatal("no match")
	}
}

// TestTrieRemoveNoAlloc: unsubscribing (a disconnect storm removes every
// filter of every client) leaves no garbage, for filters of up to 8 levels.
func TestTrieRemoveNoAlloc(t *testing.T) {
	var tr Trie[int, int]
	const f = "site/17/sensor/3/temp"
	tr.Add(f, 1, 1)
	tr.Add(f, 2, 2)
	allocs := testing.AllocsPerRun(100, func() {
		if !tr.Remove(f, 2) {
			t.Fatal("not removed")
		}
		tr.Add(f, 2, 2) // the node stays (key 1) and so does the slice's room
	})
	if allocs != 0 {
		t.Fatalf("Remove and Add allocate %v times", allocs)
	}
	if tr.Remove("site/17/other", 1) || tr.Len() != 2 {
		t.Fatalf("a filter on no path was removed, or Len %d != 2", tr.Len())
	}
}

func benchTrie(n int) *Trie[int, int] {
	var tr Trie[int, int]
	for i := 0; i < n; i++ {
		var f string
		switch i % 4 {
		case 0:
			f = fmt.Sprintf("site/%d/sensor/%d/temp", i%100, i%10)
		case 1:
			f = fmt.Sprintf("site/%d/sensor/+/temp", i%100)
		case 2:
			f = fmt.Sprintf("site/%d/#", i%100)
		default:
			f = fmt.Sprintf("other/%d/+/x", i)
		}
		tr.Add(f, i, i)
	}
	return &tr
}

// BenchmarkTrieMatch10k: go test -bench TrieMatch -benchmem ./brokercore/topic
func BenchmarkTrieMatch10k(b *testing.B) {
	tr := benchTrie(10000)
	dst := make([]int, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = tr.Match("site/17/sensor/3/temp", dst[:0])
	}
}
