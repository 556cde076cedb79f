package mcp9808

import (
	"context"
	"math"
	"strings"
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

// The id check refuses another chip at the address and keeps the bus error
// that periph's driver would drop.
func TestIDAndCause(t *testing.T) {
	w := sim.NewWorld(nil)
	w.AddI2C("1").Attach(0x19, sim.NewINA219(w.Now, "x", nil))
	spec := sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x19}}
	if _, err := Open(spec, w); err == nil || err.Error() != "mcp9808: the chip at 0x19 is not an MCP9808 (manufacturer id 0x0000, device id 0x00)" {
		t.Fatalf("other chip: %v", err)
	}
	m := sim.NewMCP9808(w.Now, "t", nil)
	w.AddI2C("1").Attach(0x19, m)
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	m.SetFault(sim.FaultNACK)
	if _, err := d.Read(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "SIM-I2C1: tx to 0x19: address not acknowledged") {
		t.Fatalf("read error without its cause: %v", err)
	}
}
