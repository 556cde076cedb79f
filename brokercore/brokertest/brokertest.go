// Package brokertest runs a real broker on the loopback interface for
// tests, as net/http/httptest does for HTTP servers: NewServer starts one
// on 127.0.0.1:0 with an in-memory store and stops it at the end of the
// test.
package brokertest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

// Server is a broker listening on a system-chosen loopback port.
type Server struct {
	Addr   string // host:port of the MQTT listener
	Broker *brokercore.Broker
	Store  *msg.MemStore
}

// NewServer starts a broker with default config (anonymous clients
// allowed) on 127.0.0.1:0 and a fresh MemStore. t.Cleanup shuts it down.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return NewServerConfig(t, brokercore.Config{}, brokercore.Options{})
}

// NewServerConfig is NewServer with a config and options; the listener
// list is replaced by 127.0.0.1:0, a nil Store by a fresh MemStore, a nil
// Logger by one that writes to t.Log at Info.
func NewServerConfig(t testing.TB, cfg brokercore.Config, opts brokercore.Options) *Server {
	t.Helper()
	cfg.Listeners = []listener.Config{{Address: "127.0.0.1:0"}}
	st, _ := opts.Store.(*msg.MemStore)
	if opts.Store == nil {
		st = msg.NewMemStore()
		opts.Store = st
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	b, err := brokercore.New(cfg, opts)
	if err != nil {
		t.Fatalf("brokertest: new broker: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("brokertest: start broker: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("brokertest: shutdown: %v", err)
		}
	})
	return &Server{Addr: b.Addrs()[0].String(), Broker: b, Store: st}
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
