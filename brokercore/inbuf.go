package brokercore

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/outpost-iot/outpost/brokercore/packet"
)

// Buffer sizes (issue 9: memory per idle connection). A reading
// connection holds a small read array (from smallPool); buffers for bursts
// and for writing come from bufPool while there is something to read or
// write. A parked connection holds none.
const (
	smallRead   = 512       // read array every connection keeps
	poolBufSize = 8 << 10   // size of a pooled buffer
	maxPoolBuf  = 128 << 10 // larger buffers are not returned to the pool
	writeChunk  = 32 << 10  // the writer writes once this much is encoded
)

// bufPool holds *[]byte of poolBufSize or more (cap), for readers and
// writers of every connection: a package-level pool is the usual Go idiom
// and holds no state of its own that could leak between brokers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, poolBufSize); return &b }}

// smallPool holds the *[smallRead]byte arrays readers start with.
var smallPool = sync.Pool{New: func() any { return new([smallRead]byte) }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(p *[]byte) {
	if cap(*p) > maxPoolBuf {
		return
	}
	*p = (*p)[:cap(*p)]
	bufPool.Put(p)
}

// inbuf frames MQTT packets from a connection (section 2.1: fixed header,
// then Remaining Length bytes). Its state survives a read error such as a
// deadline, so nothing read is lost.
type inbuf struct {
	r     io.Reader
	b     []byte // buffered bytes are b[start:end]
	start int
	end   int
	pool  *[]byte // b is this pooled buffer (nil: small or allocated)
	// wasFull: the last read filled the buffer.
	wasFull bool
	small   *[smallRead]byte // from smallPool; nil until the first read
}

func (x *inbuf) init(r io.Reader) {
	x.r = r
}

// useSmall reads into the small array (taken from smallPool if needed);
// nothing is buffered.
func (x *inbuf) useSmall() {
	if x.small == nil {
		x.small = smallPool.Get().(*[smallRead]byte)
	}
	x.b = x.small[:]
}

// drop gives back every buffer; nothing is buffered (a parked connection).
func (x *inbuf) drop() {
	x.release()
	if x.small != nil {
		smallPool.Put(x.small)
		x.small = nil
	}
	x.b = nil
}

// next returns the next whole packet (fixed header included). The bytes
// are valid until the next call. maxSize bounds the whole packet: a larger
// one returns an error wrapping packet.ErrPacketTooLarge before its body
// is read. io.EOF is returned as is when the stream ends between packets,
// io.ErrUnexpectedEOF (wrapped) when it ends inside one.
func (x *inbuf) next(maxSize int) ([]byte, error) {
	if x.start == x.end && (x.pool != nil || len(x.b) > smallRead) {
		// Drained: give back a big buffer before possibly waiting idle.
		x.release()
	}
	for {
		avail := x.b[x.start:x.end]
		if len(avail) == 0 {
			// Nothing buffered: read, without building the "incomplete"
			// error FixedHeader would return (an allocation per read).
			if err := x.fill(1); err != nil {
				return nil, err
			}
			continue
		}
		t, _, rl, hl, err := packet.FixedHeader(avail)
		var need int
		switch {
		case err == nil:
			need = hl + rl
			if need > maxSize {
				return nil, fmt.Errorf("read %v: %d bytes over maximum packet size %d: %w", t, need, maxSize, packet.ErrPacketTooLarge)
			}
			if len(avail) >= need {
				x.start += need
				return avail[:need:need], nil
			}
		case errors.Is(err, packet.ErrIncomplete):
			need = len(avail) + 1
		default:
			return nil, fmt.Errorf("read %v: remaining length: %w", t, err)
		}
		if err := x.fill(need); err != nil {
			if errors.Is(err, io.EOF) && x.end > x.start {
				return nil, fmt.Errorf("read %v: %w", packet.Type(x.b[x.start]>>4), io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
}

// fill reads at least once, making room for a packet of need bytes. A
// read that filled the small array moves to a pooled buffer: more is
// likely waiting, and big reads cost fewer system calls.
func (x *inbuf) fill(need int) error {
	if len(x.b) == 0 {
		x.useSmall()
	}
	n := x.end - x.start
	if need > len(x.b) || (x.pool == nil && x.wasFull) {
		x.swap(max(need, poolBufSize))
	} else if x.start > 0 && len(x.b)-x.end < max(need-n, len(x.b)/4) {
		copy(x.b, x.b[x.start:x.end])
		x.start, x.end = 0, n
	}
	m, err := x.r.Read(x.b[x.end:])
	x.end += m
	x.wasFull = x.end == len(x.b)
	switch {
	case m > 0:
		return nil // an error repeats on the next read
	case err == nil:
		return io.ErrNoProgress
	}
	return err
}

// fillWith is for an empty buffer: it reads once with read, which must
// not wait, and reports whether bytes came. Nothing is kept but the small
// array while nothing is buffered (a pooled buffer goes back first).
func (x *inbuf) fillWith(read func([]byte) (int, error)) (bool, error) {
	if x.pool != nil || len(x.b) != smallRead {
		x.release()
		x.useSmall()
	}
	x.start, x.end = 0, 0
	n, err := read(x.b)
	x.end = n
	x.wasFull = n == len(x.b)
	return n > 0, err
}

// swap moves the buffered bytes to a buffer of at least size bytes
// (pooled when it fits) and gives back the old pooled one.
func (x *inbuf) swap(size int) {
	var p *[]byte
	var nb []byte
	if size <= maxPoolBuf {
		p = getBuf()
		if cap(*p) < size {
			*p = make([]byte, size)
		}
		nb = (*p)[:cap(*p)]
	} else {
		nb = make([]byte, size)
	}
	n := copy(nb, x.b[x.start:x.end])
	if x.pool != nil {
		putBuf(x.pool)
	}
	if x.small != nil { // back to the pool while the big buffer is in use
		smallPool.Put(x.small)
		x.small = nil
	}
	x.pool, x.b, x.start, x.end = p, nb, 0, n
}

// release goes back to the small array; nothing is buffered.
func (x *inbuf) release() {
	if x.pool != nil {
		putBuf(x.pool)
		x.pool = nil
	}
	x.b = nil
	if x.small != nil {
		x.b = x.small[:]
	}
	x.start, x.end = 0, 0
	x.wasFull = false
}
