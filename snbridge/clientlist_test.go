package snbridge

import (
	"testing"

	"github.com/outpost-iot/outpost/snbridge/sntest"
)

// Clients shows each node's state as the console needs it: active while
// connected, asleep after DISCONNECT with a duration (section 6.14).
func TestClientsList(t *testing.T) {
	e := start(t, nil)
	e.connect(t, "node-a", sntest.ConnectOptions{CleanSession: true, KeepAlive: 60}, sntest.Options{})
	b := e.connect(t, "node-b", sntest.ConnectOptions{CleanSession: true, KeepAlive: 60}, sntest.Options{})
	if err := b.Disconnect(300); err != nil {
		t.Fatal(err)
	}
	var got []ClientInfo
	eventually(t, "node-b asleep", func() bool {
		got = e.g.Clients()
		return len(got) == 2 && got[1].State == "asleep"
	})
	if got[0].ClientID != "node-a" || got[0].State != "active" || got[0].Addr == "" {
		t.Errorf("node-a = %+v", got[0])
	}
	if got[1].ClientID != "node-b" {
		t.Errorf("node-b = %+v", got[1])
	}
}
