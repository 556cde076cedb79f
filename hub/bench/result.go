package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Result is one run, written as one JSON line.
type Result struct {
	Case        string  `json:"case"`
	Scenario    string  `json:"scenario"`
	Broker      string  `json:"broker,omitempty"`
	Round       int     `json:"round,omitempty"`
	Commit      string  `json:"commit,omitempty"`
	Protocol    int     `json:"protocol"`
	QoS         int     `json:"qos"`
	Window      int     `json:"window"`
	Publishers  int     `json:"publishers"`
	Subscribers int     `json:"subscribers"`
	PerPub      int     `json:"messages_per_publisher"`
	PayloadSize int     `json:"payload_size"`
	Rate        float64 `json:"rate,omitempty"` // requested, msgs/s; 0 = saturating

	// Unit is what the per-unit figures divide by: "msg" (a delivered
	// message), "delivery" (fan-out), "conn" or "ack" (durable).
	Unit  string `json:"unit"`
	Units uint64 `json:"units"`
	tally

	WallSeconds   float64 `json:"wall_s"`
	PerSecond     float64 `json:"per_s"`
	ToolCPUms     float64 `json:"tool_cpu_ms"`
	ToolUSPer     float64 `json:"tool_us_per_unit"`
	BrokerCPUms   float64 `json:"broker_cpu_ms,omitempty"`
	BrokerUSPer   float64 `json:"broker_us_per_unit,omitempty"`
	BrokerPeakKiB int64   `json:"broker_peak_rss_kib,omitempty"`
	BrokerRSSKiB  int64   `json:"broker_rss_kib,omitempty"`
	// BrokerHeldKiB (connections): the broker's RSS with every connection
	// open, before the liveness round and the disconnects that the peak
	// (read at the end of the run) also covers.
	BrokerHeldKiB int64 `json:"broker_held_rss_kib,omitempty"`
	// BrokerStartKiB (connections): the broker's RSS before the first
	// connection, so (held - start) / connections is what one costs.
	BrokerStartKiB int64 `json:"broker_start_rss_kib,omitempty"`

	LatP50us float64 `json:"lat_p50_us,omitempty"`
	LatP90us float64 `json:"lat_p90_us,omitempty"`
	LatP99us float64 `json:"lat_p99_us,omitempty"`
	LatMaxus float64 `json:"lat_max_us,omitempty"`
	AckP50us float64 `json:"ack_p50_us,omitempty"`
	AckP99us float64 `json:"ack_p99_us,omitempty"`

	Rejected uint64 `json:"rejected,omitempty"` // MQTT-SN PUBACK with a refusal code
	// Queued (durable) is $SYS/outpost/uplink/queue/depth after the run;
	// -1 when the hub published no queue depth (no forwarding tap).
	Queued *int64 `json:"queued,omitempty"`
	Notes  string `json:"notes,omitempty"`
	Error  string `json:"error,omitempty"`
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// fill sets the derived figures from a measured phase.
func (r *Result) fill(p phase, units uint64) {
	r.Units = units
	r.WallSeconds = p.Wall.Seconds()
	r.ToolCPUms = float64(p.Self) / float64(time.Millisecond)
	if units > 0 {
		r.ToolUSPer = us(p.Self) / float64(units)
		r.PerSecond = float64(units) / p.Wall.Seconds()
	}
	if p.Broker > 0 {
		r.BrokerCPUms = float64(p.Broker) / float64(time.Millisecond)
		if units > 0 {
			r.BrokerUSPer = us(p.Broker) / float64(units)
		}
	}
}

func (r *Result) latency(h *hist) {
	if h.n == 0 {
		return
	}
	r.LatP50us = us(h.quantile(0.50))
	r.LatP90us = us(h.quantile(0.90))
	r.LatP99us = us(h.quantile(0.99))
	r.LatMaxus = us(time.Duration(h.max))
}

func (r *Result) acks(h *hist) {
	if h.n == 0 {
		return
	}
	r.AckP50us = us(h.quantile(0.50))
	r.AckP99us = us(h.quantile(0.99))
}

// WriteJSON writes r as one line.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteText writes r for a person: one block of aligned lines.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "case        %s (%s, MQTT level %d, %d B payload, window %d)\n", r.Case, r.Broker, r.Protocol, r.PayloadSize, r.Window)
	fmt.Fprintf(w, "load        %d publisher(s) × %d, %d subscriber(s)", r.Publishers, r.PerPub, r.Subscribers)
	if r.Rate > 0 {
		fmt.Fprintf(w, ", paced at %.0f msg/s", r.Rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "result      %d %s in %.2fs (%.0f/s); expected %d, received %d, lost %d, duplicates %d, reordered %d\n",
		r.Units, r.Unit, r.WallSeconds, r.PerSecond, r.Expected, r.Received, r.Lost, r.Dups, r.Reorders)
	if r.BrokerCPUms > 0 {
		fmt.Fprintf(w, "broker cpu  %.1f µs/%s (%.0f ms)\n", r.BrokerUSPer, r.Unit, r.BrokerCPUms)
	}
	if r.BrokerPeakKiB > 0 {
		fmt.Fprintf(w, "broker mem  peak RSS %.1f MiB", float64(r.BrokerPeakKiB)/1024)
		if r.BrokerHeldKiB > 0 {
			fmt.Fprintf(w, " (%.1f MiB with every connection open", float64(r.BrokerHeldKiB)/1024)
			if r.BrokerStartKiB > 0 && r.BrokerHeldKiB > r.BrokerStartKiB && r.Units > 0 {
				fmt.Fprintf(w, ", %.1f MiB before: %.2f KiB per connection", float64(r.BrokerStartKiB)/1024,
					float64(r.BrokerHeldKiB-r.BrokerStartKiB)/float64(r.Units))
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "tool cpu    %.1f µs/%s (%.0f ms)\n", r.ToolUSPer, r.Unit, r.ToolCPUms)
	if r.LatP50us > 0 {
		fmt.Fprintf(w, "latency     p50 %.0f µs, p90 %.0f µs, p99 %.0f µs, max %.0f µs\n", r.LatP50us, r.LatP90us, r.LatP99us, r.LatMaxus)
	}
	if r.AckP50us > 0 {
		fmt.Fprintf(w, "ack latency p50 %.0f µs, p99 %.0f µs\n", r.AckP50us, r.AckP99us)
	}
	if r.Queued != nil {
		fmt.Fprintf(w, "queued      %d (uplink queue depth)\n", *r.Queued)
	}
	if r.Rejected > 0 {
		fmt.Fprintf(w, "rejected    %d\n", r.Rejected)
	}
	if r.Notes != "" {
		fmt.Fprintf(w, "notes       %s\n", r.Notes)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error       %s\n", r.Error)
	}
}
