package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/configs"
	"github.com/outpost-iot/outpost/hub"
)

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run [-c FILE]",
		Short: "Run the hub (the default command)",
		Long: `Run the hub: broker, MQTT-SN gateway, sensors, store-and-forward uplink and
web console, as configured. Without -c it runs the embedded default.

SIGINT/SIGTERM stop it cleanly (clients get their wills per the spec, the
queue is flushed); SIGHUP reloads the password file, ACL, TLS certificates
and log level without dropping clients.`,
		Example: `  outpost run                          # embedded default, loopback only
  outpost run -c /etc/outpost/outpost.yaml
  outpost run -v                       # log every connect, subscribe and publish, like mosquitto -v`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHub(cmd, path)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file (YAML); default: the embedded default")
	configs.AddFlags(cmd.Flags())
	return cmd
}

// defaultMemoryLimit is the Go heap's soft limit when GOMEMLIMIT is not
// set: a 512 MiB box keeps room for the OS and Badger's mapped tables
// (storeforward/queue measured 117 MiB peak RSS filling 1M messages with a
// 64 MiB limit, 215 MiB with none).
const defaultMemoryLimit = 96 << 20

func runHub(cmd *cobra.Command, path string) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	cfg, err := configs.LoadOn(path, cmd.Flags(), adapters.NewHostBuses())
	if err != nil {
		if es, ok := err.(configs.Errors); ok {
			for _, e := range es {
				fmt.Fprintln(cmd.ErrOrStderr(), e)
			}
			return exitError{code: 2}
		}
		return err
	}
	log, lv, err := hub.NewLogger(cmd.ErrOrStderr(), cfg.Log.Level, cfg.Log.Format, false)
	if err != nil {
		return err
	}
	h, err := hub.New(cfg, hub.Options{
		Logger:     log,
		LevelVar:   lv,
		Version:    version,
		Out:        cmd.OutOrStdout(),
		ConfigPath: path,
		Flags:      cmd.Flags(),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := h.Reload(); err != nil {
					log.Error("reload failed; keeping the running configuration", "err", err)
				}
			}
		}
	}()
	return h.Run(ctx)
}
