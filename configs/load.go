package configs

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/outpost-iot/outpost/adapters"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable Load reads:
// OUTPOST_<SECTION>_<KEY>, e.g. OUTPOST_BROKER_MAX_INFLIGHT.
const EnvPrefix = "OUTPOST_"

// keyDelim separates viper key segments. Not ".", so that keys inside the
// free-form maps (sensors[].options) may contain dots.
const keyDelim = "::"

// Load reads the configuration: the YAML file at path (the embedded
// Default when path is ""), then OUTPOST_<SECTION>_<KEY> environment
// variables, then the flags in flags that were set on the command line,
// each overriding the one before. It reports every problem at once as
// Errors: unknown keys (with the nearest valid key), values of the wrong
// type, and everything Validate finds, each naming the file and line, the
// variable or the flag it came from.
//
// A flag is a config key when its name is the key with '-' or '.' between
// words: --data-dir, --log-level, --broker-max-inflight, --http-listen
// (AddFlags registers the common ones). --verbose/-v sets log.level=debug
// unless --log-level is given too. Other flags are ignored. flags may be
// nil.
//
// Lists (broker.listeners, sensors, uplink.forward, ...) and maps can only
// be set in the file. An OUTPOST_* variable that is not a key is an error,
// so a misspelt override is never silently ignored.
//
// Load returns what it could decode even when it returns an error; use the
// Config only when the error is nil.
func Load(path string, flags *pflag.FlagSet) (Config, error) { return LoadOn(path, flags, nil) }

// LoadOn is Load with ValidateOn(hw): the sensors' buses must exist on hw.
func LoadOn(path string, flags *pflag.FlagSet, hw adapters.BusLister) (Config, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	v.SetConfigType("yaml")
	src := sources{file: path, lines: map[string]int{}, env: map[string]string{}, flags: map[string]string{}}

	// With no file the environment and flags are decoded over Default()
	// itself (not a YAML copy of it), so the default sensors' values keep
	// their Go types.
	var cfg Config
	if path == "" {
		cfg = Default()
	} else {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		if err := recordLines(data, src.lines); err != nil {
			return Config{}, fmt.Errorf("parse config %s: %w", path, err)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("parse config %s: %w", path, err)
		}
	}

	var errs Errors
	all := leaves()
	byEnv := make(map[string]leaf, len(all))
	for _, l := range all {
		if l.env == "" {
			continue
		}
		byEnv[l.env] = l
		if err := v.BindEnv(viperKey(l.path), l.env); err != nil {
			return Config{}, fmt.Errorf("bind %s: %w", l.env, err)
		}
		if s, ok := os.LookupEnv(l.env); ok && s != "" {
			src.env[l.path] = "$" + l.env
		}
	}
	checkEnviron(os.Environ(), all, byEnv, &errs)
	if err := bindFlags(v, flags, byEnv, src.flags); err != nil {
		return Config{}, err
	}

	c := checker{errs: &errs, all: all}
	clean := c.section("", reflect.TypeFor[Config](), v.AllSettings())

	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           &cfg,
		TagName:          "mapstructure",
		WeaklyTypedInput: true, // map keys such as predefined topic ids arrive as strings
	})
	if err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}
	if err := dec.Decode(clean); err != nil {
		// The checker converts every value it keeps, so this means a type
		// it does not know; say so rather than guess a key.
		errs.add("", nil, "decode: %v", err)
	}

	// A key whose value was refused decoded as its zero value; do not
	// report that zero value again, nor anything inside it.
	bad := make(map[string]bool, len(errs))
	for _, e := range errs {
		bad[e.Key] = true
	}
	if verr, ok := cfg.ValidateOn(hw).(Errors); ok {
		for _, e := range verr {
			if !underBad(e.Key, bad) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) == 0 {
		return cfg, nil
	}
	for _, e := range errs {
		if e.Source == "" {
			e.Source = src.lookup(e.Key)
		}
	}
	sortByLine(errs, path)
	return cfg, errs
}

func underBad(key string, bad map[string]bool) bool {
	for k := key; k != ""; k = parentKey(k) {
		if bad[k] {
			return true
		}
	}
	return false
}

// AddFlags registers the command-line flags Load understands on fs: the
// ones a field engineer most often overrides for one run.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("data-dir", "", "directory for the queue and broker state (data_dir)")
	fs.String("site", "", "site name used in default topics and the uplink client id (site)")
	fs.String("log-level", "", "debug, info, warn or error (log.level)")
	fs.String("log-format", "", "text or json (log.format)")
	fs.BoolP("verbose", "v", false, "log at debug level, like mosquitto -v")
	fs.String("http-listen", "", `web console, /metrics and /healthz address, or "off" (http.listen)`)
}

