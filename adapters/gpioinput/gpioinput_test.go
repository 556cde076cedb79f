package gpioinput

import (
	"context"
	"testing"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

func TestInvertAndParse(t *testing.T) {
	w := sim.NewWorld(nil)
	pin := w.AddPin("GPIO4")
	pin.Set(gpio.Low)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "gpio", Name: "GPIO4"}, Options: map[string]any{"invert": true}}, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := d.Read(context.Background(), nil)
	if vals[0].Value != 1 {
		t.Fatalf("low pin with invert reads %v", vals[0].Value)
	}
	if pin.Pull() != gpio.PullUp {
		t.Fatal("default pull is not up")
	}
	if _, err := Parse(map[string]any{"debounce": "1m"}); err == nil || err.Error() != "option debounce: 1m0s is not between 0 and 10s" {
		t.Fatal(err)
	}
}
