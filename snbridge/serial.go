package snbridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"go.bug.st/serial"
)

// serialTransport carries SLIP-framed MQTT-SN messages over a UART (a radio
// modem in transparent mode). The line is one peer; nodes behind a
// forwarder are told apart by the encapsulation of section 5.5.
type serialTransport struct {
	port   io.ReadWriteCloser
	addr   serialAddr
	rd     *slipReader
	wmu    sync.Mutex
	wbuf   []byte
	closed chan struct{}
	once   sync.Once
}

// serialAddr names the serial line as a peer address.
type serialAddr string

func (a serialAddr) Network() string { return "serial" }
func (a serialAddr) String() string  { return string(a) }

// openSerial opens device at baud, 8N1.
func openSerial(device string, baud int) (*serialTransport, error) {
	p, err := serial.Open(device, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("open serial %s at %d baud: %w", device, baud, err)
	}
	return newSerialTransport(p, device), nil
}

func newSerialTransport(rw io.ReadWriteCloser, name string) *serialTransport {
	return &serialTransport{port: rw, addr: serialAddr(name), rd: newSLIPReader(rw, 65535), closed: make(chan struct{})}
}

// errFrame marks a bad frame that was skipped; the read loop counts it and
// goes on.
type errFrame struct{ err error }

func (e errFrame) Error() string { return e.err.Error() }
func (e errFrame) Unwrap() error { return e.err }

func (s *serialTransport) ReadPacket(buf []byte) (int, net.Addr, error) {
	n, err := s.rd.readFrame(buf)
	if err != nil {
		select {
		case <-s.closed:
			return 0, nil, net.ErrClosed
		default:
		}
		if errors.Is(err, errSlipFrame) {
			return 0, s.addr, errFrame{err}
		}
		return 0, nil, fmt.Errorf("read serial %s: %w", s.addr, err)
	}
	return n, s.addr, nil
}

func (s *serialTransport) WritePacket(b []byte, _ net.Addr) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf = appendSLIP(s.wbuf[:0], b)
	if _, err := s.port.Write(s.wbuf); err != nil {
		return fmt.Errorf("write serial %s: %w", s.addr, err)
	}
	return nil
}

func (s *serialTransport) LocalAddr() net.Addr { return s.addr }

func (s *serialTransport) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.port.Close()
	})
	return err
}
