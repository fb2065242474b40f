package comm

import (
	"fmt"
	"sync"
	"time"
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

	// Whether compression pays depends on the link: it must save more
	// sending time than it costs. linkBps is the link's capacity: the
	// slowly decaying maximum of the rates of large writes (0 until
	// measured; a maximum, because a write that waits for a busy receiver
	// measures the receiver, not the link, and compressing then would only
	// add work to a CPU-bound job), compBps the measured
	// speed of the compressor, ratio the last wire/raw ratio of a small
	// message, skipped the small messages sent raw since the last probe.
	linkBps, compBps, ratio float64
	declined                bool // the last judgement said no
	skipped                 int  // payloads sent raw since then
	warm                    bool // the compressor has run once
	// local: the peer is on this host (loopback, or our own address) and
	// Config.CompressLocal is off: nothing is compressed. Such a link runs
	// at memory speed, where compressing costs the sender and the
	// receiver more CPU than the copy it saves; and small frames never
	// measure a link (rateMinSize), so on loopback a keyed reply of 30 KB
	// had been compressed at every update (d = 2^20: 6-8% of the
	// master's CPU for 4% fewer bytes).
	local bool
}

// compEff discounts the compressor's speed for the receiver's
// decompression: compression pays when compBps*(1-ratio)*compEff exceeds
// the link's rate.
const (
	compEff     = 0.8
	probeEvery  = 64
	ewmaWeight  = 0.25
	rateMinSize = 1 << 20
	rateDecay   = 1.0 / 64
)

func ewma(old, x float64) float64 {
	if old == 0 {
		return x
	}
	return old + ewmaWeight*(x-old)
}

// noteWrite records that n bytes took d to write on the link.
func (e *encoder) noteWrite(n int, d time.Duration) {
	if n >= rateMinSize && d > 0 {
		e.linkBps = max(float64(n)/d.Seconds(), e.linkBps*(1-rateDecay))
	}
}

func (e *encoder) noteCompress(n int, d time.Duration) {
	if !e.warm {
		// The first compression pays for the compressor's buffers (zeros:
		// 0.5 GB/s measured instead of over 5), and its rate would decide
		// the next 64 judgements.
		e.warm = true
		return
	}
	if d > 0 {
		e.compBps = ewma(e.compBps, float64(n)/d.Seconds())
	}
}

// pays reports whether compressing to ratio (wire/raw) is expected to send
// faster than not compressing; true while either rate is unknown.
func (e *encoder) pays(ratio float64) bool {
	return e.linkBps == 0 || e.compBps == 0 || e.compBps*(1-ratio)*compEff > e.linkBps
}

func newEncoder(cfg *Config) encoder {
	return encoder{src: uint32(cfg.Rank), codec: cfg.Codec, minCompress: cfg.MinCompress, maxFrame: cfg.MaxFrame}
}

// encode returns the frame of m as a header (without its CRC) and payload
// pieces (views of m's slices and of the encoder's buffers, valid until
// the next call; writeFrames may reslice them) and the wire and raw
// payload lengths. Uncompressed float blocks are not
// copied. It panics on a malformed m (caller bug).
func (e *encoder) encode(tag int, m *Msg) (h frameHeader, payload [][]byte, wire, raw int, err error) {
	lay := layoutOf(m)
	if m.Idx != nil {
		e.idx = appendIdx(e.idx[:0], m.Idx, m.Dim)
		lay.idxLen = len(e.idx)
	}
	lay.finish()
	if int64(lay.total) > e.maxFrame {
		return h, nil, 0, 0, fmt.Errorf("%w: message of %d bytes, limit %d", ErrFrameTooLarge, lay.total, e.maxFrame)
	}
	e.head = appendInt64s(lay.appendHeader(e.head[:0]), m.Ints)
	flt := floatBytes(m.floats(), e.conv)
	var idx []byte
	if m.Idx != nil {
		idx = e.idx
	}
	e.out = [4][]byte{e.head, flt, idx, m.Bytes}
	payload = e.out[:]
	h = frameHeader{typ: frameData, tag: uint32(tag), src: e.src, rawLen: uint64(lay.total)}
	if e.codec != CodecNone && lay.total >= e.minCompress && e.worthCompressing(flt, m.Bytes) {
		start := time.Now()
		e.raw = grow(e.raw, lay.total)
		n := copy(e.raw, e.head)
		Shuffle(e.raw[n:n+len(flt)], flt)
		n += len(flt)
		n += copy(e.raw[n:], idx)
		copy(e.raw[n:], m.Bytes)
		if e.z, err = Compress(e.codec, e.z, e.raw); err != nil {
			return h, nil, 0, 0, err
		}
		e.noteCompress(lay.total, time.Since(start))
		e.ratio = float64(len(e.z)) / float64(lay.total)
		e.declined = len(e.z) > lay.total-lay.total/minSavingDiv
		if !e.declined {
			h.codec = e.codec
			if len(flt) > 0 {
				h.flags = flagShuffled
			}
			e.out = [4][]byte{e.z}
			payload = e.out[:1]
		}
	}
	for _, b := range payload {
		h.wireLen += uint64(len(b))
	}
	return h, payload, int(h.wireLen), lay.total, nil
}

// fragSize is the largest payload of one uncompressed frame. Longer
// messages go as fragments (flagMore), each with its own CRC, so that a
// multi-GiB message is checked piece by piece as it arrives and the
// watchdog sees progress. Fragments are not small: each is one writev, and
// with 256 KiB fragments the extra system calls and wake-ups cut one-way
// throughput on loopback to 0.55-0.6 of raw TCP's, against 0.75-0.85 with
// 4 MiB.
var fragSize = 4 << 20 // a variable so that tests can make small fragments

