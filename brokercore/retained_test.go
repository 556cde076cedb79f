package brokercore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/brokercore/topic"
)

// The retained tree finds exactly what testing every topic with
// topic.Match finds, for random topics and filters (with '$' topics,
// empty levels, '+' and '#'), also after removals.
func TestRetainedIndexMatchesLinearScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"a", "b", "$SYS", "$x", "", "c"}
	name := func() string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = levels[rng.IntN(len(levels))]
		}
		return strings.Join(parts, "/")
	}
	var r retainedStore
	r.init()
	for i := 0; i < 400; i++ {
		n := name()
		if rng.IntN(4) == 0 {
			r.put(n, nil)
		} else {
			r.put(n, &msg.Message{Topic: n, Payload: []byte{1}})
		}
	}
	for i := 0; i < 2000; i++ {
		parts := strings.Split(name(), "/")
		for j := range parts {
			switch rng.IntN(4) {
			case 0:
				parts[j] = "+"
			case 1:
				if j == len(parts)-1 {
					parts[j] = "#"
				}
			}
		}
		filter := strings.Join(parts, "/")
		if topic.ValidFilter(filter) != nil {
			continue
		}
		var want, got []string
		for n := range r.m {
			if topic.Match(filter, n) {
				want = append(want, n)
			}
		}
		for _, m := range r.match(filter) {
			got = append(got, m.Topic)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("filter %q: tree %q, scan %q", filter, got, want)
		}
	}
	for n := range r.m {
		r.put(n, nil)
	}
	if len(r.root.kids) != 0 {
		t.Errorf("empty store keeps %d nodes", len(r.root.kids))
	}
}

// BenchmarkRetainedSubscribe: the retained lookup of one SUBSCRIBE with
// 10000 retained messages.
//
//	go test -run XXX -bench RetainedSubscribe -benchmem ./brokercore
func BenchmarkRetainedSubscribe(b *testing.B) {
	var r retainedStore
	r.init()
	for i := range 10000 {
		n := fmt.Sprintf("site/dev%d/sensor%d", i/10, i%10)
		r.put(n, &msg.Message{Topic: n, Payload: []byte{1}})
	}
	for _, f := range []string{"site/dev42/sensor3", "site/dev42/#", "site/+/sensor3"} {
		b.Run(f, func(b *testing.B) {
			for b.Loop() {
				r.match(f)
			}
		})
	}
}
