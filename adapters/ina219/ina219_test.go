package ina219

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// The real ina219 driver over the register model: bus voltage within 4 mV,
// current within a few LSB (max_current/32768), power consistent with both.
func TestReadBack(t *testing.T) {
	for _, tc := range []struct{ v, i, shunt, max float64 }{
		{12.6, 0.75, 0.1, 3.2}, {24.0, -1.2, 0.1, 3.2}, {5.0, 0.02, 0.01, 10},
	} {
		w := sim.NewWorld(nil)
		m := sim.NewINA219(w.Now, "p", map[string]sim.Signal{"voltage": sim.Constant(tc.v), "current": sim.Constant(tc.i)})
		m.ShuntOhms = tc.shunt
		w.AddI2C("1").Attach(0x41, m)
		d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x41},
			Options: map[string]any{"shunt_ohms": tc.shunt, "max_current": tc.max}}, w)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := d.Read(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		lsb := tc.max / 32768
		// The shunt register resolves 10 µV: with a small shunt that is coarser than the current LSB.
		tol := math.Max(3*lsb, 10e-6/tc.shunt*2)
		if got := vals[0].Value; math.Abs(got-tc.v) > 0.004 {
			t.Errorf("%+v: voltage %v", tc, got)
		}
		if got := vals[1].Value; math.Abs(got-tc.i) > tol {
			t.Errorf("%+v: current %v, want ±%v", tc, got, tol)
		}
		if got, want := vals[2].Value, math.Abs(tc.v*tc.i); math.Abs(got-want) > want*0.02+20*lsb {
			t.Errorf("%+v: power %v, want %v", tc, got, want)
		}
	}
}

func TestFaults(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewINA219(w.Now, "p", nil)
	w.AddI2C("1").Attach(0x40, m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x40}}, w)
	if err != nil {
		t.Fatal(err)
	}
	m.SetFault(sim.FaultNACK)
	if _, err := d.Read(context.Background(), nil); err == nil {
		t.Fatal("read of vanished chip succeeded")
	}
	m.SetFault(sim.FaultOutOfRange)
	if _, err := d.Read(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("out of range: %v", err)
	}
	m.SetFault(sim.FaultNone)
	if _, err := d.Read(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}
