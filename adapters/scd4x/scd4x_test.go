package scd4x

import (
	"context"
	"math"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// The real scd4x driver (commands, CRC on every word) over the model reads
// back within the chip's resolution (1 ppm, 175/65535 °C, 100/65535 %RH).
func TestReadBackAndFaults(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewSCD4x(w.Now, "c", map[string]sim.Signal{"co2": sim.Constant(812), "temperature": sim.Constant(23.4), "humidity": sim.Constant(51)})
	w.AddI2C("1").Attach(0x62, m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x62}}, w)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := d.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].Value != 812 || math.Abs(vals[1].Value-23.4) > 0.003 || math.Abs(vals[2].Value-51) > 0.002 {
		t.Fatalf("got %v", vals)
	}
	// A vanished chip fails at open. (A read-time fault is also an error,
	// after periph's driver has polled data-ready for 6 s.)
	m.SetFault(sim.FaultNACK)
	if _, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x62}}, w); err == nil {
		t.Fatal("open of a vanished chip succeeded")
	}
}
