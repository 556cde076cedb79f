package packet

import (
	"bufio"
	"bytes"
	"testing"
)

func benchPublish(version byte) *Publish {
	p := &Publish{QoS: 1, PacketID: 42, Topic: "sites/pump-station-7/sensors/mast/temperature", Payload: bytes.Repeat([]byte{'x'}, 64)}
	return p
}

// benchPublishProps is a v5 PUBLISH with the properties a request/response
// or JSON sender adds; decoding them allocates (pointers, strings).
func benchPublishProps() *Publish {
	p := benchPublish(V5)
	p.Props.ContentType = "application/json"
	p.Props.MessageExpiry = ptr(uint32(3600))
	return p
}

func benchmarkAppend(b *testing.B, p *Publish, version byte) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = Append(dst[:0], p, version); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(dst)))
}

func benchmarkDecode(b *testing.B, p *Publish, version byte) {
	wire, err := Append(nil, p, version)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, _, err := Decode(wire, version); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkDecodeInto(b *testing.B, p *Publish, version byte) {
	wire, err := Append(nil, p, version)
	if err != nil {
		b.Fatal(err)
	}
	var q Publish
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := DecodePublish(wire, version, &q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPublishV311(b *testing.B)        { benchmarkAppend(b, benchPublish(V311), V311) }
func BenchmarkAppendPublishV5(b *testing.B)          { benchmarkAppend(b, benchPublish(V5), V5) }
func BenchmarkAppendPublishV5Props(b *testing.B)     { benchmarkAppend(b, benchPublishProps(), V5) }
func BenchmarkDecodePublishV311(b *testing.B)        { benchmarkDecode(b, benchPublish(V311), V311) }
func BenchmarkDecodePublishV5(b *testing.B)          { benchmarkDecode(b, benchPublish(V5), V5) }
func BenchmarkDecodePublishV5Props(b *testing.B)     { benchmarkDecode(b, benchPublishProps(), V5) }
func BenchmarkDecodePublishIntoV311(b *testing.B)    { benchmarkDecodeInto(b, benchPublish(V311), V311) }
func BenchmarkDecodePublishIntoV5(b *testing.B)      { benchmarkDecodeInto(b, benchPublish(V5), V5) }
func BenchmarkDecodePublishIntoV5Props(b *testing.B) { benchmarkDecodeInto(b, benchPublishProps(), V5) }

func BenchmarkReadPacketPublishV311(b *testing.B) {
	wire, _ := Append(nil, benchPublish(V311), V311)
	stream := bytes.Repeat(wire, 1024)
	r := bytes.NewReader(stream)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if r.Len() == 0 && br.Buffered() == 0 {
			r.Reset(stream)
		}
		if _, err := ReadPacket(br, V311, 0); err != nil {
			b.Fatal(err)
		}
	}
}
