package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost-iot/outpost/hub/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		keepalive      int
		cfg            bench.Config
		host           string
		port, snPort   int
		version        string
		asJSON, strict bool
		round          int
		commit, prof   string
	)
	cmd := &cobra.Command{
		Use:   "bench SCENARIO [flags]",
		Short: "Load-test an MQTT broker (this hub's or any other) and report CPU, memory, loss and latency",
		Long: `outpost bench drives a running broker over loopback or the network with lean
raw-socket clients and reports, per run, the throughput, loss, duplicates and
order (checked by sequence numbers in every payload), latency percentiles, the
tool's own CPU per message and, with --broker-pid, the broker's CPU per message
(its threads' time on CPU from /proc/PID/task/*/schedstat, in ns) and peak RSS
(VmHWM).

Scenarios (defaults are the sizes of the project's reference table):
  fan-in       4 publishers × 20000 → 1 subscriber on bench/fanin/#
  fan-out      1 publisher × 2000 → 50 subscribers on bench/fanout
  connections  2000 connections, each subscribed to its own topic (-n = count)
  retained     10000 retained QoS 1 messages, then a new subscriber takes them all
  backlog      10000 QoS 1 messages queued for an offline persistent session, then drained
  mqttsn       4 MQTT-SN nodes (UDP, --sn-port) × 5000 → 1 MQTT subscriber on bench/sn/#
  durable      4 publishers × 5000 QoS 1 to bench/fwd/<n>, no subscriber; with a hub whose
               uplink forwards bench/# the acks wait for the durable queue, and the
               queue depth is read back from $SYS/outpost/uplink/queue/depth

Without --rate publishers send as fast as their window of unacknowledged QoS 1/2
messages allows (QoS 0: as fast as TCP takes them). Loss is reported, not an
error; --strict makes any loss, duplicate or reordering exit with status 3.

  outpost bench table [FILE...] renders JSON lines (--json) from several runs as a
  comparison table (median of rounds).`,
		Example: `  outpost bench fan-in -q 1
  outpost bench fan-out -q 0 --subscribers 50 --broker-pid $(pidof mosquitto)
  outpost bench fan-in -q 2 --window 64 --json >> results.jsonl
  outpost bench mqttsn --sn-port 1884 -q 1 --rate 2000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Scenario = args[0]
			cfg.KeepAlive = time.Duration(keepalive) * time.Second
			cfg.Addr = net.JoinHostPort(host, strconv.Itoa(port))
			cfg.SNAddr = net.JoinHostPort(host, strconv.Itoa(snPort))
			switch strings.ToLower(version) {
			case "mqttv311", "311", "4":
				cfg.Protocol = 4
			case "mqttv5", "5":
				cfg.Protocol = 5
			default:
				return fmt.Errorf("-V %q: want mqttv311 or mqttv5", version)
			}
			if prof != "" {
				fh, err := os.Create(prof)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer fh.Close()
				if err := pprof.StartCPUProfile(fh); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := bench.Run(cmd.Context(), cfg)
			if res == nil {
				return err
			}
			res.Round, res.Commit = round, commit
			out := cmd.OutOrStdout()
			if asJSON {
				if werr := res.WriteJSON(out); werr != nil {
					return werr
				}
			} else {
				res.WriteText(out)
			}
			if err != nil {
				return fmt.Errorf("bench %s: %w", cfg.Scenario, err)
			}
			if strict && (res.Lost > 0 || res.Dups > 0 || res.Reorders > 0) {
				return exitError{code: 3}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Bool("help", false, "help for bench") // -h is the host, as in mosquitto_pub
	f.StringVarP(&host, "host", "h", "127.0.0.1", "broker host")
	f.IntVarP(&port, "port", "p", 1883, "broker MQTT port")
	f.IntVar(&snPort, "sn-port", 1884, "MQTT-SN gateway UDP port (mqttsn)")
	f.StringVarP(&version, "protocol-version", "V", "mqttv311", "mqttv311 or mqttv5")
	f.IntVarP(&cfg.QoS, "qos", "q", 0, "QoS of publishes and subscriptions (durable: always 1; connections, retained, backlog: at least 1)")
	f.IntVar(&cfg.Publishers, "publishers", 0, "publishing clients (default per scenario)")
	f.IntVar(&cfg.Subscribers, "subscribers", 0, "subscribing clients (fan-in, fan-out)")
	f.IntVarP(&cfg.Messages, "messages", "n", 0, "messages per publisher; connections: number of connections (default per scenario)")
	f.IntVarP(&cfg.Window, "window", "w", 20, "unacknowledged QoS 1/2 messages per publisher")
	f.IntVarP(&cfg.PayloadSize, "size", "s", 64, "payload bytes (at least 20)")
	f.IntVarP(&keepalive, "keepalive", "k", 30, "MQTT keep alive of every client in seconds (0 = none; 30 is Paho's default)")
	f.Float64VarP(&cfg.Rate, "rate", "r", 0, "messages per second over all publishers (0 = saturate)")
	f.IntVar(&cfg.BrokerPID, "broker-pid", 0, "pid of the broker process: measure its CPU and peak RSS")
	f.StringVar(&cfg.Broker, "broker", "", "label of the broker under test, for the JSON line and table")
	f.StringVar(&cfg.Case, "case", "", "label of the case (default: scenario and QoS)")
	f.DurationVar(&cfg.Idle, "idle", 5*time.Second, "stop waiting after this long without progress; what has not arrived is lost")
	f.DurationVar(&cfg.SysWait, "sys-wait", 15*time.Second, "durable: how long to wait for the hub's queue depth in $SYS")
	f.BoolVar(&asJSON, "json", false, "print one JSON line instead of the text report")
	f.BoolVar(&strict, "strict", false, "exit with status 3 on any loss, duplicate or reordering")
	f.IntVar(&round, "round", 0, "round number, recorded in the JSON line")
	f.StringVar(&commit, "commit", "", "commit measured, recorded in the JSON line")
	f.StringVar(&prof, "cpuprofile", "", "write the tool's own CPU profile to this file (pprof)")
	cmd.AddCommand(newBenchTableCmd())
	return cmd
}

func newBenchTableCmd() *cobra.Command {
	var refFile string
	cmd := &cobra.Command{
		Use:   "table [FILE...]",
		Short: "Render JSON lines from outpost bench --json as a comparison table (median of rounds)",
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []io.Reader
			for _, a := range args {
				fh, err := os.Open(a)
				if err != nil {
					return fmt.Errorf("bench table: %w", err)
				}
				defer fh.Close()
				rs = append(rs, fh)
			}
			if len(rs) == 0 {
				rs = append(rs, cmd.InOrStdin())
			}
			results, err := bench.ReadResults(io.MultiReader(rs...))
			if err != nil {
				return err
			}
			if len(results) == 0 {
				return fmt.Errorf("bench table: no results read")
			}
			var ref *bench.Reference
			if refFile != "" {
				fh, err := os.Open(refFile)
				if err != nil {
					return fmt.Errorf("bench table: %w", err)
				}
				defer fh.Close()
				if ref, err = bench.ReadReference(fh); err != nil {
					return err
				}
			}
			bench.WriteTable(cmd.OutOrStdout(), results, ref)
			return nil
		},
	}
	cmd.Flags().StringVar(&refFile, "reference", "", "tab-separated figures measured elsewhere to show beside the runs (header: case<TAB>column...)")
	return cmd
}
