package configs

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a byte size as written in outpost.yaml (uplink.queue.max_bytes):
// a number with an optional unit, IEC (KiB, MiB, GiB, TiB: powers of 1024)
// or SI (kB, MB, GB, TB: powers of 1000), e.g. "1GiB", "512MiB", "1.5GB",
// "1048576". Units are case-insensitive; a bare "G" or "M" is refused as
// ambiguous.
func ParseSize(s string) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

// parseSize is ParseSize with errors that do not repeat the input.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	if num == "" {
		return 0, errors.New("no number; write e.g. 1GiB or 512MiB")
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", num)
	}
	var mult float64
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "tib":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("unknown unit %q; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB", unit)
	}
	n := f * mult
	if n != math.Trunc(n) {
		return 0, errors.New("not a whole number of bytes")
	}
	if n >= math.MaxInt64 {
		return 0, errors.New("too large")
	}
	return int64(n), nil
}
