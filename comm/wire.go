package comm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Frame header layout (all integers little-endian); see README.md.
//
//	off size field
//	  0    4 magic "AMBF"
//	  4    1 version (ProtocolVersion)
//	  5    1 codec of the payload (Codec)
//	  6    1 flags (flagShuffled, flagMore)
//	  7    1 frame type (frameData, frameHeartbeat, frameBye)
//	  8    4 tag
//	 12    4 source rank
//	 16    8 payload length on the wire (after compression)
//	 24    8 raw length (before compression)
//	 32    4 CRC32C (Castagnoli) of the wire payload
//	 36    4 CRC32C of header bytes 0..35
const (
	frameHeaderLen = 40
	// ProtocolVersion is the version of the frame and handshake formats.
	ProtocolVersion = 2
	frameMagic      = "AMBF"

	maxRanks = 1 << 20
	maxJobID = 64
)

// Frame types.
const (
	frameData      = 0 // payload is a message (msg.go)
	frameHeartbeat = 1 // empty; keeps an idle link alive
	frameBye       = 2 // empty; orderly close: nothing more will be sent
	frameTypeMax   = frameBye
)

// Flags.
const (
	flagShuffled = 1 << 0 // the raw payload's float block is byte-shuffled
	flagMore     = 1 << 1 // an uncompressed fragment: more fragments follow
	flagsKnown   = flagShuffled | flagMore
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is the decoded fixed header of a frame.
type frameHeader struct {
	codec   Codec
	flags   uint8
	typ     uint8
	tag     uint32
	src     uint32
	wireLen uint64
	rawLen  uint64
	crc     uint32
}

// appendHeader appends the 40-byte encoding of h to dst.
func appendHeader(dst []byte, h *frameHeader) []byte {
	start := len(dst)
	dst = append(dst, frameMagic...)
	dst = append(dst, ProtocolVersion, byte(h.codec), h.flags, h.typ)
	dst = binary.LittleEndian.AppendUint32(dst, h.tag)
	dst = binary.LittleEndian.AppendUint32(dst, h.src)
	dst = binary.LittleEndian.AppendUint64(dst, h.wireLen)
	dst = binary.LittleEndian.AppendUint64(dst, h.rawLen)
	dst = binary.LittleEndian.AppendUint32(dst, h.crc)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseHeader decodes and checks a 40-byte header: magic, version, header
// CRC, known codec/flags/type, and both lengths against maxFrame, so that
// nothing is allocated for a bad claim.
func parseHeader(b []byte, maxFrame int64) (frameHeader, error) {
	var h frameHeader
	if len(b) < frameHeaderLen {
		return h, io.ErrUnexpectedEOF
	}
	b = b[:frameHeaderLen]
	if string(b[0:4]) != frameMagic {
		return h, ErrBadMagic
	}
	if b[4] != ProtocolVersion {
		return h, fmt.Errorf("%w: frame version %d, ours %d", ErrVersion, b[4], ProtocolVersion)
	}
	if got, want := crc32.Checksum(b[:36], castagnoli), binary.LittleEndian.Uint32(b[36:]); got != want {
		return h, fmt.Errorf("%w: frame header", ErrChecksum)
	}
	h.codec, h.flags, h.typ = Codec(b[5]), b[6], b[7]
	h.tag = binary.LittleEndian.Uint32(b[8:])
	h.src = binary.LittleEndian.Uint32(b[12:])
	h.wireLen = binary.LittleEndian.Uint64(b[16:])
	h.rawLen = binary.LittleEndian.Uint64(b[24:])
	h.crc = binary.LittleEndian.Uint32(b[32:])
	switch {
	case h.codec > CodecZstd:
		return h, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, h.codec)
	case h.flags&^flagsKnown != 0:
		return h, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, h.flags)
	case h.typ > frameTypeMax:
		return h, fmt.Errorf("%w: unknown frame type %d", ErrCorrupt, h.typ)
	case h.wireLen > uint64(maxFrame) || h.rawLen > uint64(maxFrame):
		return h, fmt.Errorf("%w: wire %d raw %d bytes, limit %d", ErrFrameTooLarge, h.wireLen, h.rawLen, maxFrame)
	case h.flags&flagMore != 0 && (h.codec != CodecNone || h.typ != frameData || h.wireLen == 0 || h.wireLen >= h.rawLen):
		return h, fmt.Errorf("%w: bad fragment (codec %d, wire %d, remaining %d)", ErrCorrupt, h.codec, h.wireLen, h.rawLen)
	case h.codec == CodecNone && h.flags&flagMore == 0 && h.wireLen != h.rawLen:
		return h, fmt.Errorf("%w: uncompressed frame with wire %d != raw %d", ErrCorrupt, h.wireLen, h.rawLen)
	case h.codec == CodecNone && h.flags&flagShuffled != 0:
		return h, fmt.Errorf("%w: shuffled flag on an uncompressed frame", ErrCorrupt)
	case h.typ != frameData && h.wireLen != 0:
		return h, fmt.Errorf("%w: control frame with a payload", ErrCorrupt)
	}
	return h, nil
}

