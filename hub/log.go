// Package hub builds every part of Outpost from one configs.Config, runs
// them in order (database, broker, store-and-forward, MQTT-SN gateway,
// sensor adapters, HTTP console) and stops them in reverse.
//
// It is the only package that constructs the parts and knows all of them;
// only cmd/outpost and the end-to-end tests in test/ import it.
package hub

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns the hub's logger for level (debug|info|warn|error) and
// format (text|json). verbose forces debug, like mosquitto -v. The level is
// a LevelVar so SIGHUP can change it.
func NewLogger(w io.Writer, level, format string, verbose bool) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := setLevel(lv, level); err != nil {
		return nil, nil, err
	}
	if verbose {
		lv.Set(slog.LevelDebug)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), lv, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), lv, nil
	default:
		return nil, nil, fmt.Errorf("log.format %q: want text or json", format)
	}
}

func setLevel(lv *slog.LevelVar, level string) error {
	switch strings.ToLower(level) {
	case "", "info":
		lv.Set(slog.LevelInfo)
	case "debug":
		lv.Set(slog.LevelDebug)
	case "warn", "warning":
		lv.Set(slog.LevelWarn)
	case "error":
		lv.Set(slog.LevelError)
	default:
		return fmt.Errorf("log.level %q: want debug, info, warn or error", level)
	}
	return nil
}
