package packet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MaxPacketSize is the largest whole packet the protocol allows: a one-byte
// type, a four-byte Remaining Length and MaxRemainingLength bytes.
const MaxPacketSize = 1 + 4 + MaxRemainingLength

// ReadPacket reads one packet from r and decodes it for version. maxSize
// bounds the whole packet, fixed header included (0 = MaxPacketSize); a
// larger packet returns an error wrapping ErrPacketTooLarge before its body
// is read, so the caller can answer and close. It allocates one fresh buffer
// per packet and byte-slice fields alias it, so the caller may keep them.
//
// io.EOF is returned as is when r ends cleanly before a packet starts;
// io.ErrUnexpectedEOF (wrapped) when it ends inside one.
func ReadPacket(r *bufio.Reader, version byte, maxSize int) (Packet, error) {
	b, err := ReadRaw(r, maxSize)
	if err != nil {
		return nil, err
	}
	p, _, err := Decode(b, version)
	return p, err
}

// ReadRaw reads the bytes of one whole packet (fixed header included) from
// r into a fresh buffer, without decoding them; see ReadPacket.
func ReadRaw(r *bufio.Reader, maxSize int) ([]byte, error) {
	if maxSize <= 0 || maxSize > MaxPacketSize {
		maxSize = MaxPacketSize
	}
	var hdr [5]byte
	c, err := r.ReadByte()
	if err != nil {
		return nil, err // io.EOF: clean end between packets
	}
	hdr[0] = c
	hl := 1
	var rl int
	for {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read %v: remaining length: %w", Type(hdr[0]>>4), err)
		}
		hdr[hl] = c
		hl++
		v, _, verr := readVarint(hdr[1:hl])
		if verr == nil {
			rl = int(v)
			break
		}
		if verr != ErrIncomplete {
			return nil, fmt.Errorf("read %v: remaining length: %w", Type(hdr[0]>>4), verr)
		}
	}
	if hl+rl > maxSize {
		return nil, fmt.Errorf("read %v: %d bytes over maximum packet size %d: %w", Type(hdr[0]>>4), hl+rl, maxSize, ErrPacketTooLarge)
	}
	b := make([]byte, hl+rl)
	copy(b, hdr[:hl])
	if _, err := io.ReadFull(r, b[hl:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %v: %d byte body: %w", Type(hdr[0]>>4), rl, err)
	}
	return b, nil
}
