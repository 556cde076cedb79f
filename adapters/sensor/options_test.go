package sensor

import (
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	o := NewOptions(map[string]any{"a": 1, "b": "2.5", "d": 0.05, "e": "50ms", "f": "yes", "m": map[any]any{"x": 1}})
	if o.Int("a", 0) != 1 || o.Float("b", 0) != 2.5 || o.Duration("d", 0) != 50*time.Millisecond ||
		o.Duration("e", 0) != 50*time.Millisecond || o.Map("m")["x"] != 1 || o.String("missing", "def") != "def" {
		t.Fatal("getters")
	}
	o.Bool("f", false)
	if err := o.Err(); err == nil || err.Error() != "option f: yes is not true or false" {
		t.Fatalf("got %v", err)
	}
	o = NewOptions(map[string]any{"a": 1.5})
	o.Int("a", 0)
	if err := o.Err(); err == nil || err.Error() != "option a: 1.5 is not an integer" {
		t.Fatalf("got %v", err)
	}
	o = NewOptions(map[string]any{"zz": 1, "aa": 2})
	if err := o.Err(); err == nil || err.Error() != "unknown option aa, zz" {
		t.Fatalf("got %v", err)
	}
}

func TestRange(t *testing.T) {
	r := Range{Min: -40, Max: 85}
	if err := r.Check("temperature", 86, "°C"); err == nil || err.Error() != "temperature 86 °C out of range -40..85" {
		t.Fatalf("got %v", err)
	}
	if err := r.Check("temperature", 85, "°C"); err != nil {
		t.Fatal(err)
	}
}
