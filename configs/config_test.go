package configs

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/outpost-iot/outpost/adapters"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./configs -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./configs -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// clearEnv unsets every OUTPOST_* variable for the test, so a developer's
// environment cannot change the results.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// TestGoodFiles loads every testdata/good/*.yaml and compares the effective
// configuration with its .golden file.
func TestGoodFiles(t *testing.T) {
	clearEnv(t)
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/good/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f, nil)
			if err != nil {
				t.Fatalf("Load(%s): %v", f, err)
			}
			out, err := Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", out)
			roundTrip(t, cfg)
		})
	}
}

// roundTrip checks that Marshal writes what Load reads back unchanged.
func roundTrip(t *testing.T, cfg Config) {
	t.Helper()
	out, err := Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "rt.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p, nil)
	if err != nil {
		t.Fatalf("reloading Marshal output: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(normalize(back), normalize(cfg)) {
		t.Errorf("round trip changed the config\n--- marshalled\n%s\n--- got %#v\n--- want %#v", out, back, cfg)
	}
}

// normalize makes empty and nil maps and slices compare equal, and numbers
// in the free-form maps compare as float64: YAML writes 18.0 as 18.
func normalize(c Config) Config {
	c.Sensors = append([]adapters.SensorConfig(nil), c.Sensors...)
	for i := range c.Sensors {
		c.Sensors[i].Simulate = floats(c.Sensors[i].Simulate)
		c.Sensors[i].Options = floats(c.Sensors[i].Options)
		if len(c.Sensors[i].Deadband) == 0 {
			c.Sensors[i].Deadband = nil
		}
	}
	if len(c.MQTTSN.PredefinedTopics) == 0 {
		c.MQTTSN.PredefinedTopics = nil
	}
	if len(c.HTTP.Users) == 0 {
		c.HTTP.Users = nil
	}
	return c
}

func floats(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case int:
			out[k] = float64(v)
		case map[string]any:
			out[k] = floats(v)
		default:
			out[k] = v
		}
	}
	return out
}

// TestBadFiles loads every testdata/bad/*.yaml and compares the error text
// with its .golden file: every problem, with file and line.
func TestBadFiles(t *testing.T) {
	clearEnv(t)
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/bad/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, nil)
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want errors", f)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

func TestUnknownKeyMessage(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "broker:\n  listners:\n    - address: \"127.0.0.1:1883\"\n")
	_, err := Load(p, nil)
	want := p + ":2: broker.listners: unknown key; did you mean broker.listeners?"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "broker.listners" || fe.Source != p+":2" {
		t.Fatalf("errors.As FieldError = %+v", fe)
	}
}

// TestUnknownDriver: the driver list grows, so this checks the start of
// the message rather than a golden list of drivers.
func TestUnknownDriver(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "sensors:\n  - name: mast\n    driver: bme28\n    bus: {type: i2c, name: \"1\"}\n")
	_, err := Load(p, nil)
	want := p + `:2: sensors[0]: unknown driver "bme28" (known: `
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "bme280") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v\nwant one line starting %s, listing bme280", err, want)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "data_dir: /from/file\nlog: {level: info}\nbroker:\n  max_inflight: 10\n")
	t.Setenv("OUTPOST_BROKER_MAX_INFLIGHT", "42")
	t.Setenv("OUTPOST_DATA_DIR", "/from/env")
	t.Setenv("OUTPOST_LOG_LEVEL", "debug")
	t.Setenv("OUTPOST_UPLINK_QUEUE_MAX_AGE", "48h")
	t.Setenv("OUTPOST_BROKER_ALLOW_ANONYMOUS", "true")
	t.Setenv("OUTPOST_MQTTSN_GATEWAY_ID", "0x2a")
	t.Setenv("OUTPOST_MQTTSN_SERIAL_DEVICE", "/dev/ttyAMA0")
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.MaxInflight != 42 || cfg.DataDir != "/from/env" || cfg.Log.Level != "debug" ||
		cfg.Uplink.Queue.MaxAge != 48*time.Hour || cfg.Broker.AllowAnonymous == nil || !*cfg.Broker.AllowAnonymous ||
		cfg.MQTTSN.GatewayID != 42 || cfg.MQTTSN.Serial == nil || cfg.MQTTSN.Serial.Device != "/dev/ttyAMA0" {
		t.Fatalf("env not applied: %+v", cfg)
	}
}

