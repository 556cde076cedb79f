package test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// queueCfg is a hub that queues bulk/# for the cloud (uplink off) in a
// tiny queue with the given policy.
func queueCfg(whenFull string) string {
	return `
data_dir: %DATA%
http: {listen: "off"}
mqttsn: {enabled: false}
broker:
  listeners: [{address: "127.0.0.1:0"}]
uplink:
  enabled: false
  forward: [{filter: "bulk/#", qos: 1}]
  queue: {max_bytes: 8KiB, when_full: ` + whenFull + `}
`
}

// TestQueueFullReject: with when_full: reject a v5 publisher gets PUBACK
// 0x97 (quota exceeded) once the queue is full, never a silent drop.
func TestQueueFullReject(t *testing.T) {
	p := startOutpost(t, queueCfg("reject"))
	c, _, err := paho5Dial(t, p.addr("MQTT broker"), "bulk-pub", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 200))
	accepted := 0
	for i := 0; i < 500; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pr, err := c.Publish(ctx, &paho.Publish{Topic: "bulk/data", QoS: 1, Payload: payload})
		cancel()
		if err != nil && pr == nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if pr.ReasonCode == 0x97 {
			if accepted == 0 {
				t.Fatal("the first publish was refused")
			}
			// MQTT 3.1.1 has no refusal code: the connection is closed
			// and the log says why.
			host, port := hostPort(t, p.addr("MQTT broker"))
			out, err := exec.Command(needTool(t, "mosquitto_pub"), "-h", host, "-p", port, "-V", "mqttv311", "-q", "1",
				"-i", "bulk-v311", "-t", "bulk/data", "-m", string(payload)).CombinedOutput()
			if err == nil {
				t.Fatalf("a 3.1.1 publish into a full reject queue succeeded: %s", out)
			}
			p.waitFor("quota exceeded", 10*time.Second)
			if !strings.Contains(p.out.String(), "client=bulk-v311") {
				t.Fatalf("the log does not name the 3.1.1 client:\n%s", p.out.String())
			}
			return
		}
		if pr.ReasonCode != 0 {
			t.Fatalf("publish %d: reason %#x, want 0 (queued for the cloud) or 0x97", i, pr.ReasonCode)
		}
		accepted++
	}
	t.Fatalf("500 publishes of 200 bytes all accepted into an 8 KiB queue with when_full: reject")
}

// TestQueueFullDropOldest: with drop_oldest the queue stays within
// max_bytes and keeps the newest messages.
func TestQueueFullDropOldest(t *testing.T) {
	p := startOutpost(t, queueCfg("drop_oldest"))
	addr := p.addr("MQTT broker")
	for i := 0; i < 100; i++ {
		mosquittoPub(t, addr, "-q", "1", "-t", "bulk/data", "-m", fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 200)))
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(outpostBin, "queue", "peek", "--data-dir", p.dataDir, "-n", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("outpost queue peek: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "000-") || !strings.Contains(string(out), "bulk/data") {
		t.Fatalf("the head of a full drop_oldest queue should be a newer message:\n%s", out)
	}
	stat, err := exec.Command(outpostBin, "queue", "stat", "--data-dir", p.dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("outpost queue stat: %v\n%s", err, stat)
	}
	t.Logf("queue stat after 100 x 200 B into 8 KiB:\n%s", stat)
}
