package brokercore

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// flakyReader returns a timeout-like error before every other read, as a
// read deadline set to wake the reader would.
type flakyReader struct {
	r    io.Reader
	fail bool
}

var errWake = errors.New("wake")

func (f *flakyReader) Read(p []byte) (int, error) {
	f.fail = !f.fail
	if f.fail {
		return 0, errWake
	}
	return f.r.Read(p)
}

// inbuf frames packets of every size across any read boundaries, keeps
// what it read across a read error, and returns to its small array when
// drained.
func TestInbufFraming(t *testing.T) {
	var stream []byte
	var want [][]byte
	for _, size := range []int{0, 1, 100, smallRead - 10, smallRead, smallRead + 1, poolBufSize, 3 * poolBufSize, maxPoolBuf + 5, 20} {
		b, err := packet.Append(nil, &packet.Publish{Topic: "t", Payload: bytes.Repeat([]byte{byte(size)}, size)}, packet.V311)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
		want = append(want, b)
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"bytewise": iotest.OneByteReader(bytes.NewReader(stream)),
		"halves":   iotest.HalfReader(bytes.NewReader(stream)),
		"errors":   &flakyReader{r: iotest.HalfReader(bytes.NewReader(stream))},
	} {
		t.Run(name, func(t *testing.T) {
			var x inbuf
			x.init(r)
			for i := 0; i < len(want); {
				got, err := x.next(packet.MaxPacketSize)
				if errors.Is(err, errWake) {
					continue
				}
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(got, want[i]) {
					t.Fatalf("packet %d: %d bytes, want %d", i, len(got), len(want[i]))
				}
				i++
			}
			for {
				_, err := x.next(packet.MaxPacketSize)
				if errors.Is(err, errWake) {
					continue
				}
				if err != io.EOF {
					t.Fatalf("at the end: %v, want io.EOF", err)
				}
				break
			}
			if x.pool != nil || len(x.b) > smallRead {
				t.Error("drained reader still holds a big buffer")
			}
		})
	}
	var x inbuf
	x.init(bytes.NewReader(want[3][:len(want[3])-1]))
	if _, err := x.next(packet.MaxPacketSize); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("end inside a packet: %v, want io.ErrUnexpectedEOF", err)
	}
	x.init(bytes.NewReader(want[5]))
	if _, err := x.next(100); !errors.Is(err, packet.ErrPacketTooLarge) {
		t.Errorf("over the maximum: %v, want ErrPacketTooLarge", err)
	}
}

// TestInbufDropAndFillWith: a parked reader gives back every buffer
// (drop); fillWith reads what is waiting without a wait and reports
// whether anything came; framing carries on from there.
func TestInbufDropAndFillWith(t *testing.T) {
	ping, _ := packet.Append(nil, &packet.PingReq{}, packet.V311)
	pub, _ := packet.Append(nil, &packet.Publish{Topic: "a/b", Payload: bytes.Repeat([]byte("x"), 3*smallRead)}, packet.V311)
	var x inbuf
	stream := bytes.NewReader(append(append([]byte(nil), ping...), pub...))
	x.init(stream)
	nothing := func([]byte) (int, error) { return 0, nil }
	if got, err := x.fillWith(nothing); got || err != nil {
		t.Fatalf("fillWith with nothing waiting: %v %v", got, err)
	}
	x.drop()
	if x.b != nil || x.small != nil || x.pool != nil {
		t.Fatal("dropped reader still holds a buffer")
	}
	if got, err := x.fillWith(stream.Read); !got || err != nil {
		t.Fatalf("fillWith with bytes waiting: %v %v", got, err)
	}
	if p, err := x.next(packet.MaxPacketSize); err != nil || !bytes.Equal(p, ping) {
		t.Fatalf("first packet %x, %v", p, err)
	}
	if p, err := x.next(packet.MaxPacketSize); err != nil || !bytes.Equal(p, pub) {
		t.Fatalf("second packet: %d bytes, %v", len(p), err)
	}
	x.drop()
	if _, err := x.next(packet.MaxPacketSize); err != io.EOF {
		t.Fatalf("after drop at the end: %v, want io.EOF", err)
	}
}
