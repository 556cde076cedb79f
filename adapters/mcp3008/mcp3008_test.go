package mcp3008

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

func TestReadBackAndVanish(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewMCP3008(w.Now, "adc", map[string]sim.Signal{"ch0": sim.Constant(1.65), "ch3": sim.Constant(0.1), "ch7": sim.Constant(3.29)})
	w.AddSPI("0.1").SetDevice(m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "spi", Name: "0.1"}, Options: map[string]any{"channels": []any{0, 3, 7}}}, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := d.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1.65, 0.1, 3.29}
	for i, v := range vals {
		if math.Abs(v.Value-want[i]) > 3.3/1024 {
			t.Errorf("%s = %v, want %v ± 1 LSB", v.Quantity, v.Value, want[i])
		}
	}
	m.SetFault(sim.FaultNACK)
	if _, err := d.Read(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("vanished: %v", err)
	}
	if _, err := Parse(map[string]any{"channels": []any{8}}); err == nil || err.Error() != "option channels: 8 is not a channel 0..7" {
		t.Fatal(err)
	}
}
