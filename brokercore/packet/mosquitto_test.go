package packet

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestMosquittoPubInterop decodes what the real mosquitto_pub sends for
// MQTT 3.1 (MQIsdp), 3.1.1 and 5.0, answering with packets this codec
// encodes: CONNECT with will, user name and password (v5: properties),
// PUBLISH QoS 1 (v5: user property), DISCONNECT. mosquitto_pub exits 0 only
// if it understood our CONNACK and PUBACK.
func TestMosquittoPubInterop(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (apt-get install -y mosquitto-clients)")
	}
	for _, tc := range []struct {
		flag    string
		version byte
		name    string
		extra   []string
	}{
		{"mqttv31", V31, "MQIsdp", nil},
		{"mqttv311", V311, "MQTT", nil},
		{"mqttv5", V5, "MQTT", []string{"-D", "connect", "session-expiry-interval", "30", "-D", "publish", "user-property", "k", "v"}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), "-V", tc.flag,
				"-i", "interop", "-u", "user", "-P", "pw", "--will-topic", "w/t", "--will-payload", "gone", "--will-qos", "1",
				"-t", "a/b", "-m", "hello", "-q", "1"}, tc.extra...)
			cmd := exec.CommandContext(ctx, bin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := false
			defer func() {
				if !waited {
					cancel()
					cmd.Wait()
				}
			}()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			p, err := ReadPacket(br, 0, 0)
			if err != nil {
				t.Fatalf("CONNECT: %v", err)
			}
			cp, ok := p.(*Connect)
			if !ok || cp.ProtocolName != tc.name || cp.ProtocolLevel != tc.version || cp.ClientID != "interop" ||
				cp.Username != "user" || string(cp.Password) != "pw" || !cp.WillFlag || cp.WillTopic != "w/t" ||
				string(cp.WillPayload) != "gone" || cp.WillQoS != 1 {
				t.Fatalf("CONNECT = %#v", p)
			}
			if tc.version == V5 && (cp.Props.SessionExpiry == nil || *cp.Props.SessionExpiry != 30) {
				t.Errorf("CONNECT properties %#v", cp.Props)
			}
			write := func(p Packet) {
				b, err := Append(nil, p, tc.version)
				if err != nil {
					t.Fatal(err)
				}
				c.Write(b)
			}
			write(&ConnAck{})
			p, err = ReadPacket(br, tc.version, 0)
			if err != nil {
				t.Fatalf("PUBLISH: %v", err)
			}
			pub, ok := p.(*Publish)
			if !ok || pub.Topic != "a/b" || string(pub.Payload) != "hello" || pub.QoS != 1 || pub.PacketID == 0 {
				t.Fatalf("PUBLISH = %#v", p)
			}
			if tc.version == V5 && (len(pub.Props.User) != 1 || pub.Props.User[0] != (UserProperty{"k", "v"})) {
				t.Errorf("PUBLISH properties %#v", pub.Props)
			}
			write(&Ack{PacketType: PUBACK, PacketID: pub.PacketID})
			p, err = ReadPacket(br, tc.version, 0)
			if err != nil || p.Type() != DISCONNECT {
				t.Fatalf("DISCONNECT: %#v %v", p, err)
			}
			waited = true
			if err := cmd.Wait(); err != nil {
				t.Fatalf("mosquitto_pub: %v: %s", err, stderr.String())
			}
		})
	}
}
