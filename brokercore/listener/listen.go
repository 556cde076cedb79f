package listener

import (
	"context"
	"fmt"
	"log/slog"
	"net"
)

// Listen opens the listener cfg describes.
func Listen(ctx context.Context, cfg Config, log *slog.Logger) (net.Listener, error) {
	if cfg.TLS != nil || cfg.WebSocket {
		return nil, fmt.Errorf("listen %s: TLS and WebSocket listeners are not built yet", cfg.Address)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Address, err)
	}
	return l, nil
}
