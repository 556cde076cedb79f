// Package bench is the load generator behind `outpost bench`: it drives an
// MQTT broker (ours or any other, e.g. mosquitto for comparison) and the
// MQTT-SN gateway over real sockets and measures what an edge box cares
// about: the broker's CPU per delivered message and per connection, its
// peak memory, loss, duplicates, order and latency.
//
// The tool must not be the bottleneck, so its clients are lean raw-socket
// speakers of the protocol built directly on brokercore/packet and
// snbridge/snpacket: one goroutine per connection, one reused read buffer,
// acknowledgements batched into one write per read burst, and no per-message
// tokens, channels or allocations (brokercore/client gives every publish a
// Token with its own channel and hands every write to a writer goroutine,
// which costs more CPU than the broker spends on the message). Its own CPU
// is measured with getrusage and reported beside the broker's, so a run
// where the tool used more than the broker is visible as such.
//
// Every payload carries the publisher number, a sequence number and the
// send time; each subscriber checks loss, duplicates and order per
// publisher (MQTT ordered topics, [MQTT-4.6.0-5]) and records latency.
//
// Scenarios: fan-in, fan-out, connections, retained, backlog (persistent
// session), mqttsn (UDP publishers through the gateway) and durable (QoS 1
// publishes matched by an uplink forward rule, acknowledged only once they
// are in the store-and-forward queue). See Config.
//
// bench imports packet, snpacket and the standard library for the tool; its
// tests and benchmarks also run the broker in-process (brokertest).
package bench
