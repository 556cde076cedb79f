package sim

import "time"

// SCD4x models a Sensirion SCD40/SCD41 CO₂ sensor (I²C 0x62) in periodic
// measurement mode. Quantities "co2" (ppm), "temperature" (°C), "humidity" (%RH).
//
// Datasheet SCD4x v1.4 section 3.5: 16-bit commands, each data word followed
// by a CRC-8 (poly 0x31, init 0xFF; section 3.11); 0x21B1 start periodic,
// 0x3F86 stop, 0xE4B8 data ready (low 11 bits non-zero), 0xEC05 read
// (CO₂ ppm, T = −45 + 175·w/65535, RH = 100·w/65535), 0x36F6 wake up.
// Simplification: a measurement is always ready while periodic mode runs
// (the real part has one every 5 s; poll intervals shorter than that would
// re-read the same values).
type SCD4x struct {
	Chip
	sensing bool
	resp    []byte
}

// NewSCD4x returns the model (idle, as after power-on).
func NewSCD4x(now func() time.Time, seed string, signals map[string]Signal) *SCD4x {
	return &SCD4x{Chip: newChip(now, seed, signals)}
}

// Tx implements I2CDevice.
func (m *SCD4x) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := faultErr(m.fault); err != nil {
		return err
	}
	if len(w) >= 2 {
		m.resp = nil
		switch uint16(w[0])<<8 | uint16(w[1]) {
		case 0x21B1:
			m.sensing = true
		case 0x3F86:
			m.sensing = false
		case 0xE4B8:
			ready := uint16(0)
			if m.sensing {
				ready = 0x8006
			}
			m.resp = words(ready)
		case 0xEC05:
			co2 := clampInt(m.value("co2", 420), 0, 40000)
			t := clampInt((m.value("temperature", 21)+45)/175*65535, 0, 65535)
			h := clampInt(m.value("humidity", 45)/100*65535, 0, 65535)
			m.resp = words(uint16(co2), uint16(t), uint16(h))
		case 0x36F6, 0x3646:
		case 0xE000:
			m.resp = words(1013)
		default:
			if len(r) > 0 {
				m.resp = words(0, 0, 0)
			}
		}
	}
	copy(r, m.resp)
	return nil
}

func words(ws ...uint16) []byte {
	b := make([]byte, 0, 3*len(ws))
	for _, w := range ws {
		x := []byte{byte(w >> 8), byte(w)}
		b = append(b, x[0], x[1], crc8x31(x))
	}
	return b
}
