package bme280

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

type noWait struct{}

func (noWait) Wait(context.Context, time.Duration) error { return nil }

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

// The real bmxx80 driver over the register model reads back the configured
// values within the chip's resolution (0.01 °C, 1/1024 %RH, 1/256 Pa; the
// model inverts the integer compensation, so allow one LSB of the raw ADC).
func TestReadBackI2CAndSPI(t *testing.T) {
	cases := []struct {
		name             string
		bus              string
		bmp              bool
		temp, hum, press float64
	}{
		{"i2c-mild", "i2c", false, 21.5, 40, 101325},
		{"i2c-cold", "i2c", false, -12.25, 85.5, 95000},
		{"i2c-hot", "i2c", false, 60.0, 5, 105000},
		{"spi", "spi", false, 3.75, 63.2, 99000},
		{"bmp280", "i2c", true, 30.1, 0, 100000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := sim.NewWorld(nil)
			m := sim.NewBME280(w.Now, tc.name, map[string]sim.Signal{
				"temperature": sim.Constant(tc.temp), "humidity": sim.Constant(tc.hum), "pressure": sim.Constant(tc.press)}, tc.bmp)
			spec := sensor.Spec{Name: tc.name, Bus: sensor.BusRef{Type: tc.bus, Name: "1", Address: 0x77}}
			if tc.bus == "i2c" {
				w.AddI2C("1").Attach(0x77, m)
			} else {
				spec.Bus.Name, spec.Bus.Address = "0.0", 0
				w.AddSPI("0.0").SetDevice(m)
			}
			d, err := Open(spec, w)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			vals, err := d.Read(context.Background(), noWait{})
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, vals, "temperature"); math.Abs(got-tc.temp) > 0.01 {
				t.Errorf("temperature %v, want %v ± 0.01", got, tc.temp)
			}
			if got := get(t, vals, "pressure"); math.Abs(got-tc.press) > 0.5 {
				t.Errorf("pressure %v, want %v ± 0.5 Pa", got, tc.press)
			}
			if tc.bmp {
				for _, v := range vals {
					if v.Quantity == "humidity" {
						t.Errorf("BMP280 reported humidity %v", v)
					}
				}
				return
			}
			if got := get(t, vals, "humidity"); math.Abs(got-tc.hum) > 0.05 {
				t.Errorf("humidity %v, want %v ± 0.05", got, tc.hum)
			}
		})
	}
}

// A vanished chip fails the read; when it answers again a new Open works.
// Out-of-range and bus errors are reported, not published as values.
func TestFaults(t *testing.T) {
	w := sim.NewWorld(nil)
	m := sim.NewBME280(w.Now, "f", nil, false)
	w.AddI2C("1").Attach(0x76, m)
	spec := sensor.Spec{Name: "f", Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x76}}
	d, err := Open(spec, w)
	if err != nil {
		t.Fatal(err)
	}
	m.SetFault(sim.FaultNACK)
	if _, err := d.Read(context.Background(), noWait{}); err == nil || !strings.Contains(err.Error(), "not acknowledged") {
		t.Fatalf("read of vanished chip: %v", err)
	}
	if _, err := Open(spec, w); err == nil {
		t.Fatal("open of vanished chip succeeded")
	}
	m.SetFault(sim.FaultOutOfRange)
	if _, err := d.Read(context.Background(), noWait{}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("out-of-range read: %v", err)
	}
	m.SetFault(sim.FaultBusError)
	if _, err := d.Read(context.Background(), noWait{}); err == nil || !strings.Contains(err.Error(), "bus error") {
		t.Fatalf("bus error read: %v", err)
	}
	m.SetFault(sim.FaultNone)
	d2, err := Open(spec, w)
	if err != nil {
		t.Fatalf("reopen after repair: %v", err)
	}
	if _, err := d2.Read(context.Background(), noWait{}); err != nil {
		t.Fatalf("read after repair: %v", err)
	}
}

// A stuck chip keeps returning its last value while the signal moves.
func TestStuck(t *testing.T) {
	clock := sim.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w := sim.NewWorld(clock.Now)
	m := sim.NewBME280(w.Now, "s", map[string]sim.Signal{"temperature": {Base: 10, Drift: 24}}, false) // +1 °C per hour
	w.AddI2C("1").Attach(0x76, m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x76}}, w)
	if err != nil {
		t.Fatal(err)
	}
	read := func() float64 {
		vals, err := d.Read(context.Background(), noWait{})
		if err != nil {
			t.Fatal(err)
		}
		return get(t, vals, "temperature")
	}
	m.SetFault(sim.FaultStuck)
	a := read()
	clock.Advance(2 * time.Hour)
	if b := read(); b != a {
		t.Fatalf("stuck chip moved from %v to %v", a, b)
	}
	m.SetFault(sim.FaultNone)
	if c := read(); math.Abs(c-12) > 0.01 {
		t.Fatalf("after repair %v, want 12", c)
	}
}

func TestParse(t *testing.T) {
	if _, err := Parse(map[string]any{"oversampling": 3}); err == nil || err.Error() != "option oversampling: 3 is not 1, 2, 4, 8 or 16" {
		t.Fatalf("got %v", err)
	}
	if _, err := Parse(map[string]any{"oversample": 2}); err == nil || err.Error() != "unknown option oversample" {
		t.Fatalf("got %v", err)
	}
}
