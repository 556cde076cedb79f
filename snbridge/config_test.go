package snbridge

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/snbridge/internal/fakebroker"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "nohost:port:x"}, "mqttsn.listen"},
		{Config{Listen6: "[zz]:1"}, "mqttsn.listen6"},
		{Config{Broadcast: "a:b:c"}, "mqttsn.broadcast"},
		{Config{Serial: &SerialConfig{}}, "mqttsn.serial.device"},
		{Config{AdvertiseInterval: time.Millisecond}, "mqttsn.advertise_interval"},
		{Config{AdvertiseInterval: 20 * time.Hour}, "16-bit Duration"},
		{Config{MaxRetries: -1}, "mqttsn.max_retries -1"},
		{Config{SleepBuffer: -2}, "mqttsn.sleep_buffer"},
		{Config{PredefinedTopics: map[uint16]string{0: "a"}}, "mqttsn.predefined_topics.0"},
		{Config{PredefinedTopics: map[uint16]string{3: "a/#"}}, "wildcard"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want mention of %q", tc.cfg, err, tc.want)
		}
	}
}

func TestParsePredefinedTopics(t *testing.T) {
	in := "# comment\n\n*,a/b,1\nCOMMON, c/d , 0x10\nnode1,e,2\n"
	got, err := ParsePredefinedTopics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []PredefinedEntry{{"", 1, "a/b"}, {"", 16, "c/d"}, {"node1", 2, "e"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []struct{ in, want string }{
		{"*,a\n", "line 1"},
		{"#\n*,a,x\n", "line 2: topic id \"x\""},
		{"*,a,0\n", "reserved"},
		{"*,a,65535\n", "reserved"},
		{"*,a,70000\n", "not a number"},
		{",a,1\n", "empty ClientId"},
		{"*,a/+,1\n", "wildcard"},
	} {
		if _, err := ParsePredefinedTopics(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	b := fakebroker.New()
	log := slog.New(slog.DiscardHandler)
	if _, err := New(Config{Listen: "127.0.0.1:0", PredefinedTopicsFile: "/nonexistent/predef.conf"}, b, log); err == nil ||
		!strings.Contains(err.Error(), "mqttsn.predefined_topics_file") {
		t.Errorf("missing file: %v", err)
	}
	bad := writeFile(t, "p.conf", "*,x,1\n*,y\n")
	if _, err := New(Config{Listen: "127.0.0.1:0", PredefinedTopicsFile: bad}, b, log); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad file: %v", err)
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", Serial: &SerialConfig{Device: "/nonexistent/tty"}}, b, log); err == nil ||
		!strings.Contains(err.Error(), "mqttsn.serial") {
		t.Errorf("missing serial device: %v", err)
	}
	if _, err := New(Config{}, nil, log); err == nil {
		t.Errorf("nil sessions accepted")
	}
	busy, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := New(Config{Listen: busy.LocalAddr().String()}, b, log); err == nil ||
		!strings.Contains(err.Error(), "listen udp4 "+busy.LocalAddr().String()+": bind: address already in use (another MQTT-SN gateway") {
		t.Errorf("port in use: %v", err)
	}
}
