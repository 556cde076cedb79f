package hub

import (
	"fmt"
	"path/filepath"
	"strings"
)

// summary prints, once, where everything listens and what it publishes, so
// a field engineer sees at a glance what the hub is doing.
func (h *Hub) summary() {
	var lines []string
	line := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	line("outpost %s running (data in %s)", h.opts.Version, filepath.Join(h.cfg.DataDir, "db"))
	for _, a := range h.BrokerAddrs() {
		line("MQTT broker listening on %s", a)
	}
	if h.gateway != nil {
		for _, a := range h.gateway.Addrs() {
			line("MQTT-SN gateway (%s) listening on %s", a.Network(), a)
		}
	} else {
		line("MQTT-SN gateway off (mqttsn.enabled is false)")
	}
	if a := h.sensors.Load(); a == nil || len(a.List()) == 0 {
		line("no sensors configured")
	} else {
		for _, s := range a.List() {
			kind := "hardware"
			if s.Simulated {
				kind = "simulated"
			}
			line("sensor %s (%s, %s) publishing to %s every %s", s.Name, s.Driver, kind, s.Topic, s.Interval)
		}
	}
	for _, r := range h.cfg.Uplink.Forward {
		line("forwarding %s to the cloud as %s%s at QoS %d (durable queue)", r.Filter, r.RemotePrefix, r.Filter, r.QoS)
	}
	switch {
	case h.cfg.Uplink.Enabled:
		line("uplink to %s as client %s", h.cfg.Uplink.URL, h.uplink.ClientID())
	case len(h.cfg.Uplink.Forward) > 0:
		line("uplink off: forwarded messages wait in the queue")
	default:
		line("uplink off (no cloud configured)")
	}
	if h.http != nil {
		line("web console listening on %s (%s)", h.http.addr, h.http.url())
	}
	if h.opts.Out != nil {
		// One write: whoever reads the output (a supervisor, a test
		// waiting for the first address) gets the whole summary at once.
		fmt.Fprint(h.opts.Out, strings.Join(lines, "\n")+"\n")
		return
	}
	for _, l := range lines {
		h.log.Info(l)
	}
}
