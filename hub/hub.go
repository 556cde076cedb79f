package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/brokercore"
	"github.com/outpost-iot/outpost/configs"
	"github.com/outpost-iot/outpost/hub/sdnotify"
	"github.com/outpost-iot/outpost/snbridge"
	"github.com/outpost-iot/outpost/storeforward"
	"github.com/outpost-iot/outpost/storeforward/queue"
)

// Options are what cmd/outpost hands the hub besides the config.
type Options struct {
	Logger   *slog.Logger   // nil: discard
	LevelVar *slog.LevelVar // set by Reload from log.level; may be nil
	Version  string
	// Out receives the start-up summary of where everything listens and
	// what it publishes; nil: the summary is only logged.
	Out io.Writer
	// ConfigPath and Flags are where the config came from, so Reload can
	// read it again ("" = the embedded default).
	ConfigPath string
	Flags      *pflag.FlagSet
}

// Hub is a running Outpost: every part built from one Config.
type Hub struct {
	cfg  configs.Config
	opts Options
	log  *slog.Logger

	db       *queue.DB
	broker   *brokercore.Broker
	gateway  *snbridge.Gateway
	sensors  atomic.Pointer[adapters.Adapters] // replaced by Reload
	uplink   *storeforward.Forwarder           // nil without forward rules or uplink
	http     *httpState                        // the web console (http.go)
	runners  sync.WaitGroup                    // goroutines of parts that Run(ctx)
	failed   chan error                        // a part whose Run ended on its own
	mu       sync.Mutex
	started  []*part
	startErr error
}

// part is one component in the lifecycle: start returns once the part is
// serving, with the stop function that returns once every goroutine of the
// part has exited.
type part struct {
	name  string
	start func(ctx context.Context) (stop func(context.Context) error, err error)
	stop  func(ctx context.Context) error
}

// New builds the hub from cfg; it opens nothing (Start does).
func New(cfg configs.Config, opts Options) (*Hub, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "outpost-data"
	}
	if cfg.Sensors == nil && opts.ConfigPath == "" {
		cfg.Sensors = adapters.DefaultSensors()
	}
	return &Hub{cfg: cfg, opts: opts, log: opts.Logger, failed: make(chan error, 8)}, nil
}

// Broker is the hub's broker once Start has built it.
func (h *Hub) Broker() *brokercore.Broker { return h.broker }

// Start brings the parts up in DESIGN.md order: database, broker (its
// listeners last), MQTT-SN gateway, sensor adapters. A part that fails to
// start stops the ones already started, and the error names it.
func (h *Hub) Start(ctx context.Context) error {
	for _, p := range h.parts() {
		stop, err := p.start(ctx)
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			h.Shutdown(sctx)
			cancel()
			if prefix := "start " + p.name + ":"; !strings.HasPrefix(err.Error(), prefix) {
				err = fmt.Errorf("%s %w", prefix, err)
			}
			return err
		}
		p.stop = stop
		h.mu.Lock()
		h.started = append(h.started, p)
		h.mu.Unlock()
	}
	return nil
}

// Run starts the hub, prints the summary, tells systemd it is ready and
// keeps the watchdog fed, and runs until ctx is done or a part fails; then
// it stops every part in reverse order.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	h.summary()
	if err := sdnotify.Ready(); err != nil {
		h.log.Warn("telling systemd READY=1", "err", err)
	}
	wctx, stopWatchdog := context.WithCancel(ctx)
	var wwg sync.WaitGroup
	wwg.Go(func() {
		if err := sdnotify.RunWatchdog(wctx, h.Healthy); err != nil {
			h.log.Warn("systemd watchdog", "err", err)
		}
	})
	var runErr error
	select {
	case <-ctx.Done():
		h.log.Info("stopping", "cause", context.Cause(ctx))
	case runErr = <-h.failed:
		h.log.Error("stopping: a part failed", "err", runErr)
	}
	stopWatchdog()
	wwg.Wait()
	if err := sdnotify.Stopping(); err != nil {
		h.log.Warn("telling systemd STOPPING=1", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := errors.Join(runErr, h.Shutdown(sctx))
	if err == nil {
		h.log.Info("stopped cleanly")
	}
	return err
}

// Shutdown stops the started parts in reverse order: adapters, MQTT-SN
// gateway, broker (clients get their wills), database.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	parts := h.started
	h.started = nil
	h.mu.Unlock()
	var errs []error
	for i := len(parts) - 1; i >= 0; i-- {
		if err := parts[i].stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", parts[i].name, err))
		}
	}
	return errors.Join(errs...)
}

// Healthy is the watchdog's health check: the broker loop answers and the
// database accepts a commit.
func (h *Hub) Healthy() error {
	if h.broker == nil {
		return errors.New("broker not running")
	}
	return nil
}

