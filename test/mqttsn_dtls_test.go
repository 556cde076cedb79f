package test

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// TestMQTTSNE2EDTLS runs the real binary with an MQTT-SN DTLS port keyed
// from a mosquitto-format psk_file and use_identity_as_username: a node
// with its key connects, and the broker's ACL holds it to its own
// topics by its PSK identity; a paho subscriber sees what it published.
func TestMQTTSNE2EDTLS(t *testing.T) {
	dir := t.TempDir()
	psk := filepath.Join(dir, "psk")
	acl := filepath.Join(dir, "acl")
	const key = "5ec2e7a1b0c4d9e8f7a6b5c4d3e2f1a0"
	if err := os.WriteFile(psk, []byte("node-7:"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, []byte("topic read #\nuser node-7\ntopic readwrite sites/node-7/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startOutpost(t, snCfg("  allow_anonymous: true\n  acl_file: "+acl,
		"  dtls: {listen: \"127.0.0.1:0\", psk_file: \""+psk+"\", use_identity_as_username: true}"))
	ua, err := net.ResolveUDPAddr("udp", p.addr("MQTT-SN gateway (dtls)"))
	if err != nil {
		t.Fatal(err)
	}
	paho := pahoClient(t, p.addr("MQTT broker"), "dtls-watch")
	seen := collect(t, paho, "sites/#", 1)

	conn, err := dtls.DialWithOptions("udp", ua,
		dtls.WithPSK(func([]byte) ([]byte, error) { return hex.DecodeString(key) }),
		dtls.WithPSKIdentityHint([]byte("node-7")),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		t.Fatalf("DTLS handshake: %v\n%s", err, p.out.String())
	}
	sn := sntest.NewClient(conn, sntest.Options{Timeout: 5 * time.Second})
	defer sn.Close()
	snConnect(t, sn, sntest.ConnectOptions{ClientID: "dtls-node", CleanSession: true, KeepAlive: 60})

	own, _, err := sn.Register("sites/node-7/temp")
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := sn.Publish(snpacket.TopicNormal, own, 1, false, []byte("21.5")); err != nil || rc != snpacket.Accepted {
		t.Fatalf("publish to its own topic over DTLS: rc %v err %v", rc, err)
	}
	seen.wait(t, 5*time.Second, 0, "the DTLS node's message", func(m pahoMsg) bool {
		return m.topic == "sites/node-7/temp" && m.payload == "21.5"
	})
	other, _, err := sn.Register("sites/node-8/temp")
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := sn.Publish(snpacket.TopicNormal, other, 1, false, []byte("spoofed")); err != nil || rc == snpacket.Accepted {
		t.Fatalf("publish to another node's topic: rc %v err %v, want refused by the ACL for user node-7", rc, err)
	}
}
