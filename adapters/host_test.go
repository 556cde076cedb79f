package adapters

import (
	"strings"
	"testing"
)

// On a machine without the hardware (a CI container, a laptop) periph's
// host.Init succeeds and registers nothing; opening a bus then gives an
// error that says so and how to fix it, not periph's "did you forget to
// call Init()?".
func TestHostBusesNoHardware(t *testing.T) {
	h := NewHostBuses()
	defer h.Close()
	if len(h.List("i2c")) > 0 {
		t.Skip("this machine has I²C buses")
	}
	_, err := h.I2C("1")
	want := `i2c bus "1" does not exist on this machine: it has no i2c buses (enable I²C (raspi-config, or dtparam=i2c_arm=on in config.txt) and check /dev/i2c-*; or add simulate: to run on an emulated bus)`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	// A hardware sensor on such a machine fails at open, with that reason on its status.
	a, err := New([]SensorConfig{{Name: "mast", Driver: "bme280", Bus: BusConfig{Type: "i2c", Name: "1"}}}, &recPub{}, Options{Hardware: h})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadNow(t.Context(), "mast"); err == nil || !strings.Contains(err.Error(), `i2c bus "1" does not exist on this machine`) {
		t.Fatalf("ReadNow: %v", err)
	}
}