// Reload re-reads the configuration (SIGHUP) and applies what can change
// without dropping clients: the log level, the password file and ACL, the
// TLS certificates (broker listeners and console), the MQTT-SN DTLS keys,
// the sensors. A broken file keeps the running configuration and returns
// why.
func (h *Hub) Reload() error {
	_ = sdnotify.Reloading()
	defer sdnotify.Ready()
	cfg, err := configs.LoadOn(h.opts.ConfigPath, h.opts.Flags, adapters.NewHostBuses())
	if err != nil {
		return fmt.Errorf("reload config: %w", err)
	}
	if h.opts.LevelVar != nil {
		if err := setLevel(h.opts.LevelVar, cfg.Log.Level); err != nil {
			return err
		}
	}
	var errs []error
	if h.broker != nil {
		if err := h.broker.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("reload broker: %w", err))
		}
	}
	if err := h.reloadSensors(cfg.Sensors); err != nil {
		errs = append(errs, fmt.Errorf("reload sensors: %w", err))
	}
	if h.gateway != nil {
		if err := h.gateway.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("reload mqtt-sn (keeping the old keys): %w", err))
		}
	}
	if h.http != nil && h.http.cert != nil {
		if err := h.http.cert.load(); err != nil {
			errs = append(errs, fmt.Errorf("reload console TLS (keeping the old certificate): %w", err))
		} else {
			h.log.Info("reloaded console TLS certificate", "cert_file", h.http.cert.certFile)
		}
	}
	if restart := restartNeeded(h.cfg, cfg); len(restart) > 0 {
		h.log.Warn("changed settings take effect after a restart (systemctl restart outpost)", "sections", restart)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	h.log.Info("reloaded", "config", h.opts.ConfigPath)
	return nil
}

// reloadSensors replaces the running sensors when the list changed: the
// new set is built first (a bad one leaves the old running), then the old
// one stops (pulse totals saved, buses closed) and the new one starts.
func (h *Hub) reloadSensors(cfgs []adapters.SensorConfig) error {
	if h.opts.ConfigPath == "" && cfgs == nil {
		return nil // the embedded default keeps its simulated sensors
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if reflect.DeepEqual(h.cfg.Sensors, cfgs) || h.broker == nil {
		return nil
	}
	var p *part
	for _, sp := range h.started {
		if sp.name == "sensors" {
			p = sp
		}
	}
	var next *adapters.Adapters
	if len(cfgs) > 0 {
		a, err := h.newSensors(cfgs)
		if err != nil {
			return err // the running sensors stay
		}
		next = a
	}
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.stop(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	h.cfg.Sensors = cfgs
	h.sensors.Store(next)
	switch {
	case next != nil && p != nil:
		p.stop = h.runPart("sensors", next.Run)
	case next != nil:
		h.started = append(h.started, &part{name: "sensors", stop: h.runPart("sensors", next.Run)})
	case p != nil:
		p.stop = func(context.Context) error { return nil }
	}
	h.log.Info("sensors reloaded", "count", len(cfgs))
	return nil
}

// restartNeeded names the config sections that changed but are only read
// at start (listeners, the MQTT-SN gateway, the uplink, the console).
func restartNeeded(old, cur configs.Config) []string {
	var s []string
	if !reflect.DeepEqual(old.Broker, cur.Broker) {
		s = append(s, "broker")
	}
	if !reflect.DeepEqual(old.MQTTSN, cur.MQTTSN) {
		s = append(s, "mqttsn")
	}
	if !reflect.DeepEqual(old.Uplink, cur.Uplink) {
		s = append(s, "uplink")
	}
	if !reflect.DeepEqual(old.HTTP, cur.HTTP) {
		s = append(s, "http")
	}
	if old.DataDir != cur.DataDir {
		s = append(s, "data_dir")
	}
	return s
}

// runPart runs a part's Run(ctx) in a goroutine the hub owns. A Run that
// returns on its own, before stop was asked, fails the hub.
func (h *Hub) runPart(name string, run func(ctx context.Context) error) (stop func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h.runners.Go(func() {
		err := run(ctx)
		if ctx.Err() == nil {
			if err == nil {
				err = errors.New("stopped on its own")
			}
			select {
			case h.failed <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
		done <- err
	})
	return func(sctx context.Context) error {
		cancel()
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-sctx.Done():
			return fmt.Errorf("%s did not stop: %w", name, sctx.Err())
		}
	}
}

// BrokerAddrs returns the addresses the broker listens on.
func (h *Hub) BrokerAddrs() []net.Addr {
	if h.broker == nil {
		return nil
	}
	return h.broker.Addrs()
}
