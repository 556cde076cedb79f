package configs

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/outpost-iot/outpost/adapters"
)

// Validate checks everything configs knows about cfg and returns every
// problem as Errors, each naming the key, the value and why it is wrong:
// addresses are host:port, QoS is 0, 1 or 2, enumerations hold one of their
// values, sizes and URLs parse, sensor names are unique. It then calls each
// component's own Validate and adds what that finds.
//
// Zero values are valid everywhere: they mean the documented default.
// Validate does not look at the file system or the hardware (a field config
// is often checked on a laptop); ValidateOn adds the hardware check.
func (cfg Config) Validate() error { return cfg.ValidateOn(nil) }

// ValidateOn is Validate that also checks that every sensor on real hardware
// (not simulate:) has its bus on hw, the machine's buses
// (adapters.NewHostBuses()); hw nil skips that check. outpost run and
// outpost config check use it, so a typo in bus.name is named at once
// rather than showing as a sensor that retries for ever.
func (cfg Config) ValidateOn(hw adapters.BusLister) error {
	var es Errors
	cfg.validateTop(&es)
	cfg.validateBroker(&es)
	cfg.validateMQTTSN(&es)
	cfg.validateSensors(&es)
	cfg.validateSensorDrivers(&es, hw)
	cfg.validateUplink(&es)
	cfg.validatePorts(&es)
	cfg.validateComponents(&es)
	return es.err()
}

func (cfg Config) validateTop(es *Errors) {
	if strings.ContainsAny(cfg.Site, "+#\x00") || !utf8.ValidString(cfg.Site) {
		es.add("site", cfg.Site, "must not contain +, # or NUL: it is used in topic names")
	}
	switch strings.ToLower(cfg.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		es.add("log.level", cfg.Log.Level, "must be debug, info, warn or error")
	}
	switch cfg.Log.Format {
	case "", "text", "json":
	default:
		es.add("log.format", cfg.Log.Format, "must be text or json")
	}
	cfg.validateHTTP(es)
}

// validateHTTP: a console off loopback needs a login (users and a
// password file); TLS needs both files.
func (cfg Config) validateHTTP(es *Errors) {
	h := cfg.HTTP
	if h.Listen == "off" {
		return
	}
	if h.Listen != "" {
		if err := checkHostPort(h.Listen); err != nil {
			es.add("http.listen", h.Listen, `%v (or "off" to disable the console)`, err)
			return
		}
	}
	for i, u := range h.Users {
		if u == "" || strings.ContainsAny(u, ":\x00") || !utf8.ValidString(u) {
			es.add(fmt.Sprintf("http.users[%d]", i), u, "not a valid username (non-empty, no ':')")
		}
	}
	loopback := h.Listen == "" || isLoopbackAddr(h.Listen)
	if !loopback && len(h.Users) == 0 {
		es.add("http.users", nil, "required when http.listen (%s) is not loopback: the console then asks for a login", h.Listen)
	}
	if (!loopback || len(h.Users) > 0) && h.PasswordFile == "" && cfg.Broker.PasswordFile == "" {
		es.add("http.password_file", nil, "required for the console login (or set broker.password_file)")
	}
	switch {
	case h.TLS.CertFile == "" && h.TLS.KeyFile != "":
		es.add("http.tls.cert_file", nil, "required with http.tls.key_file")
	case h.TLS.CertFile != "" && h.TLS.KeyFile == "":
		es.add("http.tls.key_file", nil, "required with http.tls.cert_file")
	}
}

