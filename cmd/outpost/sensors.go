package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/configs"
)

// newSensorsCmd is `outpost sensors list|scan|read`.
func newSensorsCmd() *cobra.Command {
	var path string
	load := func(cmd *cobra.Command) (configs.Config, error) {
		cfg, err := configs.Load(path, cmd.Flags())
		if err != nil {
			if es, ok := err.(configs.Errors); ok {
				for _, e := range es {
					fmt.Fprintln(cmd.ErrOrStderr(), e)
				}
				return cfg, exitError{code: 2}
			}
			return cfg, err
		}
		if cfg.Sensors == nil && path == "" {
			cfg.Sensors = adapters.DefaultSensors()
		}
		return cfg, nil
	}
	cmd := &cobra.Command{
		Use:   "sensors",
		Short: "List, scan for and read the hub's sensors",
		Long: `List the configured sensors, scan the buses for chips, or read one sensor
once, with the same drivers (and, for simulate: sensors, the same emulated
chips) that outpost run uses. Without -c it uses the embedded default.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "", "configuration file (YAML); default: the embedded default")
	cmd.AddCommand(
		&cobra.Command{
			Use:     "list",
			Short:   "List the configured sensors",
			Example: "  outpost sensors list -c /etc/outpost/outpost.yaml",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, err := load(cmd)
				if err != nil {
					return err
				}
				return sensorsList(cmd.OutOrStdout(), cfg.Sensors)
			},
		},
		&cobra.Command{
			Use:   "scan",
			Short: "List real and simulated buses and the I²C chips that answer",
			Long: `List the I²C, SPI, 1-Wire and GPIO buses periph finds on this machine and
the emulated ones of simulate: sensors, and probe every I²C address (a
one-byte read, like i2cdetect -r) naming known chips by their id registers.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, err := load(cmd)
				if err != nil {
					return err
				}
				return sensorsScan(cmd.OutOrStdout(), cfg.Sensors, adapters.NewHostBuses())
			},
		},
		&cobra.Command{
			Use:     "read NAME",
			Short:   "Read one sensor once and print it in human units",
			Example: "  outpost sensors read weather\n  outpost sensors read tank -c /etc/outpost/outpost.yaml",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cfg, err := load(cmd)
				if err != nil {
					return err
				}
				return sensorsRead(cmd.Context(), cmd.OutOrStdout(), cfg.Sensors, filepath.Join(cfg.DataDir, "sensors"), args[0])
			},
		},
	)
	return cmd
}

