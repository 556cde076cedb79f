package adapters

import (
	"fmt"
	"sort"

	"periph.io/x/conn/v3/i2c"
)

// Found is a device that answered an I²C probe.
type Found struct {
	Address uint16
	Chip    string // what it looks like, "" if no known chip id matched
}

// knownChips are identified by registers that hold fixed ids; each probe is a
// plain register read, as the drivers do, never a write.
var knownChips = []struct {
	lo, hi uint16
	probe  func(d *i2c.Dev) string
}{
	{0x76, 0x77, func(d *i2c.Dev) string { // BME280 datasheet 5.4.1: id 0xD0
		var b [1]byte
		if d.Tx([]byte{0xD0}, b[:]) != nil {
			return ""
		}
		return map[byte]string{0x60: "BME280", 0x58: "BMP280", 0x55: "BMP180"}[b[0]]
	}},
	{0x18, 0x1F, func(d *i2c.Dev) string { // MCP9808 datasheet 5.1.4: manufacturer 0x0054, device 0x04
		var m, id [2]byte
		if d.Tx([]byte{0x06}, m[:]) == nil && d.Tx([]byte{0x07}, id[:]) == nil && m == [2]byte{0, 0x54} && id[0] == 0x04 {
			return "MCP9808"
		}
		if d.Addr <= 0x1B {
			return "DS2482 1-Wire bridge?"
		}
		return ""
	}},
	{0x38, 0x38, func(d *i2c.Dev) string { return "AHT20?" }},
	{0x40, 0x4F, func(d *i2c.Dev) string { return "INA219?" }},
	{0x48, 0x4B, func(d *i2c.Dev) string { return "ADS1115?" }},
	{0x62, 0x62, func(d *i2c.Dev) string { return "SCD4x?" }},
	{0x44, 0x45, func(d *i2c.Dev) string { return "HDC302x/SHT3x?" }},
}

// ScanI2C probes every 7-bit address (0x08-0x77) of bus with a one-byte read
// and identifies known chips by their id registers. A "?" after a name means
// the address fits but the chip has no id register to confirm it.
func ScanI2C(bus i2c.Bus) []Found {
	var out []Found
	for a := uint16(0x08); a <= 0x77; a++ {
		d := &i2c.Dev{Bus: bus, Addr: a}
		var b [1]byte
		if d.Tx(nil, b[:]) != nil {
			continue
		}
		f := Found{Address: a}
		for _, k := range knownChips {
			if a >= k.lo && a <= k.hi {
				if name := k.probe(d); name != "" {
					f.Chip = name
					break
				}
			}
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func (f Found) String() string {
	if f.Chip == "" {
		return fmt.Sprintf("0x%02x  (unknown device)", f.Address)
	}
	return fmt.Sprintf("0x%02x  %s", f.Address, f.Chip)
}
