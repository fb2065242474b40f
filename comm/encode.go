package comm

import (
	"fmt"
)

// Compression tuning: a frame is sent compressed only if that saves at
// least 1/minSavingDiv of it; float blocks longer than sampleFloats are
// first judged on a shuffled sample of that many values.
const (
	minSavingDiv = 8
	sampleFloats = 8192
)

// encoder turns messages into frames. Its buffers are reused from one
// message to the next; it is not safe for concurrent use (each peer has
// one, guarded by peer.sendMu).
type encoder struct {
	src         uint32
	codec       Codec
	minCompress int
	maxFrame    int64

	hdr  []byte // frame header
	head []byte // message header and ints
	idx  []byte // sparse index block
	raw  []byte // contiguous shuffled raw payload (compression input)
	z    []byte // compressed payload
	conv []byte // float encodings on big-endian hosts
	out  [4][]byte
}

func newEncoder(cfg *Config) encoder {
	return encoder{src: uint32(cfg.Rank), codec: cfg.Codec, minCompress: cfg.MinCompress, maxFrame: cfg.MaxFrame}
}

// encode returns the frame of m as a header and payload pieces (views of
// m's slices and of the encoder's buffers, valid until the next call) and
// the wire and raw payload lengths. Uncompressed float blocks are not
// copied. It panics on a malformed m (caller bug).
func (e *encoder) encode(tag int, m *Msg) (hdr []byte, payload [][]byte, wire, raw int, err error) {
	lay := layoutOf(m)
	if m.Idx != nil {
		e.idx = appendIdx(e.idx[:0], m.Idx, m.Dim)
		lay.idxLen = len(e.idx)
	}
	lay.finish()
	if int64(lay.total) > e.maxFrame {
		return nil, nil, 0, 0, fmt.Errorf("%w: message of %d bytes, limit %d", ErrFrameTooLarge, lay.total, e.maxFrame)
	}
	e.head = appendInt64s(lay.appendHeader(e.head[:0]), m.Ints)
	flt := floatBytes(m.floats(), e.conv)
	var idx []byte
	if m.Idx != nil {
		idx = e.idx
	}
	e.out = [4][]byte{e.head, flt, idx, m.Bytes}
	payload = e.out[:]
	h := frameHeader{typ: frameData, tag: uint32(tag), src: e.src, rawLen: uint64(lay.total)}
	if e.codec != CodecNone && lay.total >= e.minCompress && e.worthCompressing(flt) {
		e.raw = grow(e.raw, lay.total)
		n := copy(e.raw, e.head)
		Shuffle(e.raw[n:n+len(flt)], flt)
		n += len(flt)
		n += copy(e.raw[n:], idx)
		copy(e.raw[n:], m.Bytes)
		if e.z, err = Compress(e.codec, e.z, e.raw); err != nil {
			return nil, nil, 0, 0, err
		}
		if len(e.z) <= lay.total-lay.total/minSavingDiv {
			h.codec = e.codec
			if len(flt) > 0 {
				h.flags = flagShuffled
			}
			e.out = [4][]byte{e.z}
			payload = e.out[:1]
		}
	}
	var crc uint32
	for _, b := range payload {
		crc = crcUpdate(crc, b)
		h.wireLen += uint64(len(b))
	}
	h.crc = crc
	e.hdr = appendHeader(e.hdr[:0], &h)
	return e.hdr, payload, int(h.wireLen), lay.total, nil
}

// worthCompressing judges a long float block on a shuffled sample: it says
// no when the sample does not shrink enough, saving the cost of
// compressing the whole.
func (e *encoder) worthCompressing(flt []byte) bool {
	if len(flt) <= 8*sampleFloats {
		return true
	}
	s := flt[:8*sampleFloats]
	e.raw = grow(e.raw, len(s))
	Shuffle(e.raw, s)
	z, err := Compress(e.codec, e.z, e.raw)
	e.z = z
	return err == nil && len(z) <= len(s)-len(s)/minSavingDiv
}

// AppendFrame appends the frame carrying m (from rank src, with tag,
// compressed with codec when that pays for payloads of at least
// minCompress bytes) to dst. It is the writer of the links, exposed for
// tests, fuzz corpora and benchmarks; it allocates its scratch per call.
func AppendFrame(dst []byte, src, tag int, m *Msg, codec Codec, minCompress int) ([]byte, error) {
	e := encoder{src: uint32(src), codec: codec, minCompress: minCompress, maxFrame: DefaultMaxFrame}
	hdr, payload, _, _, err := e.encode(tag, m)
	if err != nil {
		return dst, err
	}
	dst = append(dst, hdr...)
	for _, b := range payload {
		dst = append(dst, b...)
	}
	return dst, nil
}

// DecodeMsg decodes a raw message payload (as returned by ReadFrame) into
// m; the fields are views into payload (or copies on big-endian hosts).
func DecodeMsg(payload []byte, m *Msg) error {
	m.Release()
	return m.decode(payload)
}
