package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/outpost-iot/outpost/adapters"
)

func runSensors(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newSensorsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestSensorsList(t *testing.T) {
	t.Setenv("OUTPOST_DATA_DIR", t.TempDir())
	out, err := runSensors(t, "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NAME", "weather", "bme280", "i2c 1 @0x76", "sensors/weather", "simulated", "rain", "gpio GPIO17"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
}

func TestSensorsRead(t *testing.T) {
	t.Setenv("OUTPOST_DATA_DIR", t.TempDir())
	out, err := runSensors(t, "read", "weather")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"temperature", "°C", "humidity", "%", "pressure", "hPa"} {
		if !strings.Contains(out, want) {
			t.Errorf("read output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runSensors(t, "read", "nope"); err == nil || !strings.Contains(err.Error(), `no sensor called "nope" (have: weather, water, rain)`) {
		t.Fatalf("read nope: %v", err)
	}
}

// Scan with no hardware says so and still finds the emulated chips.
func TestSensorsScan(t *testing.T) {
	var out bytes.Buffer
	err := sensorsScan(&out, adapters.DefaultSensors(), adapters.NewHostBuses())
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"Hardware buses (periph):", "Simulated buses", "SIM-I2C1", "i2c SIM-I2C1: 0x76  BME280", "onewire SIM-W1-w1: 28-"} {
		if !strings.Contains(s, want) {
			t.Errorf("scan output lacks %q:\n%s", want, s)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		v    adapters.Value
		want string
	}{
		{adapters.Value{Value: 101325, Unit: "Pa"}, "1013.25 hPa"},
		{adapters.Value{Value: 0.0123, Unit: "A"}, "12.3 mA"},
		{adapters.Value{Value: 21.456, Unit: "°C"}, "21.46 °C"},
		{adapters.Value{Value: 1}, "1"},
		{adapters.Value{Value: 1.3970, Unit: "mm"}, "1.397 mm"},
	} {
		if got := Human(tc.v); got != tc.want {
			t.Errorf("Human(%+v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
