package ds18b20

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// countWait records the waits a read asks for.
type countWait struct{ waits []time.Duration }

func (c *countWait) Wait(_ context.Context, d time.Duration) error {
	c.waits = append(c.waits, d)
	return nil
}

func setup(t *testing.T, viaBridge bool, temps map[string]float64) (*sim.World, map[string]*sim.DS18B20, sensor.Spec) {
	t.Helper()
	w := sim.NewWorld(nil)
	var link *sim.OneWireLink
	spec := sensor.Spec{Name: "tank"}
	if viaBridge {
		link = sim.NewOneWireLink()
		w.AddI2C("1").Attach(0x18, sim.NewDS2482(link))
		spec.Bus = sensor.BusRef{Type: "i2c", Name: "1", Address: 0x18}
	} else {
		link = w.AddOneWire("w1").Link()
		spec.Bus = sensor.BusRef{Type: "onewire", Name: "w1"}
	}
	probes := map[string]*sim.DS18B20{}
	opt := map[string]any{}
	serial := uint64(0x0a1b2c3d00)
	for q, v := range temps {
		serial++
		p := sim.NewDS18B20(w.Now, q, serial, sim.Constant(v))
		link.Attach(p)
		probes[q] = p
		opt[q] = FormatROM(p.ROM())
	}
	spec.Options = map[string]any{"probes": opt}
	return w, probes, spec
}

func get(t *testing.T, vals []sensor.Value, q string) float64 {
	t.Helper()
	for _, v := range vals {
		if v.Quantity == q {
			return v.Value
		}
	}
	t.Fatalf("no %s in %v", q, vals)
	return 0
}

// The real ds18b20 driver (directly and through the real ds248x bridge
// driver) reads each probe within 1/16 °C, after one conversion of the whole
// bus and one wait of the conversion time.
func TestReadBack(t *testing.T) {
	temps := map[string]float64{"top": 21.5, "middle": 4.0625, "bottom": -10.3}
	for _, bridge := range []bool{false, true} {
		name := "onewire"
		if bridge {
			name = "ds2482"
		}
		t.Run(name, func(t *testing.T) {
			w, _, spec := setup(t, bridge, temps)
			d, err := Open(spec, w)
			if err != nil {
				t.Fatal(err)
			}
			cw := &countWait{}
			vals, err := d.Read(context.Background(), cw)
			if err != nil {
				t.Fatal(err)
			}
			if len(cw.waits) != 1 || cw.waits[0] != 752*time.Millisecond {
				t.Errorf("waits %v, want one of 752ms (12-bit conversion)", cw.waits)
			}
			for q, want := range temps {
				if got := get(t, vals, q); math.Abs(got-want) > 1.0/16 {
					t.Errorf("%s = %v, want %v ± 1/16", q, got, want)
				}
			}
		})
	}
}

// Without probes: the bus is searched; one probe is "temperature".
func TestSearchOneProbe(t *testing.T) {
	w, _, spec := setup(t, false, map[string]float64{"x": 33.3})
	spec.Options = nil
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := d.Read(context.Background(), &countWait{})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, vals, "temperature"); math.Abs(got-33.3) > 1.0/16 {
		t.Fatalf("temperature %v", got)
	}
}

func TestSearchThroughBridgeFindsAll(t *testing.T) {
	w, probes, spec := setup(t, true, map[string]float64{"a": 1, "b": 2, "c": 3, "d": 4})
	spec.Options = nil
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := d.Read(context.Background(), &countWait{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(probes) {
		t.Fatalf("found %d probes, want %d: %v", len(vals), len(probes), vals)
	}
}

// The power-on value 85 °C is rejected (periph compares with 85 K); a vanished
// probe and a corrupted scratchpad are errors naming the probe; repaired
// probes read again on the same device.
func TestFaults(t *testing.T) {
	w, probes, spec := setup(t, false, map[string]float64{"water": 12})
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	p := probes["water"]
	check := func(want string) {
		t.Helper()
		_, err := d.Read(context.Background(), &countWait{})
		if want == "" {
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("read error %v, want it to contain %q", err, want)
		}
	}
	p.SetFault(sim.FaultPowerOn)
	check("probe water: reads 85 °C, its power-on value")
	p.SetFault(sim.FaultNACK)
	check("no presence pulse")
	p.SetFault(sim.FaultBusError)
	check("probe water: ds18b20: incorrect scratchpad CRC")
	p.SetFault(sim.FaultOutOfRange)
	check("out of range -55..125")
	p.SetFault(sim.FaultNone)
	check("")
}

// A real 85.0625 °C is not mistaken for the power-on value.
func TestNear85(t *testing.T) {
	w, _, spec := setup(t, false, map[string]float64{"boiler": 85.0625})
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := d.Read(context.Background(), &countWait{})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, vals, "boiler"); got != 85.0625 {
		t.Fatalf("got %v", got)
	}
}

func TestResolution(t *testing.T) {
	w, _, spec := setup(t, false, map[string]float64{"r": 20.3})
	spec.Options["resolution"] = 9
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	cw := &countWait{}
	vals, err := d.Read(context.Background(), cw)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, vals, "r"); got != 20.5 && got != 20.0 {
		t.Fatalf("9-bit reading %v is not a multiple of 0.5", got)
	}
	if cw.waits[0] != 94*time.Millisecond {
		t.Fatalf("9-bit conversion wait %v", cw.waits[0])
	}
}

func TestParseROM(t *testing.T) {
	a, err := ParseROM("28-00000a1b2c3d")
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatROM(a); got != "28-00000a1b2c3d" {
		t.Fatalf("round trip %s", got)
	}
	for _, bad := range []string{"28-xyz", "0x1234", "28-0000"} {
		if _, err := ParseROM(bad); err == nil {
			t.Errorf("ParseROM(%q) succeeded", bad)
		}
	}
}
