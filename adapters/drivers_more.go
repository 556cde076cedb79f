package adapters

import (
	"fmt"

	"github.com/outpost-iot/outpost/adapters/ads1115"
	"github.com/outpost-iot/outpost/adapters/aht20"
	"github.com/outpost-iot/outpost/adapters/hx711"
	"github.com/outpost-iot/outpost/adapters/ina219"
	"github.com/outpost-iot/outpost/adapters/mcp3008"
	"github.com/outpost-iot/outpost/adapters/mcp9808"
	"github.com/outpost-iot/outpost/adapters/scd4x"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// moreDrivers lists the second-tier drivers: power, ADC, precision
// temperature, humidity.
func moreDrivers() []driver {
	return []driver{
		{name: "ina219", buses: []string{"i2c"}, addrs: [2]uint16{0x40, 0x4F}, defAddr: 0x40,
			check: checker(ina219.Parse), open: opener(ina219.Open), simulate: []string{"voltage", "current"},
			doc: "TI INA219 bus voltage, current, power"},
		{name: "ads1115", buses: []string{"i2c"}, addrs: [2]uint16{0x48, 0x4B}, defAddr: 0x48,
			check: checker(ads1115.Parse), open: opener(ads1115.Open), simulate: []string{"*"},
			doc: "TI ADS1115 4-channel ADC with 4-20 mA / 0-10 V scaling"},
		{name: "mcp9808", buses: []string{"i2c"}, addrs: [2]uint16{0x18, 0x1F}, defAddr: 0x18,
			check: checker(mcp9808.Parse), open: opener(mcp9808.Open), simulate: []string{"temperature"},
			doc: "Microchip MCP9808 precision temperature"},
		{name: "aht20", buses: []string{"i2c"}, addrs: [2]uint16{0x38, 0x38}, defAddr: 0x38,
			check: checker(aht20.Parse), open: opener(aht20.Open), simulate: []string{"temperature", "humidity"},
			doc: "Aosong AHT20 humidity, temperature"},
		{name: "scd4x", buses: []string{"i2c"}, addrs: [2]uint16{0x62, 0x62}, defAddr: 0x62,
			check: checker(scd4x.Parse), open: opener(scd4x.Open), simulate: []string{"co2", "temperature", "humidity"},
			doc: "Sensirion SCD40/SCD41 CO2, temperature, humidity"},
		{name: "hx711", buses: []string{"gpio"},
			check: checker(hx711.Parse), open: opener(hx711.Open), simulate: []string{"weight"},
			doc: "Avia HX711 load cell (tank weight) on two GPIO pins"},
		{name: "mcp3008", buses: []string{"spi"},
			check: checker(mcp3008.Parse), open: opener(mcp3008.Open),
			simulate: []string{"ch0", "ch1", "ch2", "ch3", "ch4", "ch5", "ch6", "ch7"},
			doc:      "Microchip MCP3008 8-channel 10-bit SPI ADC"},
	}
}

// attachMore builds the chip model of a second-tier driver on the world's
// I²C bus.
func attachMore(w *sim.World, d driver, c SensorConfig, signals map[string]sim.Signal, addr uint16) (faulter, error) {
	var m interface {
		sim.I2CDevice
		faulter
	}
	switch d.name {
	case "ina219":
		x := sim.NewINA219(w.Now, c.Name, signals)
		cfg, err := ina219.Parse(c.Options)
		if err != nil {
			return nil, err
		}
		x.ShuntOhms = cfg.ShuntOhms
		m = x
	case "ads1115":
		// Simulated values may be given per channel name in engineering
		// units; the model wants the voltage at each pin.
		cfg, err := ads1115.Parse(c.Options)
		if err != nil {
			return nil, err
		}
		pins := map[string]sim.Signal{}
		for k, s := range signals {
			pins[k] = s
		}
		for _, ch := range cfg.Channels {
			s, ok := signals[ch.Name]
			if !ok {
				continue
			}
			v := s
			v.Base = ch.Unscale(s.Base)
			zero := ch.Unscale(0)
			v.Daily = ch.Unscale(s.Daily) - zero
			v.Drift = ch.Unscale(s.Drift) - zero
			v.Noise = ch.Unscale(s.Noise) - zero
			v.Min, v.Max = nil, nil
			pins[fmt.Sprintf("ain%d", ch.Input)] = v
		}
		m = sim.NewADS1115(w.Now, c.Name, pins)
	case "mcp9808":
		m = sim.NewMCP9808(w.Now, c.Name, signals)
	case "aht20":
		m = sim.NewAHT20(w.Now, c.Name, signals)
	case "mcp3008":
		x := sim.NewMCP3008(w.Now, c.Name, signals)
		cfg, err := mcp3008.Parse(c.Options)
		if err != nil {
			return nil, err
		}
		x.VRef = cfg.VRef
		w.AddSPI(c.Bus.Name).SetDevice(x)
		return x, nil
	case "scd4x":
		m = sim.NewSCD4x(w.Now, c.Name, signals)
	case "hx711":
		cfg, err := hx711.Parse(c.Options)
		if err != nil {
			return nil, err
		}
		x := sim.NewHX711(w.Now, c.Name, signals, cfg.ClockPin, c.Bus.Name, cfg.Tare, cfg.Scale)
		w.AttachPin(x.Clk)
		w.AttachPin(x.Data)
		return x, nil
	default:
		return nil, fmt.Errorf("no chip model for driver %s", d.name)
	}
	w.AddI2C(c.Bus.Name).Attach(addr, m)
	return m, nil
}
