package adapters

import (
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/outpost-iot/outpost/adapters/ds18b20"
	"github.com/outpost-iot/outpost/adapters/sensor"
	"github.com/outpost-iot/outpost/adapters/sim"
)

// faulter is a chip model that takes injected faults.
type faulter interface{ SetFault(sim.Fault) }

// attachSim builds the chip model of a simulated sensor from its simulate:
// map and attaches it to the world's bus of the configured name.
func attachSim(w *sim.World, d driver, c SensorConfig) error {
	signals := map[string]sim.Signal{}
	fault := sim.FaultNone
	for k, v := range c.Simulate {
		if k == "fault" {
			s, _ := v.(string)
			f, err := sim.ParseFault(s)
			if err != nil {
				return err
			}
			fault = f
			continue
		}
		s, err := sim.ParseSignal(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		signals[k] = s
	}
	now := w.Now
	addr := d.address(c.Bus)
	var chip faulter
	attachI2C := func(m interface {
		sim.I2CDevice
		faulter
	}) {
		w.AddI2C(c.Bus.Name).Attach(addr, m)
		chip = m
	}
	switch d.name {
	case "bme280", "bmp280":
		m := sim.NewBME280(now, c.Name, signals, d.name == "bmp280")
		if c.Bus.Type == "spi" {
			w.AddSPI(c.Bus.Name).SetDevice(m)
			chip = m
		} else {
			attachI2C(m)
		}
	case "ds18b20":
		cfg, err := ds18b20.Parse(c.Options)
		if err != nil {
			return err
		}
		var link *sim.OneWireLink
		if c.Bus.Type == "i2c" {
			link = sim.NewOneWireLink()
			br := sim.NewDS2482(link)
			w.AddI2C(c.Bus.Name).Attach(addr, br)
		} else {
			link = w.AddOneWire(c.Bus.Name).Link()
		}
		var probes []*sim.DS18B20
		if len(cfg.Probes) == 0 {
			probes = append(probes, sim.NewDS18B20(now, c.Name, 0, signalFor(signals, "temperature", 20)))
		}
		for q, rom := range cfg.Probes {
			p := sim.NewDS18B20(now, c.Name+"/"+q, uint64(rom)>>8&0xFFFFFFFFFFFF, signalFor(signals, q, 20))
			probes = append(probes, p)
		}
		for _, p := range probes {
			link.Attach(p)
			p.SetFault(fault)
		}
		return nil
	case "gpio-counter":
		pin := w.AddPin(c.Bus.Name)
		rate := signals["rate"].Base
		width := time.Duration(signals["width"].Base * float64(time.Second))
		pin.SetPulses(now, rate, width, int(signals["bounce"].Base))
		return nil
	case "gpio-input":
		pin := w.AddPin(c.Bus.Name)
		if s, ok := signals["state"]; ok {
			pin.Set(gpio.Level(s.Base != 0))
		}
		return nil
	case "gpio-output":
		w.AddPin(c.Bus.Name)
		return nil
	default:
		m, err := attachMore(w, d, c, signals, addr)
		if err != nil {
			return err
		}
		chip = m
	}
	if chip != nil {
		chip.SetFault(fault)
	}
	return nil
}

func signalFor(m map[string]sim.Signal, q string, def float64) sim.Signal {
	if s, ok := m[q]; ok {
		return s
	}
	if s, ok := m["temperature"]; ok {
		return s
	}
	return sim.Constant(def)
}

var _ = sensor.UnitCelsius
