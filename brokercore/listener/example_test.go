package listener_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/outpost-iot/outpost/brokercore/listener"
)

func ExampleListen() {
	l, err := listener.Listen(context.Background(), listener.Config{Address: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	// On SIGHUP the hub re-reads certificates of every listener.
	if r, ok := l.(listener.Reloader); ok {
		fmt.Println("reload:", r.Reload())
	}
	// Output: reload: <nil>
}
