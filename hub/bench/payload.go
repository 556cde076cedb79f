package bench

import (
	"encoding/binary"
	"errors"
)

// stampLen is the bytes of a payload the tool reads back: publisher
// number (4), sequence number (8), send time in ns since the run's epoch (8).
const stampLen = 20

// stamp is what a payload says about itself.
type stamp struct {
	pub  uint32
	seq  uint64
	sent int64 // ns since the run's epoch
}

// putStamp writes s into the first stampLen bytes of b; the rest of b is
// left as it is (padding).
func putStamp(b []byte, s stamp) {
	binary.BigEndian.PutUint32(b[0:4], s.pub)
	binary.BigEndian.PutUint64(b[4:12], s.seq)
	binary.BigEndian.PutUint64(b[12:20], uint64(s.sent))
}

var errShortPayload = errors.New("payload shorter than the 20-byte bench stamp")

// readStamp reads the stamp at the start of a received payload.
func readStamp(b []byte) (stamp, error) {
	if len(b) < stampLen {
		return stamp{}, errShortPayload
	}
	return stamp{
		pub:  binary.BigEndian.Uint32(b[0:4]),
		seq:  binary.BigEndian.Uint64(b[4:12]),
		sent: int64(binary.BigEndian.Uint64(b[12:20])),
	}, nil
}

// newPayload returns a size-byte payload (at least stampLen) padded with 'x'.
func newPayload(size int) []byte {
	if size < stampLen {
		size = stampLen
	}
	b := make([]byte, size)
	for i := stampLen; i < size; i++ {
		b[i] = 'x'
	}
	return b
}