// isLoopbackAddr reports whether host:port is on a loopback address or
// "localhost".
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (cfg Config) validateBroker(es *Errors) {
	b := cfg.Broker
	seen := map[string]int{}
	identity := false
	for i, l := range b.Listeners {
		key := fmt.Sprintf("broker.listeners[%d]", i)
		if l.Address == "" {
			es.add(key+".address", nil, "required (host:port, e.g. \"127.0.0.1:1883\" or \":8883\")")
		} else if err := checkHostPort(l.Address); err != nil {
			es.add(key+".address", l.Address, "%v", err)
		} else if j, dup := seen[l.Address]; dup && !strings.HasSuffix(l.Address, ":0") {
			es.add(key+".address", l.Address, "same address as broker.listeners[%d]", j)
		} else {
			seen[l.Address] = i
		}
		if l.ConnectRate < 0 {
			es.add(key+".connect_rate", l.ConnectRate, "must not be negative (0 = unlimited)")
		}
		if t := l.TLS; t != nil {
			if t.CertFile == "" {
				es.add(key+".tls.cert_file", nil, "required for a TLS listener")
			}
			if t.KeyFile == "" {
				es.add(key+".tls.key_file", nil, "required for a TLS listener")
			}
			if t.RequireClientCert && t.ClientCAFile == "" {
				es.add(key+".tls.client_ca_file", nil, "required when require_client_cert is true")
			}
			if t.UseIdentityAsUsername && !t.RequireClientCert {
				es.add(key+".tls.use_identity_as_username", true, "needs require_client_cert: true (as mosquitto's require_certificate)")
			}
			identity = identity || t.UseIdentityAsUsername
		}
	}
	if b.AllowAnonymous != nil && !*b.AllowAnonymous && b.PasswordFile == "" && !identity {
		es.add("broker.allow_anonymous", false, "no client could connect: set broker.password_file or a listener's tls.use_identity_as_username")
	}
	inRange(es, "broker.max_inflight", b.MaxInflight, 0, 65535, "the v5 Receive Maximum is 2 bytes")
	inRange(es, "broker.max_queued", b.MaxQueued, 0, -1, "")
	inRange(es, "broker.max_keepalive", b.MaxKeepalive, 0, 65535, "keepalive is 2 bytes of seconds")
	inRange(es, "broker.max_packet_size", b.MaxPacketSize, 0, 268435455, "the largest MQTT Remaining Length")
	inRange(es, "broker.max_connections", b.MaxConnections, 0, -1, "")
	nonNegative(es, "broker.connect_timeout", b.ConnectTimeout)
}

func (cfg Config) validateMQTTSN(es *Errors) {
	m := cfg.MQTTSN
	if m.Listen != "" {
		if err := checkHostPort(m.Listen); err != nil {
			es.add("mqttsn.listen", m.Listen, "%v", err)
		}
	}
	if m.Listen6 != "" {
		if err := checkHostPort(m.Listen6); err != nil {
			es.add("mqttsn.listen6", m.Listen6, "%v", err)
		}
	}
	if m.Broadcast != "" {
		if err := checkHostPort(m.Broadcast); err != nil {
			es.add("mqttsn.broadcast", m.Broadcast, "%v", err)
		}
	}
	// MQTT-SN 1.2 section 5.3.11: topic ids 0x0000 and 0xFFFF are reserved.
	for _, id := range slices.Sorted(maps.Keys(m.PredefinedTopics)) {
		name := m.PredefinedTopics[id]
		key := fmt.Sprintf("mqttsn.predefined_topics.%d", id)
		switch {
		case id == 0 || id == 0xFFFF:
			es.add(key, name, "topic id %d is reserved (MQTT-SN 1.2 section 5.3.11)", id)
		case checkTopicName(name) != nil:
			es.add(key, name, "%v", checkTopicName(name))
		}
	}
}

func (cfg Config) validateSensors(es *Errors) {
	names := map[string]int{}
	for i, s := range cfg.Sensors {
		key := fmt.Sprintf("sensors[%d]", i)
		switch {
		case s.Name == "":
			es.add(key+".name", nil, "required")
		case !validName(s.Name):
			es.add(key+".name", s.Name, "use letters, digits, '-', '_' and '.' only: it is a topic level and a command-line argument")
		default:
			if j, dup := names[s.Name]; dup {
				es.add(key+".name", s.Name, "duplicate sensor name (also sensors[%d])", j)
			} else {
				names[s.Name] = i
			}
		}
		if s.Driver == "" {
			es.add(key+".driver", nil, "required (e.g. bme280, ds18b20, ina219, ads1115, mcp9808, gpio-counter)")
		}
		nonNegative(es, key+".interval", s.Interval)
		if s.Topic != "" {
			if err := checkTopicName(s.Topic); err != nil {
				es.add(key+".topic", s.Topic, "%v", err)
			}
		}
		checkQoS(es, key+".qos", s.QoS)
	}
}

