package brokercore

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestSubSetMatchesMap drives a session's subscription set and a map with
// the same random subscribes and unsubscribes: the set must hold exactly
// the map's filters and options, in filter order.
func TestSubSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ss subSet
	model := map[string]subOpts{}
	for i := range 20000 {
		f := "a/" + strconv.Itoa(rng.IntN(300))
		if rng.IntN(3) == 0 {
			f = "$share/g/" + f
		}
		if rng.IntN(4) == 0 {
			ss.del(f)
			delete(model, f)
		} else {
			o := subOpts{QoS: byte(rng.IntN(3)), SubID: uint32(i)}
			ss.set(f, o)
			model[f] = o
		}
		if ss.len() != len(model) {
			t.Fatalf("step %d: set holds %d filters, model %d", i, ss.len(), len(model))
		}
	}
	var got []string
	for f, o := range ss.all() {
		if model[f] != o {
			t.Fatalf("filter %q: set has %+v, model %+v", f, o, model[f])
		}
		got = append(got, f)
	}
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(got, want) {
		t.Fatalf("filters out of order or missing:\n got %q\nwant %q", got, want)
	}
	for f := range model {
		ss.del(f)
	}
	if ss.len() != 0 || ss.list != nil {
		t.Fatalf("emptied set still holds %d (list %v)", ss.len(), ss.list)
	}
}
