package hx711

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// The real hx711 driver bit-bangs 24 bits out of the model through two GPIO
// pins; tare and scale turn the code back into the configured weight within
// one count.
func TestReadBackAndFault(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewHX711(w.Now, "tank", map[string]sim.Signal{"weight": sim.Constant(312.5)}, "GPIO6", "GPIO5", 8388, 21000)
	w.AttachPin(m.Clk)
	w.AttachPin(m.Data)
	opts := map[string]any{"clock_pin": "GPIO6", "tare": 8388, "scale": 21000}
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "gpio", Name: "GPIO5"}, Options: opts}, w)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		vals, err := d.Read(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(vals[0].Value-312.5) > 1.0/21000 || vals[0].Unit != "kg" {
			t.Fatalf("read %d: %+v", i, vals[0])
		}
	}
	m.SetSignal("weight", sim.Constant(-2)) // negative codes are two's complement
	vals, err := d.Read(context.Background(), nil)
	if err != nil || math.Abs(vals[0].Value+2) > 1.0/21000 {
		t.Fatalf("negative weight: %v %v", vals, err)
	}
	m.SetFault(sim.FaultNACK)
	if _, err := d.Read(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("unplugged: %v", err)
	}
	if _, err := Parse(map[string]any{"tare": 1}); err == nil || err.Error() != "option clock_pin: required (the PD_SCK pin, e.g. GPIO6)" {
		t.Fatal(err)
	}
}