// FrameReader reads frames from R, the standalone form of the links'
// reader (used by the fuzz test and tools). Lengths are checked against
// MaxFrame (DefaultMaxFrame if 0) before any allocation; a frame cut off
// by EOF gives io.ErrUnexpectedEOF (a clean EOF before a frame gives
// io.EOF). Its buffers are reused; it is not safe for concurrent use.
type FrameReader struct {
	R        io.Reader
	MaxFrame int64

	hb             [frameHeaderLen]byte
	buf, wire, tmp []byte
}

// Frame is a frame read by a FrameReader. Payload is the raw message
// payload (see DecodeMsg), valid until the next call to Next.
type Frame struct {
	Type     uint8 // 0 data, 1 heartbeat, 2 bye
	Codec    Codec
	Tag, Src int
	Payload  []byte
}

// Next reads the next frame.
func (fr *FrameReader) Next() (Frame, error) {
	maxFrame := fr.MaxFrame
	if maxFrame == 0 {
		maxFrame = DefaultMaxFrame
	}
	if _, err := io.ReadFull(fr.R, fr.hb[:]); err != nil {
		return Frame{}, err
	}
	h, err := parseHeader(fr.hb[:], maxFrame)
	if err != nil {
		return Frame{}, err
	}
	var raw []byte
	if h.typ == frameData {
		raw, fr.wire, fr.tmp, _, err = readData(fr.R, h, maxFrame, &fr.hb, fr.buf, fr.wire, fr.tmp)
		if err != nil {
			return Frame{}, err
		}
		fr.buf = raw
	}
	return Frame{Type: h.typ, Codec: h.codec, Tag: int(h.tag), Src: int(h.src), Payload: raw}, nil
}

// readData reads the payload of data frame h from r and returns the raw
// payload: for an uncompressed frame read into buf (grown to rawLen),
// together with the fragments that follow it when h has flagMore (see
// payloadStream); for a compressed frame read into wire and decompressed
// (see decompressPayload). It also returns the wire bytes of the fragments
// after the first, headers included.
func readData(r io.Reader, h frameHeader, maxFrame int64, hb *[frameHeaderLen]byte, buf, wire, tmp []byte) (raw, wireOut, tmpOut []byte, extra uint64, err error) {
	if h.codec != CodecNone {
		wire = grow(wire, int(h.wireLen))
		crc, err := readFullCRC(r, 0, wire)
		if err != nil {
			return nil, wire, tmp, 0, cutOff(err)
		}
		if crc != h.crc {
			return nil, wire, tmp, 0, fmt.Errorf("%w: payload", ErrChecksum)
		}
		raw, tmp, err = decompressPayload(&h, wire, tmp, buf)
		return raw, wire, tmp, 0, err
	}
	buf = grow(buf, int(h.rawLen))
	ps := payloadStream{r: r, maxFrame: maxFrame, hb: hb}
	if err := ps.start(h); err != nil {
		return nil, wire, tmp, 0, err
	}
	err = ps.readFull(buf)
	return buf, wire, tmp, ps.extra, err
}