// validateSensorDrivers adds what adapters.ValidateOn finds (unknown
// drivers, a bus the driver cannot use or that does not exist on this
// machine, addresses out of the chip's range, two sensors on one bus
// address, bad options and simulate: keys) to the
// checks above, leaving out what they already reported for that sensor.
// Each sensor is validated alone first, so an error is tied to its index
// even when two sensors share a name; then the whole list, for what only
// the list shows (one bus address used twice).
func (cfg Config) validateSensorDrivers(es *Errors, hw adapters.BusLister) {
	reported := map[string]bool{}
	for _, e := range *es {
		reported[e.Key] = true
	}
	add := func(i int, msg string) {
		key := fmt.Sprintf("sensors[%d]", i)
		// "qos 3: must be 0, 1 or 2" repeats sensors[i].qos reported above.
		word, _, _ := strings.Cut(msg, " ")
		if !reported[key+"."+word] {
			*es = append(*es, &FieldError{Key: key, Reason: msg})
		}
	}
	single := map[string]bool{}
	for i, s := range cfg.Sensors {
		for _, e := range joined(adapters.ValidateOn([]adapters.SensorConfig{s}, hw)) {
			single[e.Error()] = true
			add(i, stripSensorLabel(e.Error(), s.Name, 0))
		}
	}
	for _, e := range joined(adapters.Validate(cfg.Sensors)) {
		if single[e.Error()] {
			continue
		}
		i, msg := cfg.lastSensorNamed(e.Error())
		if i < 0 {
			*es = append(*es, &FieldError{Key: "sensors", Reason: msg})
			continue
		}
		add(i, msg)
	}
}

// joined splits an errors.Join error into its parts.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// stripSensorLabel removes the `sensor "name": ` or `sensors[i]: ` label
// adapters puts in front of its messages.
func stripSensorLabel(msg, name string, i int) string {
	if rest, ok := strings.CutPrefix(msg, fmt.Sprintf("sensor %q: ", name)); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(msg, fmt.Sprintf("sensors[%d]: ", i)); ok {
		return rest
	}
	return msg
}

// lastSensorNamed finds the sensor a list-wide adapters error names: the
// last one of that name (the second of two is the one in conflict).
func (cfg Config) lastSensorNamed(msg string) (int, string) {
	for i := len(cfg.Sensors) - 1; i >= 0; i-- {
		s := cfg.Sensors[i]
		if rest := stripSensorLabel(msg, s.Name, i); rest != msg {
			return i, rest
		}
	}
	return -1, msg
}

