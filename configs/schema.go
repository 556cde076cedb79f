package configs

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The schema is the Config type itself: keys are the mapstructure tags of
// its fields, walked by reflection, so a field a component adds to its
// Config is a valid key (and an OUTPOST_* variable) with no change here.

var durationType = reflect.TypeFor[time.Duration]()

// field is one key of a struct-typed section.
type field struct {
	key string
	typ reflect.Type
}

// fieldsOf lists the keys of struct type t in declaration order.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "squash") && f.Type.Kind() == reflect.Struct {
			out = append(out, fieldsOf(f.Type)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{key: name, typ: f.Type})
	}
	return out
}

// isFreeMap reports whether t is a map whose keys are data, not
// configuration keys (mqttsn.predefined_topics, sensors[].simulate,
// sensors[].options): unknown-key checks stop there.
func isFreeMap(t reflect.Type) bool { return t.Kind() == reflect.Map }

// structOf returns the struct type behind t (t or *t), or nil.
func structOf(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && t != durationType {
		return t
	}
	return nil
}

// leaf is a key that holds a value rather than a section.
type leaf struct {
	path string // dotted, lists as "[]": broker.listeners[].address
	typ  reflect.Type
	env  string // OUTPOST_* name; "" when the key sits inside a list
}

// leaves lists every key of Config, in declaration order.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, prefix string, inList bool)
	walk = func(t reflect.Type, prefix string, inList bool) {
		for _, f := range fieldsOf(t) {
			path := joinKey(prefix, f.key)
			if st := structOf(f.typ); st != nil {
				walk(st, path, inList)
				continue
			}
			if f.typ.Kind() == reflect.Slice {
				if st := structOf(f.typ.Elem()); st != nil {
					out = append(out, leaf{path: path, typ: f.typ})
					walk(st, path+"[]", true)
					continue
				}
			}
			l := leaf{path: path, typ: f.typ}
			if !inList && f.typ.Kind() != reflect.Map && f.typ.Kind() != reflect.Slice {
				l.env = envName(path)
			}
			out = append(out, l)
		}
	}
	walk(reflect.TypeFor[Config](), "", false)
	return out
}

// envName is the environment variable for a key: broker.max_inflight is
// OUTPOST_BROKER_MAX_INFLIGHT.
func envName(path string) string {
	return "OUTPOST_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// checker walks the merged settings against the Config type, reporting
// unknown keys and values of the wrong type, and returns a copy holding only
// the good values converted to their Go types, ready to decode.
type checker struct {
	errs *Errors
	all  []leaf
}

func (c *checker) section(path string, t reflect.Type, v any) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.errs.add(path, scalarOrNil(v), "must be a section of keys, not %s", kindOf(v))
		return nil
	}
	fields := fieldsOf(t)
	byKey := make(map[string]field, len(fields))
	for _, f := range fields {
		byKey[f.key] = f
	}
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) {
		p := joinKey(path, k)
		f, ok := byKey[k]
		if !ok {
			c.errs.add(p, nil, "unknown key%s", c.suggest(path, k, fields))
			continue
		}
		if cv, ok := c.value(p, f.typ, m[k]); ok {
			out[k] = cv
		}
	}
	return out
}

// value checks and converts one value of type t.
func (c *checker) value(path string, t reflect.Type, v any) (any, bool) {
	if v == nil {
		return nil, false
	}
	if st := structOf(t); st != nil {
		s := c.section(path, st, v)
		return s, s != nil
	}
	switch t.Kind() {
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok {
			c.errs.add(path, scalarOrNil(v), "must be a list, not %s", kindOf(v))
			return nil, false
		}
		out := make([]any, len(items))
		for i, item := range items {
			p := fmt.Sprintf("%s[%d]", path, i)
			if item == nil {
				c.errs.add(p, nil, "empty list entry")
				continue
			}
			out[i], _ = c.value(p, t.Elem(), item)
		}
		return out, true
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.errs.add(path, scalarOrNil(v), "must be a map, not %s", kindOf(v))
			return nil, false
		}
		if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Interface {
			return m, true // free-form: the driver checks its own options
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			p := path + "." + k
			if _, ok := c.scalar(p, t.Key(), k); !ok {
				continue
			}
			if cv, ok := c.value(p, t.Elem(), m[k]); ok {
				out[k] = cv
			}
		}
		return out, true
	}
	return c.scalar(path, t, v)
}

