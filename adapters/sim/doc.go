// Package sim emulates the hardware the sensor adapters talk to, at the bus:
// I²C buses, SPI ports, 1-Wire buses and GPIO pins behind periph's own
// interfaces (i2c.Bus, spi.Port, onewire.Bus, gpio.PinIO), with
// register-level models of each supported chip (BME280/BMP280, DS18B20,
// DS2482-100, INA219, ADS1115, MCP9808, AHT20, SCD4x, HX711). The real
// periph.io drivers run unchanged over them, so the code path in a test is the
// code path in the field.
//
// Each model's quantities follow a Signal (base, daily cycle, drift, noise,
// min/max) on an injectable clock, and faults can be injected: the chip
// vanishes (NACK), the bus errors, values stick, read out of range, or a
// DS18B20 shows its 85 °C power-on value.
//
// There is no global state: a World holds one simulated hub's hardware.
// Register puts a World's buses into periph's (global) registries; the hub
// calls it once, explicitly. ManualClock is a fake clock for tests.
//
// Imports: periph conn and adapters/sensor only.
package sim
