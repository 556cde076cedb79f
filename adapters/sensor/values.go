package sensor

import (
	"errors"
	"fmt"
	"strings"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Units used in readings. Temperatures are in °C (what every field engineer
// reads), everything else in SI units.
const (
	UnitCelsius = "°C"
	UnitPascal  = "Pa"
	UnitPercent = "%"
	UnitVolt    = "V"
	UnitAmpere  = "A"
	UnitWatt    = "W"
	UnitPPM     = "ppm"
	UnitKg      = "kg"
)

// Celsius converts a periph temperature to °C. (physic.Celsius is a
// temperature difference of one kelvin, not a point on the scale: use
// Temperature.Celsius.)
func Celsius(t physic.Temperature) float64 { return t.Celsius() }

// Pascals converts a periph pressure to Pa.
func Pascals(p physic.Pressure) float64 { return float64(p) / float64(physic.Pascal) }

// Percent converts a periph relative humidity to %RH.
func Percent(h physic.RelativeHumidity) float64 { return float64(h) / float64(physic.PercentRH) }

// Volts converts a periph potential to V.
func Volts(v physic.ElectricPotential) float64 { return float64(v) / float64(physic.Volt) }

// Amperes converts a periph current to A.
func Amperes(i physic.ElectricCurrent) float64 { return float64(i) / float64(physic.Ampere) }

// Watts converts a periph power to W.
func Watts(p physic.Power) float64 { return float64(p) / float64(physic.Watt) }

// CheckRanges returns an error naming every value outside its range (ranges
// without an entry are not checked).
func CheckRanges(vals []Value, ranges map[string]Range) error {
	var errs []string
	for _, v := range vals {
		if r, ok := ranges[v.Quantity]; ok {
			if err := r.Check(v.Quantity, v.Value, v.Unit); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// OpenError wraps an error from opening a bus with the bus named.
func OpenError(b BusRef, err error) error {
	return fmt.Errorf("open %s bus %q: %w", b.Type, b.Name, err)
}

// I2CCause adds the bus-level reason to an error from a periph driver that
// drops it (mcp9808 and ina219 return "failed to read temperature" without
// the I²C error): it reads one byte from register reg of the chip and, if
// that fails too, appends that error, which names the bus and the fault.
func I2CCause(b i2c.Bus, addr uint16, reg byte, err error) error {
	var r [1]byte
	if perr := b.Tx(addr, []byte{reg}, r[:]); perr != nil {
		return fmt.Errorf("%v: %w", err, perr)
	}
	return err
}
