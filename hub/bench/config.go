package bench

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Scenario names.
const (
	FanIn       = "fan-in"      // Publishers × Messages → Subscribers (1) on bench/fanin/#
	FanOut      = "fan-out"     // 1 publisher × Messages → Subscribers (50) on bench/fanout
	Connections = "connections" // Messages connections, each subscribed to its own topic
	Retained    = "retained"    // Messages retained messages, then a new subscriber gets them all
	Backlog     = "backlog"     // Messages queued for an offline persistent session, then drained
	MQTTSN      = "mqttsn"      // Publishers MQTT-SN nodes over UDP → 1 MQTT subscriber
	Durable     = "durable"     // QoS 1 publishes matched by an uplink forward rule, no subscriber
)

// Scenarios lists every scenario name.
var Scenarios = []string{FanIn, FanOut, Connections, Retained, Backlog, MQTTSN, Durable}

// Config describes one run. The zero value of a count means the
// scenario's default (see Defaults).
type Config struct {
	Scenario string
	Case     string // label in the table; "" = derived from the scenario and QoS
	Broker   string // label for the broker under test ("outpost", "mosquitto")
	Addr     string // MQTT broker host:port; "" = 127.0.0.1:1883
	SNAddr   string // MQTT-SN gateway UDP host:port; "" = 127.0.0.1:1884
	// BrokerPID, if set, is the broker process: its CPU (the sum of its
	// threads' /proc/PID/task/TID/schedstat, in ns; utime+stime from
	// /proc/PID/stat if a thread exited) is measured over the run's
	// measured phase and its peak RSS (VmHWM) read at the end.
	BrokerPID int

	Publishers  int     // publishing clients
	Subscribers int     // subscribing clients
	Messages    int     // per publisher; connections: the number of connections
	QoS         int     // 0, 1 or 2 (durable: always 1)
	Window      int     // unacknowledged QoS 1/2 publishes per publisher; 0 = 20
	PayloadSize int     // bytes, at least 20 (the stamp); 0 = 64
	Rate        float64 // messages per second over all publishers; 0 = as fast as the window allows
	Protocol    int     // MQTT protocol level: 4 (3.1.1, default) or 5
	// KeepAlive is the MQTT keep alive every client asks for, in whole
	// seconds; 0 = none. The CLI's default is 30s, Paho's (the load tool
	// behind issue 9's reference figures); a broker may treat clients
	// without one differently (outpost turns TCP keep-alive probes on).
	KeepAlive time.Duration
	// Idle ends the wait for deliveries after this long without progress
	// once the publishers are done; what has not arrived is lost. 0 = 5s.
	Idle time.Duration
	// SysWait (durable) is how long to wait for the hub's
	// $SYS/outpost/uplink/queue/depth to reach the published count; 0 = 15s.
	SysWait time.Duration
}

// Defaults returns c with every zero count replaced by the scenario's
// default: the sizes of the reference table in issue 9.
func (c Config) Defaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	switch c.Scenario {
	case FanIn:
		def(&c.Publishers, 4)
		def(&c.Subscribers, 1)
		def(&c.Messages, 20000)
	case FanOut:
		def(&c.Publishers, 1)
		def(&c.Subscribers, 50)
		def(&c.Messages, 2000)
	case Connections:
		def(&c.Messages, 2000)
		c.QoS = max(c.QoS, 1)
	case Retained:
		def(&c.Messages, 10000)
		c.QoS = max(c.QoS, 1)
	case Backlog:
		def(&c.Messages, 10000)
		c.QoS = max(c.QoS, 1)
	case MQTTSN:
		def(&c.Publishers, 4)
		def(&c.Messages, 5000)
	case Durable:
		def(&c.Publishers, 4)
		def(&c.Messages, 5000)
		c.QoS = 1
	}
	switch c.Scenario {
	case Connections, Retained, Backlog:
		c.Publishers, c.Subscribers = 1, 1
	case MQTTSN:
		c.Subscribers = 1
	case Durable:
		c.Subscribers = 0
	}
	def(&c.Window, 20)
	def(&c.PayloadSize, 64)
	def(&c.Protocol, 4)
	if c.Addr == "" {
		c.Addr = "127.0.0.1:1883"
	}
	if c.SNAddr == "" {
		c.SNAddr = "127.0.0.1:1884"
	}
	if c.Idle == 0 {
		c.Idle = 5 * time.Second
	}
	if c.SysWait == 0 {
		c.SysWait = 15 * time.Second
	}
	if c.Case == "" {
		c.Case = c.Scenario
		if c.Scenario != Connections {
			c.Case += fmt.Sprintf(" qos%d", c.QoS)
		}
		if c.Window != 20 && c.QoS > 0 {
			c.Case += fmt.Sprintf(" w%d", c.Window)
		}
	}
	return c
}

// Validate names the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if !slices.Contains(Scenarios, c.Scenario) {
		errs = append(errs, fmt.Errorf("scenario %q: want one of %v", c.Scenario, Scenarios))
	}
	if c.QoS < 0 || c.QoS > 2 {
		errs = append(errs, fmt.Errorf("qos %d: want 0, 1 or 2", c.QoS))
	}
	if c.Publishers < 0 || c.Subscribers < 0 || c.Messages < 0 {
		errs = append(errs, errors.New("publishers, subscribers and messages must not be negative"))
	}
	if c.Window < 0 || c.Window > 65000 {
		errs = append(errs, fmt.Errorf("window %d: want 1..65000", c.Window))
	}
	if c.PayloadSize != 0 && c.PayloadSize < stampLen {
		errs = append(errs, fmt.Errorf("payload size %d: want at least %d (the bench stamp)", c.PayloadSize, stampLen))
	}
	if c.Protocol != 0 && c.Protocol != 4 && c.Protocol != 5 {
		errs = append(errs, fmt.Errorf("protocol %d: want 4 (MQTT 3.1.1) or 5", c.Protocol))
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second || c.KeepAlive%time.Second != 0 {
		errs = append(errs, fmt.Errorf("keepalive %v: want whole seconds, 0 (none) to 65535s", c.KeepAlive))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %v: must not be negative", c.Rate))
	}
	return errors.Join(errs...)
}
