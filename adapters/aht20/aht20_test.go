package aht20

import (
	"context"
	"math"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// The real aht20 driver initialises the model, triggers, checks the CRC and
// reads back within the 20-bit resolution.
func TestReadBackAndFaults(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewAHT20(w.Now, "h", map[string]sim.Signal{"temperature": sim.Constant(-5.5), "humidity": sim.Constant(72.25)})
	w.AddI2C("1").Attach(0x38, m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x38}}, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := d.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(vals[0].Value+5.5) > 0.001 || math.Abs(vals[1].Value-72.25) > 0.001 {
		t.Fatalf("got %v", vals)
	}
	m.SetFault(sim.FaultNACK)
	if _, err := d.Read(context.Background(), nil); err == nil {
		t.Fatal("vanished chip read")
	}
	m.SetFault(sim.FaultOutOfRange)
	if _, err := d.Read(context.Background(), nil); err == nil {
		t.Fatal("out of range read")
	}
}
