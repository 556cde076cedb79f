package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/configs"
)

// newConfigCmd is `outpost config`: check a file, print the example.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file or print the commented example",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newConfigCheckCmd(), newConfigExampleCmd())
	return cmd
}

func newConfigCheckCmd() *cobra.Command {
	var (
		path     string
		printCfg bool
		offline  bool
	)
	cmd := &cobra.Command{
		Use:   "check [-c FILE]",
		Short: "Validate a configuration file and name every bad key",
		Long: `Validate a configuration file as outpost run would read it, with the
OUTPOST_* environment variables applied, and print every problem with the
file and line, the key, the value and why it is wrong:

  outpost.yaml:4: broker.listners: unknown key; did you mean broker.listeners?

Sensors on real hardware must find their bus (I2C, SPI, 1-Wire, GPIO) on
this machine, as outpost run requires; --offline skips that check to
validate a field config on a laptop.

Prints "FILE: OK" and exits 0 when the file is good, exits 1 otherwise.
Without -c it checks the embedded default with the environment applied.`,
		Example: `  outpost config check -c /etc/outpost/outpost.yaml
  outpost config check --print -c outpost.yaml   # also show the effective config`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if path != "" && path != args[0] {
					return fmt.Errorf("config check: two files given (%s and %s)", path, args[0])
				}
				path = args[0]
			}
			name := path
			if name == "" {
				name = "embedded default config"
			}
			var hw adapters.BusLister
			if !offline {
				hw = adapters.NewHostBuses()
			}
			cfg, err := configs.LoadOn(path, cmd.Flags(), hw)
			if err != nil {
				if es, ok := err.(configs.Errors); ok {
					for _, e := range es {
						fmt.Fprintln(cmd.ErrOrStderr(), e)
					}
					return fmt.Errorf("%s: %d %s", name, len(es), plural(len(es), "problem", "problems"))
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", name)
			if printCfg {
				out, err := configs.Marshal(cfg)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file to check")
	cmd.Flags().BoolVar(&printCfg, "print", false, "print the effective configuration (file + environment) as YAML")
	cmd.Flags().BoolVar(&offline, "offline", false, "do not check that hardware sensors' buses exist on this machine")
	return cmd
}

func newConfigExampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "example",
		Short: "Print the full commented example configuration",
		Long: `Print the full example outpost.yaml: every key, its default and what it
does. Start a field config from it:

  outpost config example > /etc/outpost/outpost.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(configs.Example())
			return err
		},
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
