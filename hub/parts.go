package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/configs"
	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// parts lists the hub's components in start order.
func (h *Hub) parts() []*part {
	ps := []*part{
		{name: "database", start: h.startDB},
		{name: "broker", start: h.startBroker},
	}
	if h.cfg.Uplink.Enabled || len(h.cfg.Uplink.Forward) > 0 {
		ps = append(ps, &part{name: "uplink", start: h.startUplink})
	}
	if h.cfg.MQTTSN.Enabled {
		ps = append(ps, &part{name: "mqttsn gateway", start: h.startGateway})
	}
	if len(h.cfg.Sensors) > 0 {
		ps = append(ps, &part{name: "sensors", start: h.startSensors})
	}
	if h.cfg.HTTP.Listen != "off" {
		ps = append(ps, &part{name: "http console", start: h.startHTTP})
	}
	return ps
}

func (h *Hub) startDB(ctx context.Context) (func(context.Context) error, error) {
	if err := os.MkdirAll(h.cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	policy, err := queuePolicy(h.cfg.Uplink.Queue)
	if err != nil {
		return nil, err
	}
	db, err := queue.Open(h.cfg.DataDir, queue.Options{Logger: h.log, Policy: policy})
	if err != nil {
		return nil, err
	}
	h.db = db
	return func(context.Context) error { return db.Close() }, nil
}

func (h *Hub) startBroker(ctx context.Context) (func(context.Context) error, error) {
	b, err := brokercore.New(h.cfg.Broker, brokercore.Options{
		Logger:  h.log,
		Store:   h.db,
		Version: h.opts.Version,
	})
	if err != nil {
		return nil, err
	}
	// The store-and-forward tap is registered before the listeners open,
	// so no message bound for the cloud is accepted without it.
	if h.cfg.Uplink.Enabled || len(h.cfg.Uplink.Forward) > 0 {
		f, err := storeforward.New(h.cfg.Uplink, storeforward.Deps{
			DB:          h.db,
			Publisher:   b,
			Sessions:    b,
			Logger:      h.log,
			Site:        h.cfg.Site,
			SysInterval: h.cfg.Broker.SysInterval,
		})
		if err != nil {
			return nil, fmt.Errorf("uplink: %w", err)
		}
		b.AddTap(f.Tap())
		h.uplink = f
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	h.broker = b
	return b.Shutdown, nil
}

// startUplink runs the forwarder's drain loop and downlink (the tap is
// already on the broker). With uplink.enabled false it only queues.
func (h *Hub) startUplink(ctx context.Context) (func(context.Context) error, error) {
	return h.runPart("uplink", h.uplink.Run), nil
}

func (h *Hub) startGateway(ctx context.Context) (func(context.Context) error, error) {
	g, err := snbridge.New(h.cfg.MQTTSN, h.broker, h.log)
	if err != nil {
		return nil, err
	}
	h.gateway = g
	return h.runPart("mqttsn gateway", g.Run), nil
}

func (h *Hub) startSensors(ctx context.Context) (func(context.Context) error, error) {
	a, err := h.newSensors(h.cfg.Sensors)
	if err != nil {
		return nil, err
	}
	h.sensors.Store(a)
	return h.runPart("sensors", a.Run), nil
}

func (h *Hub) newSensors(cfgs []adapters.SensorConfig) (*adapters.Adapters, error) {
	return adapters.New(cfgs, h.broker, adapters.Options{
		Logger:     h.log,
		StateDir:   filepath.Join(h.cfg.DataDir, "sensors"),
		Subscriber: h.broker,
	})
}

// Defaults of uplink.queue (DESIGN.md): 1 GiB, 30 days, drop the oldest.
const (
	defaultQueueMaxBytes = "1GiB"
	defaultQueueMaxAge   = 720 * time.Hour
)

// queuePolicy turns uplink.queue into the queue's bounds.
func queuePolicy(q storeforward.QueueConfig) (queue.Policy, error) {
	size := q.MaxBytes
	if size == "" {
		size = defaultQueueMaxBytes
	}
	n, err := configs.ParseSize(size)
	if err != nil {
		return queue.Policy{}, fmt.Errorf("uplink.queue.max_bytes: %w", err)
	}
	age := q.MaxAge
	if age == 0 {
		age = defaultQueueMaxAge
	}
	p := queue.Policy{MaxBytes: n, MaxAge: age, WhenFull: q.WhenFull}
	return p, p.Validate()
}
