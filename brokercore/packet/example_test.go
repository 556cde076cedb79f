package packet_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

func ExampleAppend() {
	var buf []byte // reuse across packets: Append allocates nothing once it is big enough
	buf, err := packet.Append(buf[:0], &packet.Publish{QoS: 1, PacketID: 10, Topic: "a/b", Payload: []byte("hi")}, packet.V311)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", buf)
	// Output: 32 09 00 03 61 2f 62 00 0a 68 69
}

func ExampleDecode() {
	wire := []byte{0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0a, 'h', 'i', 0xc0, 0x00}
	for len(wire) > 0 {
		p, n, err := packet.Decode(wire, packet.V311)
		if errors.Is(err, packet.ErrIncomplete) {
			break // read more bytes
		}
		if err != nil {
			fmt.Println(err, "-> reason code", packet.ReasonCode(err))
			return
		}
		switch p := p.(type) {
		case *packet.Publish:
			fmt.Printf("PUBLISH %s id %d %q\n", p.Topic, p.PacketID, p.Payload)
		default:
			fmt.Println(p.Type())
		}
		wire = wire[n:]
	}
	// Output:
	// PUBLISH a/b id 10 "hi"
	// PINGREQ
}

func ExampleReadPacket() {
	r := bufio.NewReader(bytes.NewReader([]byte{0x30, 0x7f, 0x00, 0x01, 't'}))
	_, err := packet.ReadPacket(r, packet.V5, 64) // this PUBLISH is 129 bytes
	fmt.Println(err)
	fmt.Printf("reason code 0x%02X\n", packet.ReasonCode(err))
	// Output:
	// read PUBLISH: 129 bytes over maximum packet size 64: packet too large
	// reason code 0x95
}