func (cfg Config) validateUplink(es *Errors) {
	u := cfg.Uplink
	tlsScheme := false
	switch {
	case u.URL == "" && u.Enabled:
		es.add("uplink.url", nil, `required when uplink.enabled is true (e.g. "mqtts://cloud.example.com:8883")`)
	case u.URL != "":
		p, err := url.Parse(u.URL)
		switch {
		case err != nil:
			es.add("uplink.url", u.URL, "not a URL")
		case p.Scheme != "mqtt" && p.Scheme != "mqtts" && p.Scheme != "ws" && p.Scheme != "wss":
			es.add("uplink.url", u.URL, "scheme must be mqtt, mqtts, ws or wss")
		case p.Hostname() == "":
			es.add("uplink.url", u.URL, "no host")
		case p.Port() != "" && checkPort(p.Port()) != nil:
			es.add("uplink.url", u.URL, "%v", checkPort(p.Port()))
		case p.User != nil:
			es.add("uplink.url", u.URL, "put the user name in uplink.username and the password in uplink.password_file, not in the URL")
		default:
			tlsScheme = p.Scheme == "mqtts" || p.Scheme == "wss"
			if !tlsScheme && (u.TLS.CAFile != "" || u.TLS.CertFile != "" || u.TLS.KeyFile != "") {
				es.add("uplink.tls", nil, "TLS files are set but uplink.url %q is not mqtts:// or wss://", u.URL)
			}
		}
	}
	switch u.ProtocolVersion {
	case 0, 4, 5:
	default:
		es.add("uplink.protocol_version", u.ProtocolVersion, "must be 4 (MQTT 3.1.1) or 5")
	}
	if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
		es.add("uplink.tls", nil, "cert_file and key_file go together (a client certificate needs its key)")
	}
	nonNegative(es, "uplink.keepalive", u.KeepAlive)
	if u.KeepAlive > 65535*time.Second {
		es.add("uplink.keepalive", u.KeepAlive, "must be at most 18h12m15s (2 bytes of seconds, MQTT 3.1.2.10)")
	}
	inRange(es, "uplink.max_inflight", u.MaxInflight, 0, 65535, "")
	for i, r := range u.Forward {
		key := fmt.Sprintf("uplink.forward[%d]", i)
		if r.Filter == "" {
			es.add(key+".filter", nil, "required")
		} else if err := checkTopicFilter(r.Filter); err != nil {
			es.add(key+".filter", r.Filter, "%v", err)
		}
		checkQoS(es, key+".qos", r.QoS)
		checkPrefix(es, key+".remote_prefix", r.RemotePrefix)
	}
	for i, r := range u.Downlink {
		key := fmt.Sprintf("uplink.downlink[%d]", i)
		if r.Filter == "" {
			es.add(key+".filter", nil, "required")
		} else if err := checkTopicFilter(r.Filter); err != nil {
			es.add(key+".filter", r.Filter, "%v", err)
		}
		checkQoS(es, key+".qos", r.QoS)
		checkPrefix(es, key+".strip_prefix", r.StripPrefix)
		checkPrefix(es, key+".local_prefix", r.LocalPrefix)
	}
	if q := u.Queue.MaxBytes; q != "" {
		if n, err := parseSize(q); err != nil {
			es.add("uplink.queue.max_bytes", q, "%v", err)
		} else if n <= 0 {
			es.add("uplink.queue.max_bytes", q, "must be more than 0")
		}
	}
	nonNegative(es, "uplink.queue.max_age", u.Queue.MaxAge)
	switch u.Queue.WhenFull {
	case "", "drop_oldest", "reject":
	default:
		es.add("uplink.queue.when_full", u.Queue.WhenFull, "must be drop_oldest or reject")
	}
	nonNegative(es, "uplink.reconnect.min", u.Reconnect.Min)
	nonNegative(es, "uplink.reconnect.max", u.Reconnect.Max)
	if u.Reconnect.Min > 0 && u.Reconnect.Max > 0 && u.Reconnect.Min > u.Reconnect.Max {
		es.add("uplink.reconnect.min", u.Reconnect.Min, "more than uplink.reconnect.max (%v)", u.Reconnect.Max)
	}
	if u.StatusTopic != "" {
		if err := checkTopicName(u.StatusTopic); err != nil {
			es.add("uplink.status_topic", u.StatusTopic, "%v", err)
		}
	}
}

// validatePorts reports two TCP listeners on the same port of the same
// host (or one on every interface), which would fail at start with "address
// already in use".
func (cfg Config) validatePorts(es *Errors) {
	type tcp struct{ key, host, port string }
	var socks []tcp
	for i, l := range cfg.Broker.Listeners {
		if h, p, err := net.SplitHostPort(l.Address); err == nil && p != "0" {
			socks = append(socks, tcp{fmt.Sprintf("broker.listeners[%d].address", i), h, p})
		}
	}
	if h, p, err := net.SplitHostPort(cfg.HTTP.Listen); err == nil && p != "0" {
		for _, s := range socks {
			if s.port == p && (s.host == h || wildcardHost(s.host) || wildcardHost(h)) {
				es.add("http.listen", cfg.HTTP.Listen, "port %s is also used by %s", p, s.key)
			}
		}
	}
}

