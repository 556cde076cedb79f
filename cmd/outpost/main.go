// Command outpost is the edge IoT hub: an MQTT broker, an MQTT-SN gateway,
// sensor adapters and a durable store-and-forward uplink in one binary.
//
// This package holds the cobra commands only; the logic lives in hub,
// configs and the component packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is stamped at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "outpost:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status and no further message (the
// command already printed what was wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "outpost",
		Short: "Edge IoT hub: MQTT broker, MQTT-SN gateway, sensors and store-and-forward uplink",
		Long: `outpost turns a gateway box at a remote site into an edge IoT hub.

With no command it runs the hub (outpost run). With no config file it runs the
embedded default: the broker on 127.0.0.1:1883, the MQTT-SN gateway on UDP
127.0.0.1:1884, simulated sensors, a local queue in ./outpost-data, no cloud.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	run := newRunCmd()
	root.RunE = run.RunE
	root.Flags().AddFlagSet(run.Flags())
	root.AddCommand(
		run,
		newConfigCmd(),
		newPasswdCmd(),
		newPubCmd(),
		newSubCmd(),
		newSensorsCmd(),
		newBenchCmd(),
		newQueueCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "outpost", version)
		},
	}
}
