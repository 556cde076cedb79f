package snbridge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// SLIP framing (RFC 1055) for the serial transport. Every frame starts and
// ends with END; END and ESC inside a frame are escaped.
const (
	slipEnd    = 0xC0
	slipEsc    = 0xDB
	slipEscEnd = 0xDC
	slipEscEsc = 0xDD
)

// errSlipFrame is wrapped by every bad-frame error; the reader resynchronises
// at the next END and goes on.
var errSlipFrame = errors.New("bad slip frame")

// appendSLIP appends b as one SLIP frame.
func appendSLIP(dst, b []byte) []byte {
	dst = append(dst, slipEnd)
	for _, c := range b {
		switch c {
		case slipEnd:
			dst = append(dst, slipEsc, slipEscEnd)
		case slipEsc:
			dst = append(dst, slipEsc, slipEscEsc)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, slipEnd)
}

// slipReader reads SLIP frames from a byte stream.
type slipReader struct {
	r   *bufio.Reader
	max int
}

func newSLIPReader(r io.Reader, max int) *slipReader {
	return &slipReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// readFrame reads the next non-empty frame into buf. A frame longer than
// len(buf) or with an invalid escape is skipped up to its END and reported
// with errSlipFrame; the next call continues with the following frame.
func (s *slipReader) readFrame(buf []byte) (int, error) {
	n, esc, bad := 0, false, ""
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch {
		case c == slipEnd:
			if bad != "" {
				return 0, fmt.Errorf("%s: %w", bad, errSlipFrame)
			}
			if esc {
				return 0, fmt.Errorf("frame ends after ESC: %w", errSlipFrame)
			}
			if n > 0 {
				return n, nil
			}
			continue // empty frame between two ENDs
		case esc:
			esc = false
			switch c {
			case slipEscEnd:
				c = slipEnd
			case slipEscEsc:
				c = slipEsc
			default:
				if bad == "" {
					bad = fmt.Sprintf("ESC followed by 0x%02X", c)
				}
				continue
			}
		case c == slipEsc:
			esc = true
			continue
		}
		if bad != "" {
			continue
		}
		if n == len(buf) {
			bad = fmt.Sprintf("frame longer than %d octets", len(buf))
			continue
		}
		buf[n] = c
		n++
	}
}
