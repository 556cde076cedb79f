//go:build linux

package snbridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/outpost-iot/outpost/snbridge/snpacket"
)

// openPTY opens a pseudo-terminal pair the way posix_openpt, grantpt,
// unlockpt and ptsname do: /dev/ptmx, TIOCSPTLCK, TIOCGPTN.
func openPTY(t *testing.T) (master *os.File, slave string) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

// radio is the far end of the serial line: a node (or a forwarder) that
// speaks SLIP-framed MQTT-SN through the pty master.
type radio struct {
	t      *testing.T
	w      io.Writer
	frames chan []byte
}

func newRadio(t *testing.T, m *os.File) *radio {
	r := &radio{t: t, w: m, frames: make(chan []byte, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rd := newSLIPReader(m, 65535)
		buf := make([]byte, 65535)
		for {
			n, err := rd.readFrame(buf)
			if errors.Is(err, errSlipFrame) {
				continue
			}
			if err != nil {
				return // the master was closed
			}
			select {
			case r.frames <- append([]byte(nil), buf[:n]...):
			default:
				t.Errorf("radio: frame from the gateway not read by the test")
			}
		}
	}()
	t.Cleanup(func() { m.Close(); <-done })
	return r
}

func (r *radio) sendRaw(b []byte) {
	r.t.Helper()
	if _, err := r.w.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *radio) send(p snpacket.Packet) {
	r.t.Helper()
	b, err := snpacket.Encode(p)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendRaw(appendSLIP(nil, b))
}

func (r *radio) next(want snpacket.MsgType) snpacket.Packet {
	r.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case b := <-r.frames:
			p, n, err := snpacket.Decode(b)
			if err != nil || n != len(b) {
				r.t.Fatalf("bad frame from gateway % X: %v", b, err)
			}
			if p.Type() == want {
				return p
			}
		case <-deadline:
			r.t.Fatalf("no %s on the serial line", want)
		}
	}
}

// TestSerialTransport runs CONNECT, REGISTER, PUBLISH, a forwarder's
// encapsulated node and ADVERTISE over SLIP on a pseudo-terminal.
func TestSerialTransport(t *testing.T) {
	master, slave := openPTY(t)
	e := start(t, func(c *Config) {
		c.Serial = &SerialConfig{Device: slave, Baud: 9600}
		c.AdvertiseInterval = time.Minute
		c.GatewayID = 9
	})
	rec := e.record(t, "#", 1)
	r := newRadio(t, master)
	if a := r.next(snpacket.TypeAdvertise).(*snpacket.Advertise); a.GatewayID != 9 || a.Duration != 60 {
		t.Errorf("ADVERTISE on the serial line %+v", a)
	}
	// Line noise before the first frame, then CONNECT.
	r.sendRaw([]byte{0x55, 0xAA, 0x13})
	r.send(&snpacket.Connect{Flags: snpacket.Flags{CleanSession: true}, ProtocolID: 1, Duration: 30, ClientID: "uart-node"})
	if ca := r.next(snpacket.TypeConnack).(*snpacket.Connack); ca.ReturnCode != snpacket.Accepted {
		t.Fatalf("CONNACK %v", ca.ReturnCode)
	}
	r.send(&snpacket.Register{MsgID: 1, TopicName: "radio/temp"})
	ra := r.next(snpacket.TypeRegack).(*snpacket.Regack)
	// A payload holding both SLIP specials goes through escaped.
	payload := []byte{0xC0, 0xDB, 0x01, 0xC0}
	r.send(&snpacket.Publish{Flags: snpacket.Flags{QoS: 1}, TopicID: ra.TopicID, MsgID: 2, Data: payload})
	if pa := r.next(snpacket.TypePuback).(*snpacket.Puback); pa.ReturnCode != snpacket.Accepted || pa.MsgID != 2 {
		t.Fatalf("PUBACK %+v", pa)
	}
	if m := rec.wait(t, 1)[0]; m.Topic != "radio/temp" || !bytes.Equal(m.Payload, payload) {
		t.Errorf("published %+v", m)
	}
	// A frame with an invalid escape is dropped and counted.
	before := e.g.Stats().Drops["malformed"]
	r.sendRaw([]byte{slipEnd, 0x02, slipEsc, 0x01, slipEnd})
	eventually(t, "bad frame counted", func() bool { return e.g.Stats().Drops["malformed"] == before+1 })

	// A forwarder on the same line relays node 0x0A01 (section 5.5).
	inner, _ := snpacket.Encode(&snpacket.Connect{Flags: snpacket.Flags{CleanSession: true}, ProtocolID: 1, Duration: 30, ClientID: "behind-fwd"})
	r.send(&snpacket.Encapsulated{Ctrl: 1, NodeID: []byte{0x0A, 0x01}, Msg: inner})
	enc := r.next(snpacket.TypeEncapsulated).(*snpacket.Encapsulated)
	if !bytes.Equal(enc.NodeID, []byte{0x0A, 0x01}) {
		t.Fatalf("reply to node % X", enc.NodeID)
	}
	if p, _, err := snpacket.Decode(enc.Msg); err != nil || p.(*snpacket.Connack).ReturnCode != snpacket.Accepted {
		t.Fatalf("encapsulated reply %v %v", p, err)
	}
	if st := e.g.Stats(); st.Active != 2 {
		t.Errorf("stats %+v, want the UART node and the forwarded node", st)
	}
}
