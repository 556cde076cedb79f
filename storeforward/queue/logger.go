package queue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// badgerLogger adapts Badger's printf logger to slog, and catches the one
// durability error Badger only logs: a failed value-log sync inside a
// transaction commit ("Error while curlf sync"). The writer compares
// syncFaults before and after each commit and fails the batch if it moved,
// so no publisher is acknowledged on a value that may not be on disk.
type badgerLogger struct {
	log        *slog.Logger
	syncFaults atomic.Uint64
}

func (l *badgerLogger) line(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l *badgerLogger) Errorf(format string, args ...any) {
	if strings.Contains(strings.ToLower(format), "sync") {
		l.syncFaults.Add(1)
	}
	l.line(slog.LevelError, format, args...)
}

func (l *badgerLogger) Warningf(format string, args ...any) {
	l.line(slog.LevelWarn, format, args...)
}

// Infof: Badger's info lines (compactions, replay progress) are debug for us.
func (l *badgerLogger) Infof(format string, args ...any) {
	l.line(slog.LevelDebug, format, args...)
}

func (l *badgerLogger) Debugf(format string, args ...any) {
	l.line(slog.LevelDebug-4, format, args...)
}
