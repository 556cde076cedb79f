package storeforward_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// The hub builds the Forwarder after the database, registers its tap with
// the broker before the broker's listeners open, and runs it until
// shutdown. Here nothing connects: the uplink is disabled, so Run only
// waits while the tap queues.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "outpost-example-")
	defer os.RemoveAll(dir)
	db, err := queue.Open(dir, queue.Options{Logger: slog.New(slog.DiscardHandler), MinFreeBytes: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	cfg := storeforward.Config{
		URL:      "mqtts://cloud.example.com:8883",
		Forward:  []storeforward.ForwardRule{{Filter: "sensors/#", QoS: 1, RemotePrefix: "sites/pump-7/"}},
		Downlink: []storeforward.DownlinkRule{{Filter: "sites/pump-7/cmd/#", QoS: 1, StripPrefix: "sites/pump-7/"}},
	}
	f, err := storeforward.New(cfg, storeforward.Deps{DB: db, Site: "pump-7"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// broker.AddTap(f.Tap()); then broker.Start(ctx)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	cancel()
	fmt.Println("run:", <-done)
	fmt.Println("client id:", f.ClientID())
	fmt.Println("status topic:", f.StatusTopic())
	fmt.Println("downlink publishes as:", f.DownlinkClientID())
	fmt.Println("state:", f.Status().State)
	// Output:
	// run: <nil>
	// client id: outpost-pump-7
	// status topic: sites/pump-7/status
	// downlink publishes as: outpost-pump-7-downlink
	// state: disabled
}
