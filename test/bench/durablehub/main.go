// Command durablehub is a stand-in for `outpost run` with an uplink forward
// rule and the uplink off, for test/bench/compare.sh: the broker, the
// Badger database and the store-and-forward tap wired as DESIGN.md says
// (database → broker with the tap registered before its listeners → the
// forwarder's Run, which with uplink.enabled false only keeps queueing).
//
// It exists because the hub does not build the store-and-forward part yet
// (hub/parts.go starts database, broker, MQTT-SN gateway and sensors only),
// so `outpost run` with an uplink section queues nothing and the durable
// case would measure a plain QoS 1 publish. Once the hub wires the
// forwarder, compare.sh's "durable qos1" row measures the real binary and
// this program can go.
//
//	durablehub -listen 127.0.0.1:1883 -data DIR [-filter bench/#]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/brokercore/listener"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1883", "MQTT listener address")
	data := flag.String("data", "", "data directory (the Badger database goes in DIR/db)")
	filter := flag.String("filter", "bench/#", "uplink forward rule filter (QoS 1)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *data, *filter); err != nil {
		fmt.Fprintln(os.Stderr, "durablehub:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, data, filter string) error {
	if data == "" {
		return fmt.Errorf("-data: required")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := queue.Open(data, queue.Options{Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := brokercore.New(brokercore.Config{
		Listeners:   []listener.Config{{Address: listen}},
		MaxInflight: 20,
		MaxQueued:   200000,
		SysInterval: time.Second,
	}, brokercore.Options{Logger: log, Store: db, Version: "durablehub"})
	if err != nil {
		return err
	}
	f, err := storeforward.New(storeforward.Config{Forward: []storeforward.ForwardRule{{Filter: filter, QoS: 1}}},
		storeforward.Deps{DB: db, Publisher: b, Logger: log, SysInterval: time.Second})
	if err != nil {
		return err
	}
	b.AddTap(f.Tap())
	if err := b.Start(ctx); err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(fctx) }()
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	err = b.Shutdown(sctx)
	cancel()
	if ferr := <-done; ferr != nil && err == nil {
		err = ferr
	}
	return err
}
