// Package topic validates MQTT topic names and filters and matches them:
// the rules of MQTT 5.0 section 4.7 (and 3.1.1 section 4.7, which agree),
// shared subscriptions ($share/group/filter, section 4.8.2) and the
// $-topic rule [MQTT-4.7.2-1]. It imports only the standard library.
package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid topic")

// MaxLen is the longest topic the UTF-8 string encoding can carry (1.5.4).
const MaxLen = 65535

// ValidName checks a topic name used in PUBLISH: non-empty [MQTT-4.7.3-1],
// no wildcards [MQTT-4.7.0-1], valid UTF-8 without U+0000 [MQTT-1.5.4-1,2].
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("topic name is empty: %w", ErrInvalid)
	}
	if err := validString(name); err != nil {
		return fmt.Errorf("topic name %q: %w", name, err)
	}
	if strings.ContainsAny(name, "+#") {
		return fmt.Errorf("topic name %q contains a wildcard: %w", name, ErrInvalid)
	}
	return nil
}

// ValidFilter checks a topic filter used in SUBSCRIBE/UNSUBSCRIBE: '#' only
// as the last level on its own [MQTT-4.7.1-1], '+' only as a whole level
// [MQTT-4.7.1-2]. A shared filter ($share/group/f) is checked with
// ParseShared first.
func ValidFilter(filter string) error {
	if filter == "" {
		return fmt.Errorf("topic filter is empty: %w", ErrInvalid)
	}
	if err := validString(filter); err != nil {
		return fmt.Errorf("topic filter %q: %w", filter, err)
	}
	for i := 0; i < len(filter); i++ {
		switch filter[i] {
		case '#':
			if i != len(filter)-1 || (i > 0 && filter[i-1] != '/') {
				return fmt.Errorf("topic filter %q: '#' must be the last level on its own [MQTT-4.7.1-1]: %w", filter, ErrInvalid)
			}
		case '+':
			if (i > 0 && filter[i-1] != '/') || (i < len(filter)-1 && filter[i+1] != '/') {
				return fmt.Errorf("topic filter %q: '+' must occupy a whole level [MQTT-4.7.1-2]: %w", filter, ErrInvalid)
			}
		}
	}
	return nil
}

func validString(s string) error {
	if len(s) > MaxLen {
		return fmt.Errorf("longer than %d bytes: %w", MaxLen, ErrInvalid)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8 [MQTT-1.5.4-1]: %w", ErrInvalid)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("contains U+0000 [MQTT-1.5.4-2]: %w", ErrInvalid)
	}
	return nil
}

// SharePrefix starts a shared subscription filter (MQTT 5.0 section 4.8.2).
const SharePrefix = "$share/"

// ParseShared splits "$share/{ShareName}/{filter}". ok is false for an
// ordinary filter. The share name must be non-empty and hold no '/', '+'
// or '#' [MQTT-4.8.2-1], [MQTT-4.8.2-2]; the rest must be a valid filter.
func ParseShared(filter string) (group, f string, ok bool, err error) {
	if !strings.HasPrefix(filter, SharePrefix) {
		return "", filter, false, nil
	}
	rest := filter[len(SharePrefix):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", "", true, fmt.Errorf("shared subscription %q: needs $share/<name>/<filter> [MQTT-4.8.2-2]: %w", filter, ErrInvalid)
	}
	group, f = rest[:i], rest[i+1:]
	if strings.ContainsAny(group, "+#") {
		return "", "", true, fmt.Errorf("shared subscription %q: share name %q holds a wildcard [MQTT-4.8.2-2]: %w", filter, group, ErrInvalid)
	}
	if err := ValidFilter(f); err != nil {
		return "", "", true, fmt.Errorf("shared subscription %q: %w", filter, err)
	}
	return group, f, true, nil
}

// Match reports whether topic name matches filter. Both must be valid. A
// name starting with '$' is not matched by a filter starting with a
// wildcard [MQTT-4.7.2-1]. It does not allocate.
func Match(filter, name string) bool {
	if len(name) > 0 && name[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		if filter == "#" {
			return true
		}
		fl, frest, fmore := cut(filter)
		nl, nrest, nmore := cut(name)
		if fl != "+" && fl != nl {
			return false
		}
		if !fmore && !nmore {
			return true
		}
		if !fmore {
			return false
		}
		if !nmore {
			// "a/#" matches "a": '#' also matches the parent level [MQTT-4.7.1-2 note].
			return frest == "#"
		}
		filter, name = frest, nrest
	}
}

// cut returns the first level of s, the rest after the '/', and whether
// there was a '/'.
func cut(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}