func TestEnvOverridesDefault(t *testing.T) {
	clearEnv(t)
	t.Setenv("OUTPOST_HTTP_LISTEN", "off")
	t.Setenv("OUTPOST_MQTTSN_ENABLED", "false")
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.HTTP.Listen = "off"
	want.MQTTSN.Enabled = false
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("Load(\"\") = %+v\nwant %+v", cfg, want)
	}
}

func TestEnvErrors(t *testing.T) {
	clearEnv(t)
	t.Setenv("OUTPOST_BROKER_MAX_INFLIGHT", "lots")
	t.Setenv("OUTPOST_BROKER_MAX_INFLIGTH", "5")
	t.Setenv("OUTPOST_BROKER_LISTENERS", ":1883")
	t.Setenv("OUTPOST_UPLINK_QUEUE_WHEN_FULL", "drop_newest")
	_, err := Load("", nil)
	want := strings.Join([]string{
		`$OUTPOST_BROKER_LISTENERS: broker.listeners: lists and maps cannot be set from the environment; set broker.listeners in the config file`,
		`$OUTPOST_BROKER_MAX_INFLIGTH: unknown variable; did you mean OUTPOST_BROKER_MAX_INFLIGHT?`,
		`$OUTPOST_BROKER_MAX_INFLIGHT: broker.max_inflight: "lots": not an integer`,
		`$OUTPOST_UPLINK_QUEUE_WHEN_FULL: uplink.queue.when_full: "drop_newest": must be drop_oldest or reject`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n%v\nwant\n%s", err, want)
	}
}

func TestFlagsOverrideEnvAndFile(t *testing.T) {
	clearEnv(t)
	p := writeFile(t, "data_dir: /from/file\nlog: {level: warn}\nbroker: {max_inflight: 10}\n")
	t.Setenv("OUTPOST_DATA_DIR", "/from/env")
	t.Setenv("OUTPOST_BROKER_MAX_INFLIGHT", "30")
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	AddFlags(fs)
	fs.StringP("config", "c", "", "config file") // the command's own flag: ignored
	fs.Int("broker-max-inflight", 0, "")         // any key can be a flag
	fs.Duration("uplink.reconnect.max", 0, "")   // dotted form too
	if err := fs.Parse([]string{"-c", p, "--data-dir=/from/flag", "-v", "--broker-max-inflight=50", "--uplink.reconnect.max=2m"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/flag" || cfg.Log.Level != "debug" || cfg.Broker.MaxInflight != 50 || cfg.Uplink.Reconnect.Max != 2*time.Minute {
		t.Fatalf("flags not applied: data_dir=%q level=%q max_inflight=%d reconnect.max=%v",
			cfg.DataDir, cfg.Log.Level, cfg.Broker.MaxInflight, cfg.Uplink.Reconnect.Max)
	}

	// Flags left at their defaults do not override the file; an explicit
	// --log-level beats -v.
	fs = pflag.NewFlagSet("run", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"-v", "--log-level=error"}); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(p, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/env" || cfg.Log.Level != "error" || cfg.Broker.MaxInflight != 30 {
		t.Fatalf("got data_dir=%q level=%q max_inflight=%d", cfg.DataDir, cfg.Log.Level, cfg.Broker.MaxInflight)
	}
}

func TestFlagErrorNamesFlag(t *testing.T) {
	clearEnv(t)
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--log-format=xml", "--http-listen=9883"}); err != nil {
		t.Fatal(err)
	}
	_, err := Load("", fs)
	want := "--log-format: log.format: \"xml\": must be text or json\n" +
		"--http-listen: http.listen: \"9883\": missing port in address; want host:port, e.g. \"127.0.0.1:1883\" or \":1883\" (or \"off\" to disable the console)"
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n%v\nwant\n%s", err, want)
	}
}

