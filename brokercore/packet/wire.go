package packet

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// reader walks the variable header and payload of one packet. Every method
// reports failure as the sentinel to wrap (ErrMalformed or ErrProtocol); the
// caller adds the packet and field names.
type reader struct {
	b   []byte
	off int
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) byte1() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrMalformed
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) uint16() (uint16, error) {
	if r.left() < 2 {
		return 0, ErrMalformed
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *reader) uint32() (uint32, error) {
	if r.left() < 4 {
		return 0, ErrMalformed
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

// binary reads Binary Data (section 1.5.6): a two-byte length and that many
// bytes. The result aliases the packet buffer, capacity clipped so an append
// by the caller cannot overwrite what follows.
func (r *reader) binary() ([]byte, error) {
	n, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if r.left() < int(n) {
		return nil, ErrMalformed
	}
	end := r.off + int(n)
	v := r.b[r.off:end:end]
	r.off = end
	return v, nil
}

// string reads a UTF-8 Encoded String (section 1.5.4): it must be well
// formed UTF-8 without surrogates [MQTT-1.5.4-1] and must not hold U+0000
// [MQTT-1.5.4-2]. Both are Malformed Packets.
func (r *reader) string() (string, error) {
	b, err := r.binary()
	if err != nil {
		return "", err
	}
	if !validString(b) {
		return "", ErrMalformed
	}
	return string(b), nil
}

// varint reads a Variable Byte Integer (section 1.5.5): at most four bytes
// and the minimum number of them [MQTT-1.5.5-1].
func (r *reader) varint() (uint32, error) {
	v, n, err := readVarint(r.b[r.off:])
	if err != nil {
		if err == ErrIncomplete {
			err = ErrMalformed
		}
		return 0, err
	}
	r.off += n
	return v, nil
}

// readVarint decodes a Variable Byte Integer at the start of b. It returns
// ErrIncomplete when b ends inside a (so far valid) integer and ErrMalformed
// for a fifth byte or a non-minimal encoding.
func readVarint(b []byte) (uint32, int, error) {
	var v uint32
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, ErrIncomplete
		}
		c := b[i]
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			// A last byte of 0 after the first one means a shorter
			// encoding existed [MQTT-1.5.5-1].
			if i > 0 && c == 0 {
				return 0, 0, ErrMalformed
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, ErrMalformed
}

func validString(b []byte) bool {
	for _, c := range b {
		if c == 0 || c >= utf8.RuneSelf {
			return utf8.Valid(b) && !containsNUL(b)
		}
	}
	return true
}

func containsNUL(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

func validStringS(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func varintLen(v int) int {
	switch {
	case v < 128:
		return 1
	case v < 16384:
		return 2
	case v < 2097152:
		return 3
	}
	return 4
}

func appendVarint(dst []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v > 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if v == 0 {
			return dst
		}
	}
}

func appendUint16(dst []byte, v uint16) []byte {
	return append(dst, byte(v>>8), byte(v))
}

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString appends a UTF-8 Encoded String; ok is false if s is too long
// or not valid [MQTT-1.5.4-1], [MQTT-1.5.4-2].
func appendString(dst []byte, s string) ([]byte, bool) {
	if len(s) > 65535 || !validStringS(s) {
		return dst, false
	}
	dst = appendUint16(dst, uint16(len(s)))
	return append(dst, s...), true
}

func appendBinary(dst []byte, b []byte) ([]byte, bool) {
	if len(b) > 65535 {
		return dst, false
	}
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...), true
}

// reserveVarint appends four placeholder bytes for a Variable Byte Integer
// whose value is known only after what follows is written; finishVarint
// writes it in its minimal form and closes the gap.
func reserveVarint(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

func finishVarint(dst []byte, mark int) ([]byte, int) {
	n := len(dst) - mark - 4
	vl := varintLen(n)
	if vl < 4 {
		copy(dst[mark+vl:], dst[mark+4:])
		dst = dst[:len(dst)-(4-vl)]
	}
	var tmp [4]byte
	copy(dst[mark:mark+vl], appendVarint(tmp[:0], uint32(n)))
	return dst, n
}
