package sim

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/onewire/onewirereg"
	"periph.io/x/devices/v3/bmxx80"
)

// Register puts a world's buses in periph's registries so periph programs
// open them by name like hardware; a second call changes nothing. (periph's
// registries are process-global: this test uses names no other test uses.)
func TestRegisterIdempotent(t *testing.T) {
	w := NewWorld(nil)
	w.AddI2C("91").Attach(0x76, NewBME280(w.Now, "r", map[string]Signal{"temperature": Constant(19)}, false))
	w.AddOneWire("reg")
	w.AddPin("GPIO91")
	for i := 0; i < 2; i++ {
		if err := Register(w); err != nil {
			t.Fatalf("Register #%d: %v", i+1, err)
		}
	}
	bus, err := i2creg.Open("SIM-I2C91")
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	dev, err := bmxx80.NewI2C(bus, 0x76, &bmxx80.DefaultOpts)
	if err != nil {
		t.Fatalf("bmxx80 over the registered bus: %v", err)
	}
	if dev.String() == "" {
		t.Fatal("no device")
	}
	if _, err := onewirereg.Open("SIM-W1-reg"); err != nil {
		t.Fatal(err)
	}
	if gpioreg.ByName("SIM-GPIO91") == nil {
		t.Fatal("pin not registered")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range [][3]string{
		{"i2c", "1", "SIM-I2C1"}, {"i2c", "I2C1", "SIM-I2C1"}, {"i2c", "SIM-I2C4", "SIM-I2C4"},
		{"spi", "0.0", "SIM-SPI0.0"}, {"spi", "SPI0.1", "SIM-SPI0.1"},
		{"gpio", "GPIO17", "SIM-GPIO17"}, {"gpio", "17", "SIM-GPIO17"}, {"onewire", "w1", "SIM-W1-w1"},
	} {
		if got := Name(tc[0], tc[1]); got != tc[2] {
			t.Errorf("Name(%s, %s) = %s, want %s", tc[0], tc[1], got, tc[2])
		}
	}
}

// The 1-Wire search finds every probe on a bus, through the link model.
func TestOneWireSearch(t *testing.T) {
	w := NewWorld(nil)
	b := w.AddOneWire("s")
	want := map[uint64]bool{}
	for i := uint64(1); i <= 5; i++ {
		p := NewDS18B20(w.Now, "", i*0x1111, Constant(1))
		b.Link().Attach(p)
		want[uint64(p.ROM())] = true
	}
	got, err := b.Search(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("found %d of 5", len(got))
	}
	for _, a := range got {
		if !want[uint64(a)] {
			t.Errorf("found unknown ROM %x", a)
		}
	}
}

// A pulse source makes presses (with bounce) on schedule from the clock.
func TestPulseSource(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := NewPin("SIM-GPIO3", 3)
	p.In(gpio.PullUp, gpio.BothEdges)
	p.SetPulses(clock.Now, 6, 100*time.Millisecond, 2) // every 10 s, 100 ms low, 2 bounces
	if p.WaitForEdge(0) || p.Read() != gpio.High {
		t.Fatal("edge before the first pulse")
	}
	clock.Advance(10 * time.Second)
	if !p.WaitForEdge(0) || p.Read() != gpio.Low {
		t.Fatal("no press at 10 s")
	}
	clock.Advance(100 * time.Millisecond)
	if !p.WaitForEdge(0) || p.Read() != gpio.High {
		t.Fatal("no release at 10.1 s")
	}
	clock.Advance(30 * time.Second) // three more pulses, all seen as one wake-up
	if !p.WaitForEdge(0) || p.Read() != gpio.High {
		t.Fatal("pulses at 20, 30, 40 s not seen")
	}
}
