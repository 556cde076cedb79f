package topic

import (
	"strings"
	"sync/atomic"
)

// Trie is a subscription tree keyed by topic filter levels, with '+' and
// '#' children and $share groups (MQTT 5.0 section 4.8.2). It is not safe
// for concurrent mutation; the broker guards it with a lock (Match may run
// concurrently with other Match calls: the only state it touches is the
// round-robin counter of a shared group, which is atomic).
//
// K identifies a subscriber (one entry per K per filter, a second Add
// replaces); V is what Match hands back.
type Trie[K comparable, V any] struct {
	root  node[K, V]
	count int
}

type entry[K comparable, V any] struct {
	key K
	val V
}

type node[K comparable, V any] struct {
	children map[string]*node[K, V]
	plus     *node[K, V]
	hash     *node[K, V]
	subs     []entry[K, V]
	shared   map[string]*group[K, V]
}

type group[K comparable, V any] struct {
	members []entry[K, V]
	next    atomic.Uint32
}

// Len returns the number of subscriptions (a shared one counts once per member).
func (t *Trie[K, V]) Len() int { return t.count }

// Add subscribes key to filter (plain or "$share/group/filter"), replacing
// any value key already had for that filter. It reports whether the
// subscription is new. filter must be valid (ValidFilter / ParseShared).
func (t *Trie[K, V]) Add(filter string, key K, val V) (isNew bool) {
	grp, f, shared, _ := ParseShared(filter)
	n := &t.root
	walkLevels(f, func(level string) {
		n = n.child(level)
	})
	if shared {
		if n.shared == nil {
			n.shared = make(map[string]*group[K, V])
		}
		g := n.shared[grp]
		if g == nil {
			g = &group[K, V]{}
			n.shared[grp] = g
		}
		for i := range g.members {
			if g.members[i].key == key {
				g.members[i].val = val
				return false
			}
		}
		g.members = append(g.members, entry[K, V]{key, val})
		t.count++
		return true
	}
	for i := range n.subs {
		if n.subs[i].key == key {
			n.subs[i].val = val
			return false
		}
	}
	n.subs = append(n.subs, entry[K, V]{key, val})
	t.count++
	return true
}

// Remove unsubscribes key from filter and prunes empty nodes. It reports
// whether there was such a subscription.
func (t *Trie[K, V]) Remove(filter string, key K) bool {
	grp, f, shared, _ := ParseShared(filter)
	// The path down, for pruning; on the stack for filters of up to 8
	// levels (a disconnecting client's subscriptions are removed one by
	// one: no garbage per filter).
	var pathBuf [8]*node[K, V]
	var levelBuf [8]string
	path, levels := pathBuf[:0], levelBuf[:0]
	n := &t.root
	for s := f; ; {
		level, rest, more := cut(s)
		path = append(path, n)
		levels = append(levels, level)
		if n = n.get(level); n == nil {
			return false
		}
		if !more {
			break
		}
		s = rest
	}
	removed := false
	if shared {
		if g := n.shared[grp]; g != nil {
			for i := range g.members {
				if g.members[i].key == key {
					g.members = append(g.members[:i], g.members[i+1:]...)
					removed = true
					break
				}
			}
			if len(g.members) == 0 {
				delete(n.shared, grp)
			}
		}
	} else {
		for i := range n.subs {
			if n.subs[i].key == key {
				n.subs = append(n.subs[:i], n.subs[i+1:]...)
				removed = true
				break
			}
		}
	}
	if !removed {
		return false
	}
	t.count--
	// Prune empty nodes bottom-up.
	for i := len(path) - 1; i >= 0; i-- {
		if !n.empty() {
			break
		}
		path[i].drop(levels[i])
		n = path[i]
	}
	return true
}

// Match appends to dst the value of every subscription whose filter matches
// the topic name, and for every shared group that matches, the value of one
// member chosen round-robin. The $ rule applies: a name starting with '$'
// is not matched by a filter starting with '+' or '#' [MQTT-4.7.2-1]. A key
// subscribed by several matching filters appears once per filter. Match
// does not allocate when dst has room.
func (t *Trie[K, V]) Match(name string, dst []V) []V {
	dollar := len(name) > 0 && name[0] == '$'
	return t.root.match(name, dollar, dst)
}

