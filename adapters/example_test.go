package adapters_test

import (
	"context"
	"fmt"

	"github.com/outpost-iot/outpost/adapters"
	"github.com/outpost-iot/outpost/brokercore/msg"
)

type printPub struct{}

func (printPub) Publish(_ context.Context, m msg.Message) error {
	fmt.Println(m.Topic)
	return nil
}

// A simulated BME280 read once, through the real periph driver over the
// emulated chip: the same call `outpost sensors read` makes.
func ExampleAdapters_ReadNow() {
	cfgs := []adapters.SensorConfig{{
		Name: "mast", Driver: "bme280",
		Bus:      adapters.BusConfig{Type: "i2c", Name: "1", Address: 0x76},
		Simulate: map[string]any{"temperature": 21.5, "humidity": 40, "pressure": 101325},
	}}
	a, err := adapters.New(cfgs, printPub{}, adapters.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	r, err := a.ReadNow(context.Background(), "mast")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range r.Values {
		fmt.Printf("%s %.1f %s\n", v.Quantity, v.Value, v.Unit)
	}
	// Output:
	// temperature 21.5 °C
	// humidity 40.0 %
	// pressure 101324.9 Pa
}

// Validate names the sensor and the problem.
func ExampleValidate() {
	err := adapters.Validate([]adapters.SensorConfig{{
		Name: "tank", Driver: "ds18b20", Bus: adapters.BusConfig{Type: "spi", Name: "0.0"},
	}})
	fmt.Println(err)
	// Output:
	// sensor "tank": driver ds18b20 does not work on a spi bus (use onewire or i2c)
}