// scalar converts a value from YAML, the environment or a flag to a Go
// value of type t, or reports why it cannot.
func (c *checker) scalar(path string, t reflect.Type, v any) (any, bool) {
	if _, ok := v.(map[string]any); ok {
		c.errs.add(path, nil, "must be a single value, not a section")
		return nil, false
	}
	if _, ok := v.([]any); ok {
		c.errs.add(path, nil, "must be a single value, not a list")
		return nil, false
	}
	if t.Kind() == reflect.Pointer {
		return c.scalar(path, t.Elem(), v)
	}
	if t == durationType {
		return c.duration(path, v)
	}
	switch t.Kind() {
	case reflect.String:
		switch v.(type) {
		case string:
			return v, true
		case int, int64, uint64, float64:
			return fmt.Sprint(v), true
		}
		c.errs.add(path, v, "must be a string (quote it)")
		return nil, false
	case reflect.Bool:
		switch v := v.(type) {
		case bool:
			return v, true
		case string:
			if b, err := strconv.ParseBool(v); err == nil {
				return b, true
			}
		}
		c.errs.add(path, v, "must be true or false")
		return nil, false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return c.integer(path, t, v)
	case reflect.Float32, reflect.Float64:
		switch v := v.(type) {
		case int:
			return float64(v), true
		case int64:
			return float64(v), true
		case uint64:
			return float64(v), true
		case float64:
			return v, true
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f, true
			}
		}
		c.errs.add(path, v, "must be a number")
		return nil, false
	}
	c.errs.add(path, v, "cannot be set (unsupported type %s)", t)
	return nil, false
}

func (c *checker) integer(path string, t reflect.Type, v any) (any, bool) {
	var (
		mag uint64 // magnitude
		neg bool
	)
	switch x := v.(type) {
	case int:
		mag, neg = absInt(int64(x))
	case int64:
		mag, neg = absInt(x)
	case uint64:
		mag = x
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			c.errs.add(path, v, "must be a whole number")
			return nil, false
		}
		mag, neg = absInt(int64(x))
	case string:
		s := strings.ReplaceAll(strings.TrimSpace(x), "_", "")
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			mag, neg = absInt(n)
		} else if n, err := strconv.ParseUint(s, 0, 64); err == nil {
			mag = n
		} else {
			c.errs.add(path, v, "not an integer")
			return nil, false
		}
	default:
		c.errs.add(path, v, "must be an integer")
		return nil, false
	}
	bits := t.Bits()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		hi := uint64(math.MaxUint64) >> (64 - bits)
		if neg || mag > hi {
			c.errs.add(path, v, "out of range 0 to %d", hi)
			return nil, false
		}
		return mag, true
	default:
		hi := uint64(1)<<(bits-1) - 1
		if !neg && mag > hi || neg && mag > hi+1 {
			c.errs.add(path, v, "out of range %d to %d", -int64(hi)-1, hi)
			return nil, false
		}
		if neg {
			return -int64(mag-1) - 1, true
		}
		return int64(mag), true
	}
}

func absInt(n int64) (mag uint64, neg bool) {
	if n < 0 {
		return uint64(-(n + 1)) + 1, true
	}
	return uint64(n), false
}

// duration accepts Go duration strings ("10s", "15m", "720h", "1h30m") and a
// bare 0; a bare number is refused rather than read as nanoseconds.
func (c *checker) duration(path string, v any) (any, bool) {
	switch v := v.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err == nil {
			return d, true
		}
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(v), 64); nerr == nil && strings.TrimSpace(v) != "0" {
			c.errs.add(path, v, `duration needs a unit, e.g. "10s", "15m", "720h"`)
			return nil, false
		}
		c.errs.add(path, v, `not a duration; use a number with a unit, e.g. "10s", "15m", "720h"`)
		return nil, false
	case int:
		if v == 0 {
			return time.Duration(0), true
		}
	case int64:
		if v == 0 {
			return time.Duration(0), true
		}
	case uint64, float64:
	default:
		c.errs.add(path, v, `must be a duration such as "10s"`)
		return nil, false
	}
	c.errs.add(path, v, `duration needs a unit, e.g. "10s", "15m", "720h"`)
	return nil, false
}

// suggest returns "; did you mean X?" for an unknown key: the nearest
// sibling by edit distance, else a key elsewhere with that exact name, else
// the list of valid keys at that level.
func (c *checker) suggest(path, key string, fields []field) string {
	best, bestD := "", math.MaxInt
	for _, f := range fields {
		if d := levenshtein(key, f.key); d < bestD {
			best, bestD = f.key, d
		}
	}
	if best != "" && bestD <= max(2, len(key)/3) {
		return "; did you mean " + joinKey(path, best) + "?"
	}
	var elsewhere []string
	for _, l := range c.all {
		if l.path == key || strings.HasSuffix(l.path, "."+key) {
			elsewhere = append(elsewhere, l.path)
		}
	}
	if len(elsewhere) > 0 && len(elsewhere) <= 3 {
		return "; did you mean " + strings.Join(elsewhere, " or ") + "?"
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	return " (valid keys here: " + strings.Join(names, ", ") + ")"
}

// levenshtein is the edit distance between a and b (insertions, deletions,
// substitutions), over bytes: keys are ASCII.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalarOrNil drops sections and lists from error messages: they are
// shown by their line, not printed.
func scalarOrNil(v any) any {
	switch v.(type) {
	case map[string]any, []any:
		return nil
	}
	return v
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a section"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "true/false"
	default:
		return "a number"
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
