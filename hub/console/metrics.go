package console

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"strconv"
)

// newRegistry is the console's own Prometheus registry (never the global
// default): the Go runtime, the process, and one collector that reads the
// parts' counters at scrape time.
func newRegistry(c *Console) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&partsCollector{c: c},
	)
	return reg
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("outpost_"+name, help, labels, nil)
}

var (
	dBuildInfo        = desc("build_info", "Outpost version (value 1).", "version")
	dUptime           = desc("uptime_seconds", "Seconds since the hub started.")
	dClients          = desc("broker_clients_connected", "MQTT clients connected now.")
	dClientsOffline   = desc("broker_sessions_disconnected", "Persistent sessions without a connection.")
	dClientsTotal     = desc("broker_connections_total", "Connections accepted since start.")
	dMsgsRecv         = desc("broker_messages_received_total", "PUBLISH received (all QoS), wills and in-process publishes.")
	dMsgsSent         = desc("broker_messages_sent_total", "PUBLISH sent (all QoS) and in-process deliveries.")
	dMsgsRecvQoS      = desc("broker_messages_received_by_qos_total", "PUBLISH received, by QoS.", "qos")
	dMsgsSentQoS      = desc("broker_messages_sent_by_qos_total", "PUBLISH sent, by QoS.", "qos")
	dBytesRecv        = desc("broker_bytes_received_total", "Bytes received by the broker.")
	dBytesSent        = desc("broker_bytes_sent_total", "Bytes sent by the broker.")
	dSubs             = desc("broker_subscriptions", "Subscriptions now.")
	dRetained         = desc("broker_retained_messages", "Retained messages now.")
	dQueuedSessions   = desc("broker_session_queued_messages", "Messages waiting in session queues now.")
	dDropped          = desc("broker_dropped_messages_total", "Messages not delivered, by reason.", "reason")
	dSNClients        = desc("mqttsn_clients", "MQTT-SN clients by state.", "state")
	dSNMsgsIn         = desc("mqttsn_messages_received_total", "MQTT-SN messages received.")
	dSNMsgsOut        = desc("mqttsn_messages_sent_total", "MQTT-SN messages sent.")
	dSNDrops          = desc("mqttsn_dropped_total", "MQTT-SN datagrams or messages dropped, by reason.", "reason")
	dSensorUp         = desc("sensor_up", "1 when the sensor's last read succeeded.", "sensor", "driver")
	dSensorReads      = desc("sensor_reads_total", "Reads attempted.", "sensor")
	dSensorErrors     = desc("sensor_read_errors_total", "Reads that failed.", "sensor")
	dSensorPublishes  = desc("sensor_publishes_total", "Readings published.", "sensor")
	dSensorValue      = desc("sensor_value", "The last good reading of each quantity.", "sensor", "quantity", "unit")
	dQueueDepth       = desc("queue_depth", "Records in the durable queue, by lane.", "lane")
	dQueueBytes       = desc("queue_bytes", "Stored bytes in the durable queue, by lane.", "lane")
	dQueueAge         = desc("queue_oldest_age_seconds", "Age of the oldest queued record, by lane.", "lane")
	dQueueAppends     = desc("queue_appends_total", "Records appended durably.")
	dQueueAcked       = desc("queue_acked_total", "Records deleted after the cloud acknowledged them.")
	dQueueDropped     = desc("queue_dropped_total", "Records dropped by the size or age policy.")
	dQueueRejected    = desc("queue_rejected_total", "Appends refused (queue full under reject, or disk full).")
	dQueueSyncs       = desc("queue_syncs_total", "Database transactions committed (one fsync each).")
	dQueueSyncErrors  = desc("queue_sync_errors_total", "Transactions whose commit or sync failed.")
	dQueueDisk        = desc("queue_disk_bytes", "Bytes the database occupies on disk.")
	dUplinkConnected  = desc("uplink_connected", "1 while the cloud link is up.")
	dUplinkConnects   = desc("uplink_connects_total", "Successful connections to the cloud.")
	dUplinkFailures   = desc("uplink_connect_failures_total", "Failed connection attempts.")
	dUplinkInflight   = desc("uplink_inflight_messages", "Messages sent to the cloud and not yet acknowledged.")
	dUplinkSent       = desc("uplink_messages_sent_total", "PUBLISH packets sent to the cloud.")
	dUplinkAcked      = desc("uplink_messages_acked_total", "Messages the cloud acknowledged.")
	dUplinkRejected   = desc("uplink_messages_rejected_total", "Messages the cloud refused.")
	dConsoleTopics    = desc("console_topics", "Topics kept by the console's topic tree.")
	dConsoleListeners = desc("console_event_streams", "Open /api/events streams.")
)