func TestDefaultIsValidAndLoopback(t *testing.T) {
	clearEnv(t)
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("the zero Config (every default) is invalid: %v", err)
	}
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, d) {
		t.Fatalf("Load(\"\") = %+v, want Default() %+v", cfg, d)
	}
	if len(d.Broker.Listeners) != 1 || d.Broker.Listeners[0].Address != "127.0.0.1:1883" ||
		!d.MQTTSN.Enabled || d.MQTTSN.Listen != "127.0.0.1:1884" || d.DataDir != "./outpost-data" ||
		d.Uplink.Enabled || d.HTTP.Listen != "127.0.0.1:9883" {
		t.Fatalf("Default() = %+v", d)
	}
	roundTrip(t, d)
}

// TestExampleHasEveryKey keeps outpost.example.yaml complete: a key a
// component adds to its Config must be documented there.
func TestExampleHasEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Example(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			walk(n.Content[0], path)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := joinKey(path, n.Content[i].Value)
				seen[p] = true
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path+"[]")
			}
		}
	}
	walk(&doc, "")
	for _, l := range leaves() {
		if !seen[l.path] {
			t.Errorf("configs/outpost.example.yaml does not show key %s; add it with a comment", l.path)
		}
	}
}

func TestExampleLoads(t *testing.T) {
	clearEnv(t)
	p := filepath.Join(t.TempDir(), "outpost.yaml")
	if err := os.WriteFile(p, Example(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatalf("the example does not load:\n%v", err)
	}
	if cfg.Sensors[0].Bus.Address != 0x76 || cfg.Uplink.Queue.MaxBytes != "1GiB" || cfg.MQTTSN.PredefinedTopics[2] != "site/valve/cmd" {
		t.Fatalf("example decoded wrongly: %+v", cfg)
	}
	roundTrip(t, cfg)
}

// TestPackagedConfig checks the /etc/outpost/outpost.yaml the .deb installs.
func TestPackagedConfig(t *testing.T) {
	clearEnv(t)
	const p = "../systemd/outpost.yaml"
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("packaged config: %v", err)
	}
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatalf("the packaged config does not pass:\n%v", err)
	}
	for i, l := range cfg.Broker.Listeners {
		if !strings.HasPrefix(l.Address, "127.0.0.1:") && !strings.HasPrefix(l.Address, "[::1]:") {
			t.Errorf("packaged broker.listeners[%d] = %q: a fresh install must listen on loopback only", i, l.Address)
		}
	}
	if cfg.DataDir != "/var/lib/outpost" {
		t.Errorf("packaged data_dir = %q, want the unit's StateDirectory /var/lib/outpost", cfg.DataDir)
	}
}

func TestValidateCollectsAll(t *testing.T) {
	cfg := Config{}
	cfg.Log.Level = "loud"
	cfg.Uplink.ProtocolVersion = 3
	cfg.Uplink.Queue.WhenFull = "drop_newest"
	err := cfg.Validate()
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("Validate = %v, want 3 errors", err)
	}
	want := `log.level: "loud": must be debug, info, warn or error`
	if es[0].Error() != want {
		t.Fatalf("first error %q, want %q", es[0], want)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"1GiB", 1 << 30, ""},
		{"512MiB", 512 << 20, ""},
		{"1.5GB", 1_500_000_000, ""},
		{"100 kB", 100_000, ""},
		{"1048576", 1 << 20, ""},
		{"2tib", 2 << 40, ""},
		{"1G", 0, `size "1G": unknown unit "G"; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB`},
		{"GiB", 0, `size "GiB": no number; write e.g. 1GiB or 512MiB`},
		{"0.5B", 0, `size "0.5B": not a whole number of bytes`},
		{"1.2.3MB", 0, `size "1.2.3MB": bad number "1.2.3"`},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseSize(%q) err = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"listners", "listeners", 1}, {"adress", "address", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"qos", "qos", 0}} {
		if got := levenshtein(tc.a, tc.b); got != tc.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

func TestEnvNamesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, l := range leaves() {
		if l.env == "" {
			continue
		}
		if other, dup := seen[l.env]; dup {
			t.Errorf("%s and %s both map to %s", l.path, other, l.env)
		}
		seen[l.env] = l.path
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v, want not-exist naming the file", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "outpost.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