// frameWriter takes one frame: its header and payload pieces. Write errors
// are kept by the writer (the first one wins).
type frameWriter interface {
	writeFrame(hdr []byte, parts [][]byte)
}

// writeFrames writes the frame of a message with header h (wireLen is the
// payload length; CRC filled in here) and payload pieces to w: one frame,
// or fragments of at most fragSize bytes when uncompressed and longer.
// hdr is scratch for the headers, returned for reuse, with the number of
// bytes written; frag is scratch for one fragment's pieces (a fragment
// spans at most all four pieces of a message, plus one). known, when it
// holds one CRC per frame of an uncompressed message, gives the payload
// CRCs instead of computing them (see Msg.crcs).
func writeFrames(w frameWriter, hdr []byte, frag *[5][]byte, h frameHeader, payload [][]byte, known []uint32) (int, []byte) {
	total := int(h.wireLen)
	if h.codec != CodecNone || len(known) != (total+fragSize-1)/fragSize {
		known = nil
	}
	if h.codec != CodecNone || total <= fragSize {
		var crc uint32
		if known != nil {
			crc = known[0]
		} else {
			for _, b := range payload {
				crc = crcUpdate(crc, b)
			}
		}
		h.crc = crc
		hdr = appendHeader(hdr[:0], &h)
		w.writeFrame(hdr, payload)
		return frameHeaderLen + total, hdr
	}
	written := 0
	for i, remaining := 0, total; remaining > 0; i++ {
		n := min(fragSize, remaining)
		// Cut the next n bytes off the pieces.
		parts, crc, need := frag[:0], uint32(0), n
		for need > 0 {
			b := payload[0]
			k := min(len(b), need)
			parts = append(parts, b[:k])
			if known == nil {
				crc = crcUpdate(crc, b[:k])
			}
			need -= k
			if payload[0] = b[k:]; len(payload[0]) == 0 {
				payload = payload[1:]
			}
		}
		if known != nil {
			crc = known[i]
		}
		h.wireLen, h.rawLen, h.crc, h.flags = uint64(n), uint64(remaining), crc, 0
		if remaining > n {
			h.flags = flagMore
		}
		hdr = appendHeader(hdr[:0], &h)
		w.writeFrame(hdr, parts)
		written += frameHeaderLen + n
		remaining -= n
	}
	return written, hdr
}

// worthCompressing decides whether to compress a payload. A long payload
// is judged on a sample of its largest block (shuffled, for floats): no
// when the sample does not shrink by 1/minSavingDiv, or when at the
// sample's ratio and the compressor's measured speed compressing would
// send slower than the link's measured capacity (a fast loopback link).
// A short payload is compressed unless the last ratio seen would not pay.
// After a no, the next probeEvery-1 payloads are sent raw without looking
// (sampling costs too: 14% of a 4-rank Bcast's CPU on loopback), then the
// next one is judged again.
func (e *encoder) worthCompressing(flt, opaque []byte) bool {
	if e.local {
		return false
	}
	if e.declined && e.skipped < probeEvery-1 {
		e.skipped++
		return false
	}
	e.skipped = 0
	ok := e.judge(flt, opaque)
	e.declined = !ok
	return ok
}

func (e *encoder) judge(flt, opaque []byte) bool {
	const sampleBytes = 8 * sampleFloats
	var s []byte
	switch {
	case len(flt) > sampleBytes && len(flt) >= len(opaque):
		e.raw = grow(e.raw, sampleBytes)
		Shuffle(e.raw, flt[:sampleBytes])
		s = e.raw
	case len(opaque) > sampleBytes:
		s = opaque[:sampleBytes]
	default:
		return e.ratio == 0 || e.pays(e.ratio)
	}
	start := time.Now()
	z, err := Compress(e.codec, e.z, s)
	e.noteCompress(len(s), time.Since(start))
	e.z = z
	r := float64(len(z)) / float64(len(s))
	return err == nil && len(z) <= len(s)-len(s)/minSavingDiv && e.pays(r)
}

var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

// AppendFrame appends the frame carrying m (from rank src, with tag,
// compressed with codec when that pays for payloads of at least
// minCompress bytes) to dst. It is the writer of the links, exposed for
// tests, fuzz corpora and benchmarks. It is safe for concurrent use.
func AppendFrame(dst []byte, src, tag int, m *Msg, codec Codec, minCompress int) ([]byte, error) {
	e := encoderPool.Get().(*encoder)
	defer encoderPool.Put(e)
	e.src, e.codec, e.minCompress, e.maxFrame = uint32(src), codec, minCompress, DefaultMaxFrame
	// No link: every frame is judged on its own.
	e.linkBps, e.compBps, e.ratio, e.declined, e.skipped = 0, 0, 0, false, 0
	h, payload, _, _, err := e.encode(tag, m)
	if err != nil {
		return dst, err
	}
	w := appendWriter{dst}
	var frag [5][]byte
	_, e.hdr = writeFrames(&w, e.hdr, &frag, h, payload, nil)
	return w.b, nil
}

// DecodeMsg decodes a raw message payload (as returned by ReadFrame) into
// m; the fields are views into payload (or copies on big-endian hosts).
func DecodeMsg(payload []byte, m *Msg) error {
	m.Release()
	return m.decode(payload)
}

type appendWriter struct{ b []byte }

func (w *appendWriter) writeFrame(hdr []byte, parts [][]byte) {
	w.b = append(w.b, hdr...)
	for _, p := range parts {
		w.b = append(w.b, p...)
	}
}
