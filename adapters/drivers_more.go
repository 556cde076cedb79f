package adapters

import (
	"fmt"

	"github.com/outpost-iot/outpost/adapters/sim"
)

// moreDrivers lists the second-tier drivers (power, ADC, precision
// temperature, humidity, CO₂, load cell).
func moreDrivers() []driver {
	return nil
}

// attachMore attaches the chip model of a second-tier driver.
func attachMore(w *sim.World, d driver, c SensorConfig, signals map[string]sim.Signal, addr uint16) (faulter, error) {
	return nil, fmt.Errorf("no chip model for driver %s", d.name)
}
