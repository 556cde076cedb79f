package snpacket_test

import (
	"fmt"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

func Example() {
	// A client publishes "21.5" at QoS 1 to topic id 3 (section 5.4.12).
	b, _ := snpacket.Encode(&snpacket.Publish{Flags: snpacket.Flags{QoS: 1}, TopicID: 3, MsgID: 7, Data: []byte("21.5")})
	fmt.Printf("% X\n", b)

	p, n, err := snpacket.Decode(b)
	if err != nil {
		panic(err)
	}
	pub := p.(*snpacket.Publish)
	fmt.Println(p.Type(), n, pub.Flags.QoS, pub.TopicID, string(pub.Data))
	// Output:
	// 0B 0C 20 00 03 00 07 32 31 2E 35
	// PUBLISH 11 1 3 21.5
}
