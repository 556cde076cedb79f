package configs

import (
	"fmt"
	"strings"
	"time"
)

// A FieldError is one thing wrong with a configuration: where it came from,
// the key, the value as given and why it is wrong. Its text reads
//
//	outpost.yaml:7: broker.listeners[0].address: "1883": missing port in address
//	$OUTPOST_BROKER_MAX_INFLIGHT: broker.max_inflight: "lots": not an integer
//	outpost.yaml:3: broker.listners: unknown key; did you mean broker.listeners?
type FieldError struct {
	// Source is where the value came from: "file:line", "$OUTPOST_..." or
	// "--flag"; empty when unknown (a Config built in code).
	Source string
	// Key is the dotted path of the key, with list indexes:
	// broker.listeners[0].address.
	Key string
	// Value is the offending value; nil when the key itself is wrong.
	Value any
	// Reason says what is wrong and, where it can, what would be right.
	Reason string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Value != nil {
		b.WriteString(formatValue(e.Value))
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// formatValue quotes strings so that empty strings and spaces show.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return fmtDuration(v)
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprintf("%v", v)
	}
}

// Errors is every problem found in one configuration, in the order of the
// file. Load and Validate return it (as error) when there is at least one.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// add records a problem.
func (es *Errors) add(key string, value any, format string, args ...any) {
	*es = append(*es, &FieldError{Key: key, Value: value, Reason: fmt.Sprintf(format, args...)})
}

// err returns es as an error, or nil when there is nothing wrong.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
