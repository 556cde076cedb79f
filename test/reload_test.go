package test

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestReloadSensorList: SIGHUP replaces the sensor list without dropping
// connected clients; a broken file keeps the running sensors.
func TestReloadSensorList(t *testing.T) {
	sensor := func(name string) string {
		return fmt.Sprintf(`
  - name: %s
    driver: mcp9808
    bus: {type: i2c, name: "SIM-I2C1", address: 0x18}
    interval: 200ms
    simulate: {temperature: 20}
`, name)
	}
	base := `
data_dir: %DATA%
http: {listen: "off"}
mqttsn: {enabled: false}
broker:
  listeners: [{address: "127.0.0.1:0"}]
sensors:`
	p := startOutpost(t, base+sensor("first"))
	addr := p.addr("MQTT broker")

	c := pahoClient(t, addr, "watcher")
	got := make(chan string, 256)
	if tok := c.Subscribe("sensors/+", 0, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- m.Topic():
		default:
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	waitTopic(t, got, "sensors/first")

	// A broken file: the running sensors stay and the log says why.
	os.WriteFile(p.cfgPath, []byte(strings.ReplaceAll(base, "%DATA%", p.dataDir)+"\n  - name: bad\n    driver: nosuchchip\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor("reload failed", 10*time.Second)
	waitTopic(t, got, "sensors/first")

	// A good file with another sensor: the new one publishes, the old one stops.
	os.WriteFile(p.cfgPath, []byte(strings.ReplaceAll(base, "%DATA%", p.dataDir)+sensor("second")), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor("sensors reloaded", 10*time.Second)
	waitTopic(t, got, "sensors/second")
	for len(got) > 0 { // readings of the old sensor still in flight
		<-got
	}
	deadline := time.After(1 * time.Second)
	for {
		select {
		case topic := <-got:
			if topic == "sensors/first" {
				t.Fatalf("sensor first still publishes after the reload")
			}
			continue
		case <-deadline:
		}
		break
	}
	if !c.IsConnectionOpen() {
		t.Fatal("the reload dropped a connected client")
	}
}

func waitTopic(t *testing.T, ch <-chan string, topic string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == topic {
				return
			}
		case <-deadline:
			t.Fatalf("no message on %s within 10s", topic)
		}
	}
}