// validateComponents runs the Validate method of every component Config
// that has one. A component's message already names its key; it is kept
// unless configs reported that key itself.
func (cfg Config) validateComponents(es *Errors) {
	reported := map[string]bool{}
	for _, e := range *es {
		reported[e.Key] = true
	}
	run := func(section string, c any) {
		v, ok := c.(interface{ Validate() error })
		if !ok {
			return
		}
		err := v.Validate()
		if err == nil {
			return
		}
		for _, e := range joined(err) {
			key, reason := splitKey(section, e.Error())
			if reported[key] || key == section && reportedUnder(section, reported) {
				// Already said, in configs' words; a message that names no
				// key would most likely repeat one of configs' about the
				// same entry.
				continue
			}
			reported[key] = true
			*es = append(*es, &FieldError{Key: key, Reason: reason})
		}
	}
	run("broker", &cfg.Broker)
	for i := range cfg.Broker.Listeners {
		run(fmt.Sprintf("broker.listeners[%d]", i), &cfg.Broker.Listeners[i])
	}
	run("mqttsn", &cfg.MQTTSN)
	for i := range cfg.Sensors {
		run(fmt.Sprintf("sensors[%d]", i), &cfg.Sensors[i])
	}
	run("uplink", &cfg.Uplink)
}

func reportedUnder(section string, reported map[string]bool) bool {
	for k := range reported {
		if strings.HasPrefix(k, section+".") || strings.HasPrefix(k, section+"[") {
			return true
		}
	}
	return false
}

// splitKey takes the key a component put at the start of its message
// ("broker.max_inflight: -1 is out of range") apart from the reason.
func splitKey(section, msg string) (key, reason string) {
	if !strings.HasPrefix(msg, section) {
		return section, msg
	}
	end := strings.IndexAny(msg, ": ")
	if end < 0 {
		return section, msg
	}
	return msg[:end], strings.TrimLeft(msg[end:], ": ")
}

func inRange(es *Errors, key string, v, lo, hi int, why string) {
	if v >= lo && (hi < 0 || v <= hi) {
		return
	}
	if hi < 0 {
		es.add(key, v, "must not be negative (0 = default)")
		return
	}
	if why != "" {
		why = ": " + why
	}
	es.add(key, v, "must be between %d and %d (0 = default)%s", lo, hi, why)
}

func nonNegative(es *Errors, key string, d time.Duration) {
	if d < 0 {
		es.add(key, d, "must not be negative")
	}
}

func checkQoS(es *Errors, key string, q byte) {
	if q > 2 {
		es.add(key, q, "QoS must be 0, 1 or 2")
	}
}

func checkPrefix(es *Errors, key, p string) {
	if strings.ContainsAny(p, "+#\x00") {
		es.add(key, p, "a topic prefix must not contain +, # or NUL")
	}
}

// checkHostPort accepts host:port with a numeric port; the host may be
// empty (every interface), an IP address or a name.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%s; want host:port, e.g. \"127.0.0.1:1883\" or \":1883\"", ae.Err)
		}
		return err
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("bad host %q", host)
	}
	return checkPort(port)
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func wildcardHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != ""
}

// checkTopicName applies the MQTT topic name rules: not empty
// [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-2], no NUL [MQTT-4.7.3-2], UTF-8
// [MQTT-1.5.3-1], at most 65535 bytes [MQTT-4.7.3-3].
func checkTopicName(s string) error {
	switch {
	case s == "":
		return errors.New("topic name must not be empty")
	case strings.ContainsAny(s, "+#"):
		return errors.New("topic name must not contain the wildcards + or #")
	}
	return checkTopicChars(s)
}

// checkTopicFilter applies the topic filter rules: '#' only as the whole
// last level [MQTT-4.7.1-2], '+' only as a whole level [MQTT-4.7.1-3].
func checkTopicFilter(s string) error {
	levels := strings.Split(s, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return errors.New("'#' must be the whole last level of a filter, as in sensors/#")
		}
		if strings.Contains(l, "+") && l != "+" {
			return errors.New("'+' must be a whole level of a filter, as in sensors/+/temperature")
		}
	}
	return checkTopicChars(s)
}

func checkTopicChars(s string) error {
	switch {
	case strings.ContainsRune(s, 0):
		return errors.New("topic must not contain NUL")
	case !utf8.ValidString(s):
		return errors.New("topic must be UTF-8")
	case len(s) > 65535:
		return errors.New("topic is longer than 65535 bytes")
	}
	return nil
}