// viperKey turns a dotted key into viper's path.
func viperKey(path string) string { return strings.ReplaceAll(path, ".", keyDelim) }

// bindFlags binds every flag set on the command line that names a key.
func bindFlags(v *viper.Viper, flags *pflag.FlagSet, byEnv map[string]leaf, srcs map[string]string) error {
	if flags == nil {
		return nil
	}
	var firstErr error
	levelSet := false
	flags.Visit(func(f *pflag.Flag) {
		name := EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(f.Name))
		l, ok := byEnv[name]
		if !ok {
			return
		}
		if l.path == "log.level" {
			levelSet = true
		}
		if err := v.BindPFlag(viperKey(l.path), f); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("bind flag --%s: %w", f.Name, err)
		}
		srcs[l.path] = "--" + f.Name
	})
	if f := flags.Lookup("verbose"); f != nil && f.Changed && !levelSet && f.Value.String() == "true" {
		v.Set(viperKey("log.level"), "debug")
		srcs["log.level"] = "--verbose"
	}
	return firstErr
}

// checkEnviron reports OUTPOST_* variables that are not keys.
func checkEnviron(environ []string, all []leaf, byEnv map[string]leaf, errs *Errors) {
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) {
			if _, ok := byEnv[name]; !ok {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	for _, name := range names {
		e := &FieldError{Source: "$" + name}
		for _, l := range all {
			if l.env == "" && envName(l.path) == name {
				e.Key, e.Reason = l.path, "lists and maps cannot be set from the environment; set "+l.path+" in the config file"
				break
			}
		}
		if e.Reason == "" {
			e.Reason = "unknown variable" + suggestEnv(name, byEnv)
		}
		*errs = append(*errs, e)
	}
}

func suggestEnv(name string, byEnv map[string]leaf) string {
	best, bestD := "", math.MaxInt
	for _, env := range sortedKeys(byEnv) {
		if d := levenshtein(name, env); d < bestD {
			best, bestD = env, d
		}
	}
	if best != "" && bestD <= max(2, (len(name)-len(EnvPrefix))/4) {
		return "; did you mean " + best + "?"
	}
	return fmt.Sprintf(" (config keys are %s<SECTION>_<KEY>, e.g. OUTPOST_BROKER_MAX_INFLIGHT)", EnvPrefix)
}

// sources says where each key's value came from.
type sources struct {
	file  string
	lines map[string]int    // key -> line in the file
	env   map[string]string // key -> "$OUTPOST_..." when set
	flags map[string]string // key -> "--flag" when set
}

// lookup names where key (or, failing that, its nearest enclosing key) was
// set, in the order of precedence.
func (s sources) lookup(key string) string {
	for k := key; k != ""; k = parentKey(k) {
		if f, ok := s.flags[k]; ok {
			return f
		}
		if e, ok := s.env[k]; ok {
			return e
		}
		if n, ok := s.lines[k]; ok && s.file != "" {
			return s.file + ":" + strconv.Itoa(n)
		}
	}
	return s.file
}

func parentKey(k string) string {
	if strings.HasSuffix(k, "]") {
		if i := strings.LastIndexByte(k, '['); i >= 0 {
			return k[:i]
		}
	}
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[:i]
	}
	return ""
}

// recordLines parses data (so syntax errors and duplicate keys are reported
// by the YAML parser with its line) and records the line of every key.
func recordLines(data []byte, lines map[string]int) error {
	var probe map[string]any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := joinKey(path, strings.ToLower(n.Content[i].Value))
				lines[p] = n.Content[i].Line
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				lines[p] = c.Line
				walk(c, p)
			}
		case yaml.AliasNode:
			if n.Alias != nil {
				walk(n.Alias, path)
			}
		}
	}
	walk(&doc, "")
	return nil
}

// sortByLine orders errors from the file by line, then the others (the
// environment and flags) in the order found.
func sortByLine(errs Errors, file string) {
	line := func(e *FieldError) int {
		rest, ok := strings.CutPrefix(e.Source, file+":")
		if !ok || file == "" {
			return 1 << 30
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			return 1 << 30
		}
		return n
	}
	sort.SliceStable(errs, func(i, j int) bool { return line(errs[i]) < line(errs[j]) })
}