// partsCollector reads every part through the console's Sources at scrape
// time; it keeps no state of its own.
type partsCollector struct{ c *Console }

func (p *partsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(p, ch)
}

func (p *partsCollector) Collect(ch chan<- prometheus.Metric) {
	c := p.c
	s := c.src
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(dBuildInfo, 1, s.Version)
	gauge(dUptime, c.opts.Now().Sub(s.Started).Seconds())
	if s.Broker != nil {
		b := s.Broker()
		gauge(dClients, float64(b.ClientsConnected))
		gauge(dClientsOffline, float64(b.ClientsDisconnected))
		counter(dClientsTotal, float64(b.ClientsTotal))
		counter(dMsgsRecv, float64(b.MessagesReceived))
		counter(dMsgsSent, float64(b.MessagesSent))
		for q := range 3 {
			counter(dMsgsRecvQoS, float64(b.ReceivedByQoS[q]), strconv.Itoa(q))
			counter(dMsgsSentQoS, float64(b.SentByQoS[q]), strconv.Itoa(q))
		}
		counter(dBytesRecv, float64(b.BytesReceived))
		counter(dBytesSent, float64(b.BytesSent))
		gauge(dSubs, float64(b.Subscriptions))
		gauge(dRetained, float64(b.Retained))
		gauge(dQueuedSessions, float64(b.Queued))
		for r, v := range b.Dropped {
			counter(dDropped, float64(v), r)
		}
	}
	if s.Gateway != nil {
		g := s.Gateway()
		for st, n := range g.Clients {
			gauge(dSNClients, float64(n), st)
		}
		counter(dSNMsgsIn, float64(g.MessagesIn))
		counter(dSNMsgsOut, float64(g.MessagesOut))
		for r, v := range g.Drops {
			counter(dSNDrops, float64(v), r)
		}
	}
	if s.Sensors != nil {
		for _, x := range s.Sensors() {
			up := 0.0
			if x.State == "ok" {
				up = 1
			}
			gauge(dSensorUp, up, x.Name, x.Driver)
			counter(dSensorReads, float64(x.Reads), x.Name)
			counter(dSensorErrors, float64(x.Errors), x.Name)
			counter(dSensorPublishes, float64(x.Publishes), x.Name)
			if x.Last != nil {
				for _, v := range x.Last.Values {
					gauge(dSensorValue, v.Value, x.Name, v.Quantity, v.Unit)
				}
			}
		}
	}
	if s.Queue != nil {
		q := s.Queue()
		for _, l := range q.Lanes {
			gauge(dQueueDepth, float64(l.Depth), l.Lane)
			gauge(dQueueBytes, float64(l.Bytes), l.Lane)
			gauge(dQueueAge, durationSeconds(l.OldestAge), l.Lane)
		}
		counter(dQueueAppends, float64(q.Appends))
		counter(dQueueAcked, float64(q.Acked))
		counter(dQueueDropped, float64(q.Dropped))
		counter(dQueueRejected, float64(q.Rejected))
		counter(dQueueSyncs, float64(q.Syncs))
		counter(dQueueSyncErrors, float64(q.SyncErrors))
		gauge(dQueueDisk, float64(q.DiskBytes))
	}
	if s.Uplink != nil {
		u := s.Uplink()
		up := 0.0
		if u.State == "connected" {
			up = 1
		}
		gauge(dUplinkConnected, up)
		counter(dUplinkConnects, float64(u.Connects))
		counter(dUplinkFailures, float64(u.ConnectFailures))
		gauge(dUplinkInflight, float64(u.InFlight))
		counter(dUplinkSent, float64(u.Sent))
		counter(dUplinkAcked, float64(u.Acked))
		counter(dUplinkRejected, float64(u.Rejected))
	}
	c.live.mu.Lock()
	nt := len(c.live.topics.byName)
	c.live.mu.Unlock()
	gauge(dConsoleTopics, float64(nt))
	gauge(dConsoleListeners, float64(c.listenerCount()))
}

func durationSeconds(d Duration) float64 { return float64(d) / 1e9 }
