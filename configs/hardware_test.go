package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBuses is a machine with I2C bus 1 only.
type fakeBuses struct{}

func (fakeBuses) Has(typ, name string) error {
	if typ == "i2c" && name == "1" {
		return nil
	}
	return fmt.Errorf("%s bus %q does not exist on this machine (it has i2c: 1)", typ, name)
}

func (fakeBuses) List(typ string) []string {
	if typ == "i2c" {
		return []string{"1"}
	}
	return nil
}

// LoadOn names a hardware sensor whose bus the machine lacks, with its
// line; Load (no hardware) accepts the same file, and simulated sensors
// never need a bus.
func TestLoadOnChecksHardwareBuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.yaml")
	yaml := `sensors:
  - name: ok
    driver: bme280
    bus: {type: i2c, name: "1", address: 0x76}
  - name: attic
    driver: bme280
    bus: {type: i2c, name: "7", address: 0x77}
  - name: sim
    driver: bme280
    bus: {type: i2c, name: "9", address: 0x76}
    simulate: {temperature: 20}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err != nil {
		t.Fatalf("Load without the hardware check: %v", err)
	}
	_, err := LoadOn(path, nil, fakeBuses{})
	es, ok := err.(Errors)
	if !ok || len(es) != 1 {
		t.Fatalf("LoadOn = %v, want one error", err)
	}
	got := es[0].Error()
	if !strings.Contains(got, ":5: sensors[1]") || !strings.Contains(got, `i2c bus "7" does not exist`) {
		t.Fatalf("error %q does not name line 5, sensors[1] and the bus", got)
	}
}
