package snbridge

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost-iot/outpost/brokercore/msg"
	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

func msgOf(topic string, qos byte, payload string) msg.Message {
	return msg.Message{Topic: topic, QoS: qos, Payload: []byte(payload)}
}

func shortID(s string) uint16 {
	id, _ := snpacket.ShortTopicID(s)
	return id
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// client returns the gateway's state for a client id (tests only).
func (g *Gateway) client(id string) *client {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.clients[id]
}

type msgT = msg.Message

type msgSessionOptions = msg.SessionOptions