func sensorsList(w io.Writer, cfgs []adapters.SensorConfig) error {
	a, err := adapters.New(cfgs, discard{}, adapters.Options{Subscriber: discard{}})
	if err != nil {
		return err
	}
	if len(a.List()) == 0 {
		fmt.Fprintln(w, "no sensors configured")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDRIVER\tBUS\tTOPIC\tINTERVAL\tMODE")
	for _, s := range a.List() {
		mode := "hardware"
		if s.Simulated {
			mode = "simulated"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Driver, s.Bus, s.Topic, s.Interval, mode)
	}
	return tw.Flush()
}

func sensorsScan(w io.Writer, cfgs []adapters.SensorConfig, host *adapters.HostBuses) error {
	if err := host.Init(); err != nil {
		return err
	}
	found := 0
	fmt.Fprintln(w, "Hardware buses (periph):")
	for _, typ := range []string{"i2c", "spi", "onewire", "gpio"} {
		names := host.List(typ)
		found += len(names)
		if typ == "gpio" && len(names) > 12 {
			names = append(names[:12:12], fmt.Sprintf("... (%d pins)", len(host.List(typ))))
		}
		if len(names) > 0 {
			fmt.Fprintf(w, "  %-8s %s\n", typ, strings.Join(names, ", "))
		}
	}
	if found == 0 {
		fmt.Fprintln(w, "  none: periph found no I²C, SPI, 1-Wire or GPIO hardware on this machine.")
		fmt.Fprintln(w, "  (On a Raspberry Pi enable I²C/SPI with raspi-config; elsewhere use simulate: sensors.)")
	}
	for _, name := range host.List("i2c") {
		bus, err := host.I2C(name)
		if err != nil {
			fmt.Fprintf(w, "  i2c %s: %v\n", name, err)
			continue
		}
		scanBus(w, "i2c "+name, adapters.ScanI2C(bus))
	}
	host.Close()

	a, err := adapters.New(cfgs, discard{}, adapters.Options{Subscriber: discard{}})
	if err != nil {
		return err
	}
	world := a.World()
	names := world.BusNames()
	if len(names) == 0 {
		fmt.Fprintln(w, "Simulated buses: none (no simulate: sensors configured)")
		return nil
	}
	fmt.Fprintln(w, "Simulated buses (simulate: sensors):")
	for _, typ := range []string{"i2c", "spi", "onewire", "gpio"} {
		if len(names[typ]) > 0 {
			fmt.Fprintf(w, "  %-8s %s\n", typ, strings.Join(names[typ], ", "))
		}
	}
	for _, name := range names["i2c"] {
		bus, err := world.I2C(name)
		if err != nil {
			return err
		}
		scanBus(w, "i2c "+name, adapters.ScanI2C(bus))
	}
	for _, name := range names["onewire"] {
		bus, _ := world.OneWire(name)
		addrs, err := bus.Search(false)
		if err != nil {
			fmt.Fprintf(w, "  onewire %s: search: %v\n", name, err)
			continue
		}
		for _, ad := range addrs {
			fmt.Fprintf(w, "  onewire %s: %02x-%012x\n", name, byte(ad), uint64(ad)>>8&0xFFFFFFFFFFFF)
		}
	}
	return nil
}

func scanBus(w io.Writer, name string, found []adapters.Found) {
	if len(found) == 0 {
		fmt.Fprintf(w, "  %s: no device answered\n", name)
		return
	}
	for _, f := range found {
		fmt.Fprintf(w, "  %s: %s\n", name, f)
	}
}

func sensorsRead(ctx context.Context, w io.Writer, cfgs []adapters.SensorConfig, stateDir, name string) error {
	a, err := adapters.New(cfgs, discard{}, adapters.Options{Subscriber: discard{}, StateDir: stateDir})
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := a.ReadNow(ctx, name)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\n", name, r.Time.Local().Format("2006-01-02 15:04:05 MST"))
	for _, v := range r.Values {
		fmt.Fprintf(tw, "  %s\t%s\n", v.Quantity, Human(v))
	}
	return tw.Flush()
}

// Human formats a value in the units a field engineer reads: hPa for
// pressure, mA for small currents, a sensible number of decimals.
func Human(v sensor.Value) string {
	switch v.Unit {
	case sensor.UnitPascal:
		return fmt.Sprintf("%.2f hPa", v.Value/100)
	case sensor.UnitCelsius:
		return fmt.Sprintf("%.2f °C", v.Value)
	case sensor.UnitPercent:
		return fmt.Sprintf("%.1f %%", v.Value)
	case sensor.UnitAmpere:
		if v.Value > -1 && v.Value < 1 {
			return fmt.Sprintf("%.1f mA", v.Value*1000)
		}
		return fmt.Sprintf("%.3f A", v.Value)
	case sensor.UnitVolt:
		return fmt.Sprintf("%.3f V", v.Value)
	case sensor.UnitWatt:
		return fmt.Sprintf("%.2f W", v.Value)
	case "":
		return fmt.Sprintf("%g", v.Value)
	}
	return fmt.Sprintf("%.4g %s", v.Value, v.Unit)
}

// discard is a Publisher and Subscriber that drops everything: the CLI reads
// sensors without a broker.
type discard struct{}

func (discard) Publish(context.Context, msg.Message) error { return nil }
func (discard) Subscribe(string, byte, func(msg.Message)) (func(), error) {
	return func() {}, nil
}
