package topic

import (
	"errors"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		filter, name string
		want         bool
	}{
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true}, // [MQTT-4.7.1-2] "sport/#" matches "sport"
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+", "a", true},
		{"+", "a/b", false},
		{"+/+", "/a", true}, // a leading '/' makes an empty first level
		{"/+", "/a", true},
		{"a//c", "a//c", true},
		{"a/+/c", "a//c", true},
		{"#", "$SYS/broker/uptime", false}, // [MQTT-4.7.2-1]
		{"+/broker/uptime", "$SYS/broker/uptime", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/b/#", "a/b", true},
		{"a/+/#", "a/b", true},
	}
	for _, c := range cases {
		if got := Match(c.filter, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.filter, c.name, got, c.want)
		}
	}
}

func TestValid(t *testing.T) {
	for _, f := range []string{"#", "+", "a/#", "+/+/#", "/", "a//b", "$SYS/#"} {
		if err := ValidFilter(f); err != nil {
			t.Errorf("ValidFilter(%q) = %v", f, err)
		}
	}
	for _, f := range []string{"", "a#", "a/#/b", "a+", "+a/b", "a/b+", "#/", "a\x00"} {
		if err := ValidFilter(f); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidFilter(%q) = %v, want ErrInvalid", f, err)
		}
	}
	for _, n := range []string{"", "a/+", "#", "a\x00b", string([]byte{0xff})} {
		if err := ValidName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalid", n, err)
		}
	}
	if err := ValidName("a/b c/d"); err != nil {
		t.Errorf("ValidName: %v", err)
	}
}

func TestParseShared(t *testing.T) {
	g, f, ok, err := ParseShared("$share/g1/sensors/#")
	if err != nil || !ok || g != "g1" || f != "sensors/#" {
		t.Fatalf("ParseShared = %q %q %v %v", g, f, ok, err)
	}
	if _, _, ok, err := ParseShared("a/b"); ok || err != nil {
		t.Fatalf("plain filter: ok=%v err=%v", ok, err)
	}
	for _, bad := range []string{"$share/", "$share//a", "$share/g+/a", "$share/g", "$share/g/a#"} {
		if _, _, _, err := ParseShared(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseShared(%q) err = %v", bad, err)
		}
	}
}
