package hub

import (
	"fmt"
	"path/filepath"
)

// summary prints, once, where everything listens and what it publishes, so
// a field engineer sees at a glance what the hub is doing.
func (h *Hub) summary() {
	h.line("outpost %s running (data in %s)", h.opts.Version, filepath.Join(h.cfg.DataDir, "db"))
	for _, a := range h.BrokerAddrs() {
		h.line("MQTT broker listening on %s", a)
	}
	if h.gateway != nil {
		for _, a := range h.gateway.Addrs() {
			h.line("MQTT-SN gateway (%s) listening on %s", a.Network(), a)
		}
	} else {
		h.line("MQTT-SN gateway off (mqttsn.enabled is false)")
	}
	if a := h.sensors.Load(); a == nil || len(a.List()) == 0 {
		h.line("no sensors configured")
	} else {
		for _, s := range a.List() {
			kind := "hardware"
			if s.Simulated {
				kind = "simulated"
			}
			h.line("sensor %s (%s, %s) publishing to %s every %s", s.Name, s.Driver, kind, s.Topic, s.Interval)
		}
	}
	for _, r := range h.cfg.Uplink.Forward {
		h.line("forwarding %s to the cloud as %s%s at QoS %d (durable queue)", r.Filter, r.RemotePrefix, r.Filter, r.QoS)
	}
	switch {
	case h.cfg.Uplink.Enabled:
		h.line("uplink to %s as client %s", h.cfg.Uplink.URL, h.uplink.ClientID())
	case len(h.cfg.Uplink.Forward) > 0:
		h.line("uplink off: forwarded messages wait in the queue")
	default:
		h.line("uplink off (no cloud configured)")
	}
	if h.http != nil {
		h.line("web console listening on %s (%s)", h.http.addr, h.http.url())
	}
}

func (h *Hub) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if h.opts.Out != nil {
		fmt.Fprintln(h.opts.Out, s)
		return
	}
	h.log.Info(s)
}
