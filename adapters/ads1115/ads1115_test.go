package ads1115

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

func open(t *testing.T, pins map[string]float64, opts map[string]any) (*Sensor, *sim.ADS1115) {
	t.Helper()
	w := sim.NewWorld(nil)
	sig := map[string]sim.Signal{}
	for k, v := range pins {
		sig[k] = sim.Constant(v)
	}
	m := sim.NewADS1115(w.Now, "a", sig)
	w.AddI2C("1").Attach(0x49, m)
	d, err := Open(sensor.Spec{Bus: sensor.BusRef{Type: "i2c", Name: "1", Address: 0x49}, Options: opts}, w)
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

// Four channels in volts read back within one LSB (4.096 V / 32768 = 125 µV).
func TestReadBackVolts(t *testing.T) {
	pins := map[string]float64{"ain0": 0.5, "ain1": 1.234, "ain2": 3.3, "ain3": 0}
	d, _ := open(t, pins, nil)
	vals, err := d.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if math.Abs(v.Value-pins[v.Quantity]) > 4.096/32768 || v.Unit != "V" {
			t.Errorf("%s = %v %s, want %v V", v.Quantity, v.Value, v.Unit, pins[v.Quantity])
		}
	}
}

// A 4-20 mA level transmitter across 150 Ω, scaled 0-5 m, and a 0-10 V input
// through a 2.5:1 divider; a broken loop (0 mA) is an error naming the channel.
func TestScaling(t *testing.T) {
	opts := map[string]any{"channels": map[string]any{
		"ain0": map[string]any{"name": "tank_level", "shunt_ohms": 150, "from": []any{4, 20}, "to": []any{0, 5}, "unit": "m", "fault_below": 3.6},
		"ain1": map[string]any{"name": "supply", "gain": 2.5},
	}}
	// 12 mA -> 1.8 V -> 2.5 m; 9.5 V / 2.5 = 3.8 V at the pin.
	d, m := open(t, map[string]float64{"ain0": 1.8, "ain1": 3.8}, opts)
	vals, err := d.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].Quantity != "tank_level" || math.Abs(vals[0].Value-2.5) > 0.002 || vals[0].Unit != "m" {
		t.Errorf("tank_level %+v", vals[0])
	}
	if vals[1].Quantity != "supply" || math.Abs(vals[1].Value-9.5) > 0.001 {
		t.Errorf("supply %+v", vals[1])
	}
	m.SetSignal("ain0", sim.Constant(0))
	if _, err := d.Read(context.Background(), nil); err == nil || err.Error() != "tank_level: input 0.00 mA below 3.6: broken loop or transmitter fault" {
		t.Fatalf("broken loop: %v", err)
	}
	m.SetSignal("ain0", sim.Constant(5))
	if _, err := d.Read(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "full scale") {
		t.Fatalf("over range: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"max_voltage": 5}, "option max_voltage: 5 is not one of 6.144, 4.096, 2.048, 1.024, 0.512, 0.256"},
		{map[string]any{"channels": map[string]any{"ain4": map[string]any{}}}, `option channels: "ain4" is not ain0, ain1, ain2 or ain3`},
		{map[string]any{"channels": map[string]any{"ain0": map[string]any{"from": []any{4, 20}}}}, "option channels: ain0: from and to go together"},
		{map[string]any{"channels": map[string]any{"ain0": map[string]any{"from": []any{4}, "to": []any{0, 1}}}}, "option channels: ain0: from: [4] is not a pair like [4, 20]"},
		{map[string]any{"channels": map[string]any{"ain0": map[string]any{"scale": 2}}}, "option channels: ain0: unknown option scale"},
	} {
		if _, err := Parse(tc.opts); err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%v) = %v\nwant %s", tc.opts, err, tc.want)
		}
	}
}