func (n *node[K, V]) match(rest string, top bool, dst []V) []V {
	// rest is the remainder of the name to match against n's children;
	// top: n is the root and the name is a $-topic (wildcards skipped).
	level, next, more := cut(rest)
	if !top {
		// '#' matches this level and everything below, and also the parent
		// level itself [MQTT-4.7.1-2] (handled when the parent is reached).
		if n.hash != nil {
			dst = n.hash.collect(dst)
		}
		if n.plus != nil {
			dst = n.plus.matchNext(next, more, dst)
		}
	}
	if c := n.children[level]; c != nil {
		dst = c.matchNext(next, more, dst)
	}
	return dst
}

// matchNext is called on the node that matched a level; more says whether
// the name has further levels.
func (n *node[K, V]) matchNext(next string, more bool, dst []V) []V {
	if !more {
		dst = n.collect(dst)
		// "a/#" matches "a".
		if n.hash != nil {
			dst = n.hash.collect(dst)
		}
		return dst
	}
	return n.match(next, false, dst)
}

func (n *node[K, V]) collect(dst []V) []V {
	for i := range n.subs {
		dst = append(dst, n.subs[i].val)
	}
	for _, g := range n.shared {
		if len(g.members) == 0 {
			continue
		}
		i := g.next.Add(1) - 1
		dst = append(dst, g.members[int(i%uint32(len(g.members)))].val)
	}
	return dst
}

// HasSubscribers reports whether any subscription matches name. Unlike
// Match it does not advance a shared group's round-robin turn.
func (t *Trie[K, V]) HasSubscribers(name string) bool {
	dollar := len(name) > 0 && name[0] == '$'
	return t.root.any(name, dollar)
}

func (n *node[K, V]) any(rest string, top bool) bool {
	level, next, more := cut(rest)
	if !top {
		if n.hash != nil && n.hash.nonEmpty() {
			return true
		}
		if n.plus != nil && n.plus.anyNext(next, more) {
			return true
		}
	}
	if c := n.children[level]; c != nil && c.anyNext(next, more) {
		return true
	}
	return false
}

func (n *node[K, V]) anyNext(next string, more bool) bool {
	if !more {
		return n.nonEmpty() || (n.hash != nil && n.hash.nonEmpty())
	}
	return n.any(next, false)
}

func (n *node[K, V]) nonEmpty() bool { return len(n.subs) > 0 || len(n.shared) > 0 }

// Walk calls fn for every subscription: the filter as it was added
// (including any $share prefix), its key and value.
func (t *Trie[K, V]) Walk(fn func(filter string, key K, val V)) {
	t.root.walk("", true, fn)
}

func (n *node[K, V]) walk(prefix string, root bool, fn func(string, K, V)) {
	if !root {
		for _, e := range n.subs {
			fn(prefix, e.key, e.val)
		}
		for g, grp := range n.shared {
			for _, e := range grp.members {
				fn(SharePrefix+g+"/"+prefix, e.key, e.val)
			}
		}
	}
	join := func(l string) string {
		if root {
			return l
		}
		return prefix + "/" + l
	}
	for l, c := range n.children {
		c.walk(join(l), false, fn)
	}
	if n.plus != nil {
		n.plus.walk(join("+"), false, fn)
	}
	if n.hash != nil {
		n.hash.walk(join("#"), false, fn)
	}
}

func (n *node[K, V]) child(level string) *node[K, V] {
	switch level {
	case "+":
		if n.plus == nil {
			n.plus = &node[K, V]{}
		}
		return n.plus
	case "#":
		if n.hash == nil {
			n.hash = &node[K, V]{}
		}
		return n.hash
	}
	if n.children == nil {
		n.children = make(map[string]*node[K, V])
	}
	c := n.children[level]
	if c == nil {
		c = &node[K, V]{}
		n.children[strings.Clone(level)] = c
	}
	return c
}

func (n *node[K, V]) get(level string) *node[K, V] {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.children[level]
}

func (n *node[K, V]) drop(level string) {
	switch level {
	case "+":
		n.plus = nil
	case "#":
		n.hash = nil
	default:
		delete(n.children, level)
	}
}

func (n *node[K, V]) empty() bool {
	return len(n.subs) == 0 && len(n.shared) == 0 && len(n.children) == 0 && n.plus == nil && n.hash == nil
}

func walkLevels(s string, fn func(string)) {
	for {
		l, rest, more := cut(s)
		fn(l)
		if !more {
			return
		}
		s = rest
	}
}
