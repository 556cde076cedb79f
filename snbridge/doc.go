// Package snbridge is Outpost's MQTT-SN 1.2 gateway ("MQTT For Sensor
// Networks (MQTT-SN) Protocol Specification Version 1.2", IBM, 2013). It
// is a transparent gateway (section 4.1): every MQTT-SN client gets its own
// broker session through msg.Sessions, with its client id, clean-session
// flag, will and subscriptions; QoS -1 messages are published through a
// plain msg.Publisher.
//
// It imports snpacket (the codec), brokercore/msg and brokercore/topic,
// never brokercore itself.
//
// # What it implements
//
//   - Gateway discovery (section 6.1): ADVERTISE every advertise_interval
//     and GWINFO in answer to SEARCHGW, sent to mqttsn.broadcast on UDP
//     (and on the serial line, which is a broadcast medium).
//   - Connection setup with the will dialogue (6.2), clean session (6.3),
//     will updates (6.4).
//   - Topic ids (6.5, 6.7): normal ids registered per client, pre-defined
//     ids (mqttsn.predefined_topics and the Paho predefined-topic file),
//     two-character short topic names. A message for a wildcard subscription
//     on a topic the client has no id for is preceded by the gateway's
//     REGISTER (6.10). An unknown id is refused with return code 0x02.
//   - PUBLISH at QoS -1 (6.8, no connection; pre-defined ids and short
//     names), 0, 1 and 2 both ways; the gateway's QoS 1/2 PUBLISH and
//     REGISTER are retransmitted every retry_interval (Tretry) up to
//     max_retries (Nretry) times (6.13), after which the client is lost.
//   - Keep alive (6.11): a client silent for 1.5 × its keep alive duration
//     is lost and its will published.
//   - Sleeping clients (6.14): DISCONNECT with a duration puts the client to
//     sleep; messages for it are buffered (sleep_buffer, the oldest dropped
//     and counted) and sent when it wakes with PINGREQ carrying its client
//     id, followed by PINGRESP; a sleeper silent for 1.5 × its duration is
//     lost (will).
//   - Broker refusals become return codes, never silence: msg.ErrQuotaExceeded
//     and other failures → 0x01 (rejected: congestion), msg.ErrNotAuthorized
//     and invalid topics → 0x03 (rejected: not supported), in PUBACK (for any
//     QoS, section 5.4.13), SUBACK, REGACK or CONNACK.
//   - The forwarder encapsulation (5.5): clients behind a forwarder are told
//     apart by their Wireless Node Id and answered encapsulated.
//
// # Transports
//
// UDP over IPv4 (mqttsn.listen) and IPv6 (mqttsn.listen6): one MQTT-SN
// message per datagram; a datagram whose Length field disagrees with its
// size is dropped. ADVERTISE goes out on IPv4 (IPv6 has no broadcast; a
// SEARCHGW over IPv6 is answered to its sender). The socket buffers are
// sized to mqttsn.read_buffer (4 MiB); the kernel caps them at
// net.core.rmem_max, and the gateway warns at start when it did.
//
// Serial (mqttsn.serial: device, baud): for radio modems on a UART. The
// framing is SLIP (RFC 1055), 8N1:
//
//	frame   = END *( byte / ESC ESC_END / ESC ESC_ESC ) END
//	END     = 0xC0    ESC = 0xDB    ESC_END = 0xDC    ESC_ESC = 0xDD
//
// Each frame carries exactly one MQTT-SN message (its own Length field
// included); a 0xC0 inside the message is sent as 0xDB 0xDC and a 0xDB as
// 0xDB 0xDD. Senders start every frame with END as well, so line noise
// before it ends up in a separate, discarded frame. Empty frames are
// ignored; a frame with an invalid escape, longer than 65535 octets or
// whose Length field disagrees with its size is dropped and counted. There
// is no checksum beyond the Length check: radio modems in transparent mode
// normally check their own frames. The line is one peer; several nodes on
// one radio channel use the forwarder encapsulation (section 5.5) to be
// told apart.
//
// DTLS 1.2 (mqttsn.dtls, dtls.go, github.com/pion/dtls/v3): a UDP port of
// its own; each client completes a handshake with a pre-shared key (a
// mosquitto-format psk_file) or certificates, then sends MQTT-SN messages
// inside the session, one per record. One goroutine per session reads its
// records; replies find the session by address. With
// use_identity_as_username the PSK identity or certificate common name is
// the broker username of the node's session, for per-node ACLs.
//
// # Robustness
//
// One read loop per transport decodes nothing but the encapsulation header
// and hands each datagram to one of a fixed set of workers (mqttsn.workers,
// 64), the one its address was given when first seen (round robin), so a
// client's messages stay in order and no goroutine is started per
// datagram. A worker waits while the broker makes a QoS 1/2 message durable
// (DESIGN.md, the durable-ack invariant), so the worker count is also how
// many such publishes are group-committed together. An address with more than peer_queue datagrams
// waiting is a flood and its extra datagrams are dropped; a full worker
// queue is an overload drop. Malformed datagrams, unknown message types,
// length mismatches and messages from clients that are not connected are
// dropped (a PUBLISH, SUBSCRIBE, REGISTER or PINGREQ from an unknown client
// is answered with DISCONNECT, telling it to connect). Every drop is
// counted by reason in Stats and logged once a minute per address and
// reason.
//
// Lock order: Gateway.mu before client.mu; neither is held while calling
// a msg.Session or msg.Publisher.
package snbridge
