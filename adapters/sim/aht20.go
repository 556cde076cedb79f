package sim

import "time"

// AHT20 models an Aosong AHT20 humidity/temperature sensor (I²C 0x38).
// Quantities "temperature" (°C) and "humidity" (%RH).
//
// Datasheet AHT20 v1.0 section 5.4: status 0x71 (bit 3 calibrated, bit 7
// busy), 0xBE initialise, 0xAC 0x33 0x00 trigger, then 7 bytes: status,
// 20-bit humidity (RH = S/2²⁰·100 %), 20-bit temperature (T = S/2²⁰·200 − 50
// °C), CRC-8 (poly 0x31, init 0xFF).
type AHT20 struct {
	Chip
	calibrated bool
	data       [7]byte
}

// NewAHT20 returns the model, not yet initialised (as after power-on).
func NewAHT20(now func() time.Time, seed string, signals map[string]Signal) *AHT20 {
	m := &AHT20{Chip: newChip(now, seed, signals)}
	m.data[0] = 0x18 // power-on status: calibration loaded from OTP on real parts
	return m
}

// Tx implements I2CDevice.
func (m *AHT20) Tx(w, r []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := faultErr(m.fault); err != nil {
		return err
	}
	if len(w) > 0 {
		switch w[0] {
		case 0x71:
			m.status(r)
			return nil
		case 0xBE:
			m.calibrated = true
		case 0xBA:
			m.calibrated = false
		case 0xAC:
			m.measure()
		default:
			return errNACK
		}
	}
	if len(r) > 0 {
		copy(r, m.data[:])
	}
	return nil
}

func (m *AHT20) status(r []byte) {
	s := byte(0)
	if m.calibrated {
		s |= 0x08
	}
	for i := range r {
		r[i] = s
	}
}

func (m *AHT20) measure() {
	h := clampInt(m.value("humidity", 50)/100*(1<<20), 0, 1<<20-1)
	t := clampInt((m.value("temperature", 20)+50)/200*(1<<20), 0, 1<<20-1)
	s := byte(0)
	if m.calibrated {
		s = 0x08 // not busy: the 80 ms the driver waits covers the measurement
	}
	m.data = [7]byte{s, byte(h >> 12), byte(h >> 4), byte(h<<4) | byte(t>>16), byte(t >> 8), byte(t), 0}
	m.data[6] = crc8x31(m.data[:6])
}

// crc8x31 is the Sensirion/Aosong CRC-8: polynomial 0x31, init 0xFF.
func crc8x31(b []byte) byte {
	crc := byte(0xFF)
	for _, x := range b {
		crc ^= x
		for i := 0; i < 8; i++ {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x31
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
