package gpiooutput

import (
	"testing"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

func TestCommands(t *testing.T) {
	w := sim.NewWorld(nil)
	pin := w.AddPin("GPIO22")
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "gpio", Name: "GPIO22"}, Options: map[string]any{"initial": "on"}}, w)
	if err != nil {
		t.Fatal(err)
	}
	if pin.Read() != gpio.High {
		t.Fatal("initial on did not drive the pin high")
	}
	for _, tc := range []struct {
		cmd  string
		want gpio.Level
	}{{"off", gpio.Low}, {"1", gpio.High}, {"toggle", gpio.Low}, {`{"state":1}`, gpio.High}, {`{"state":"off"}`, gpio.Low}, {" ON \n", gpio.High}} {
		if err := d.Command([]byte(tc.cmd)); err != nil {
			t.Fatalf("%q: %v", tc.cmd, err)
		}
		if pin.Read() != tc.want {
			t.Fatalf("after %q the pin is %v", tc.cmd, pin.Read())
		}
	}
	for _, bad := range []string{"maybe", `{"state":`, ""} {
		if err := d.Command([]byte(bad)); err == nil {
			t.Errorf("command %q accepted", bad)
		}
	}
	if _, err := Parse(map[string]any{"initial": "half"}); err == nil || err.Error() != `option initial: "half" is not on or off` {
		t.Fatal(err)
	}
}
