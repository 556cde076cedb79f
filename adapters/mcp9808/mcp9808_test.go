package mcp9808

import (
	"context"
	"math"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

func TestReadBack(t *testing.T) {
	for _, tc := range []struct{ temp, res float64 }{{21.37, 0.0625}, {-12.8, 0.0625}, {30.3, 0.5}, {99.9, 0.25}} {
		w := sim.NewWorld(nil)
		m := sim.NewMCP9808(w.Now, "t", map[string]sim.Signal{"temperature": sim.Constant(tc.temp)})
		w.AddI2C("1").Attach(0x1A, m)
		d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x1A}, Options: map[string]any{"resolution": tc.res}}, w)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := d.Read(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := vals[0].Value; math.Abs(got-tc.temp) > tc.res || math.Mod(math.Abs(got), tc.res) != 0 {
			t.Errorf("%+v: got %v, want within and a multiple of %v", tc, got, tc.res)
		}
	}
}

func TestFaults(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewMCP9808(w.Now, "t", nil)
	w.AddI2C("1").Attach(0x18, m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x18}}, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []sim.Fault{sim.FaultNACK, sim.FaultBusError, sim.FaultOutOfRange} {
		m.SetFault(f)
		if _, err := d.Read(context.Background(), nil); err == nil {
			t.Errorf("fault %s: read succeeded", f)
		}
	}
	m.SetFault(sim.FaultNone)
	if _, err := d.Read(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(map[string]any{"resolution": 0.1}); err == nil || err.Error() != "option resolution: 0.1 is not 0.0625, 0.125, 0.25 or 0.5" {
		t.Fatal(err)
	}
}
