package sensor

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options is a driver's options: map from the config. Getters return the
// default when a key is absent and record an error naming the key when it has
// the wrong type; Err returns the first such error, and Unknown reports keys no
// getter asked for (so a typo like "debouce" is an error, not silence).
type Options struct {
	m    map[string]any
	used map[string]bool
	err  error
}

// NewOptions wraps m (which may be nil).
func NewOptions(m map[string]any) *Options {
	return &Options{m: m, used: map[string]bool{}}
}

func (o *Options) get(key string) (any, bool) {
	o.used[key] = true
	v, ok := o.m[key]
	return v, ok && v != nil
}

func (o *Options) fail(key string, v any, want string) {
	if o.err == nil {
		o.err = fmt.Errorf("option %s: %v is not %s", key, v, want)
	}
}

// Has reports whether key is set.
func (o *Options) Has(key string) bool {
	_, ok := o.get(key)
	return ok
}

// Float returns key as a number.
func (o *Options) Float(key string, def float64) float64 {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	f, ok := ToFloat(v)
	if !ok {
		o.fail(key, v, "a number")
		return def
	}
	return f
}

// Int returns key as an integer.
func (o *Options) Int(key string, def int) int {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	f, ok := ToFloat(v)
	if !ok || f != float64(int(f)) {
		o.fail(key, v, "an integer")
		return def
	}
	return int(f)
}

// String returns key as a string.
func (o *Options) String(key, def string) string {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		o.fail(key, v, "a string")
		return def
	}
	return s
}

// Bool returns key as a boolean.
func (o *Options) Bool(key string, def bool) bool {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	switch b := v.(type) {
	case bool:
		return b
	case string:
		if p, err := strconv.ParseBool(b); err == nil {
			return p
		}
	}
	o.fail(key, v, "true or false")
	return def
}

// Duration returns key as a duration ("50ms", or a number of seconds).
func (o *Options) Duration(key string, def time.Duration) time.Duration {
	v, ok := o.get(key)
	if !ok {
		return def
	}
	switch d := v.(type) {
	case time.Duration:
		return d
	case string:
		if p, err := time.ParseDuration(d); err == nil {
			return p
		}
	default:
		if f, ok := ToFloat(v); ok {
			return time.Duration(f * float64(time.Second))
		}
	}
	o.fail(key, v, "a duration like 50ms")
	return def
}

// Map returns key as a map (nil if absent).
func (o *Options) Map(key string) map[string]any {
	v, ok := o.get(key)
	if !ok {
		return nil
	}
	m, ok := ToMap(v)
	if !ok {
		o.fail(key, v, "a map")
	}
	return m
}

// Err returns the first type error, or an error naming unknown keys.
func (o *Options) Err() error {
	if o.err != nil {
		return o.err
	}
	var unknown []string
	for k := range o.m {
		if !o.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown option %s", strings.Join(unknown, ", "))
	}
	return nil
}

// ToFloat converts the number types YAML, JSON and viper produce.
func ToFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint8:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f, err == nil
	}
	return 0, false
}

// ToMap converts map[string]any and map[any]any (older YAML decoders).
func ToMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}