// cutOff turns an EOF inside a frame into io.ErrUnexpectedEOF.
func cutOff(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// payloadStream reads the payload of an uncompressed message as one byte
// stream across its fragments. Each fragment's CRC is computed piece by
// piece as it is read, while the bytes are in cache, and checked where the
// fragment ends; each next fragment header is checked to continue the
// message (same tag and source, codec none, raw length = bytes to come).
// Bytes are handed out before their fragment's CRC is checked: a caller
// that acts on them (the links' reader placing a collective's vector)
// learns of a bad CRC by the error of a later read.
type payloadStream struct {
	r        io.Reader
	maxFrame int64
	hb       *[frameHeaderLen]byte // scratch for fragment headers

	h     frameHeader // the current fragment's header
	total int         // the message's payload length
	left  int         // bytes of the current fragment not yet read
	off   int         // bytes of the message read so far
	crc   uint32      // CRC of the current fragment's bytes read so far
	extra uint64      // wire bytes of fragments after the first, headers included
	crcs  *[]uint32   // if set, each fragment's CRC is appended once checked
}

// start begins the message whose first header is h.
func (ps *payloadStream) start(h frameHeader) error {
	ps.h, ps.total, ps.left, ps.off, ps.crc, ps.extra = h, int(h.rawLen), int(h.wireLen), 0, 0, 0
	if h.wireLen == 0 && h.crc != 0 {
		return fmt.Errorf("%w: payload", ErrChecksum)
	}
	return nil
}

// readFull reads the next len(p) bytes of the message into p; it panics
// when asked for more than the message holds (a caller bug).
func (ps *payloadStream) readFull(p []byte) error {
	if len(p) > ps.total-ps.off {
		panic("comm: payloadStream: read past the message")
	}
	for len(p) > 0 {
		if ps.left == 0 {
			if err := ps.nextFragment(); err != nil {
				return err
			}
		}
		k := min(len(p), ps.left)
		crc, err := readFullCRC(ps.r, ps.crc, p[:k])
		if err != nil {
			return cutOff(err)
		}
		ps.crc = crc
		ps.left -= k
		ps.off += k
		p = p[k:]
		if ps.left == 0 {
			if ps.crc != ps.h.crc {
				return fmt.Errorf("%w: payload", ErrChecksum)
			}
			if ps.crcs != nil {
				*ps.crcs = append(*ps.crcs, ps.crc)
			}
			ps.crc = 0
		}
	}
	return nil
}

func (ps *payloadStream) nextFragment() error {
	if _, err := io.ReadFull(ps.r, ps.hb[:]); err != nil {
		return cutOff(err)
	}
	next, err := parseHeader(ps.hb[:], ps.maxFrame)
	if err != nil {
		return err
	}
	h := &ps.h
	if next.typ != frameData || next.codec != CodecNone || next.tag != h.tag || next.src != h.src || next.rawLen != uint64(ps.total-ps.off) {
		return fmt.Errorf("%w: fragment does not continue its message", ErrCorrupt)
	}
	ps.extra += frameHeaderLen + next.wireLen
	ps.h, ps.left = next, int(next.wireLen)
	return nil
}

// readFullCRC is io.ReadFull(r, p) that also returns crc updated with p,
// computed piece by piece right after each Read, while the bytes the
// kernel just copied are still in cache: a second pass over a multi-MiB
// payload after the last read comes from memory (4 MiB is more than this
// machine's 1 MiB L2) and took 17% of a receiver's CPU on loopback.
func readFullCRC(r io.Reader, crc uint32, p []byte) (uint32, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		crc = crcUpdate(crc, p[n:n+m])
		n += m
		if err != nil {
			if n == len(p) {
				break
			}
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return crc, err
		}
	}
	return crc, nil
}

// decompressPayload returns the raw payload of a compressed frame whose
// CRC has been checked: wire decompressed into dst (grown to rawLen). A
// shuffled float block is decompressed into tmp first and unshuffled into
// dst; tmp is returned for reuse.
func decompressPayload(h *frameHeader, wire, tmp, dst []byte) (raw, tmpOut []byte, err error) {
	switch {
	case h.flags&flagShuffled == 0:
		raw, err = decompress(h.codec, dst, wire, int(h.rawLen))
		return raw, tmp, err
	}
	tmp, err = decompress(h.codec, tmp, wire, int(h.rawLen))
	if err != nil {
		return dst[:0], tmp, err
	}
	raw = grow(dst, len(tmp))
	if err = unshuffleInto(raw, tmp); err != nil {
		return dst[:0], tmp, err
	}
	return raw, tmp, nil
}

// grow returns b resliced to length n, reallocating only when its capacity
// is too small.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n, max(n, 2*cap(b)))
}

func crcOf(b []byte) uint32 { return crcUpdate(0, b) }
