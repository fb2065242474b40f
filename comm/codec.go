package comm

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// One zstd Encoder and Decoder shared by every link of the process:
// EncodeAll and DecodeAll run on the caller's goroutine and may be called
// concurrently, up to the configured concurrency, and stop allocating after
// warm-up when dst has capacity.
var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		n := max(2, runtime.GOMAXPROCS(0))
		zstdEnc, zstdErr = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(n),
			zstd.WithEncoderCRC(false), // frames carry their own CRC32C
			zstd.WithZeroFrames(true))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(n),
			zstd.WithDecoderMaxMemory(DefaultMaxFrame),
			zstd.WithDecodeAllCapLimit(true)) // never grow dst past its capacity
	})
	return zstdEnc, zstdDec, zstdErr
}

// Compress appends the compression of src with codec c to dst[:0] and
// returns it. It keeps no state; dst is reused when its capacity suffices.
// CodecNone copies.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst[:0], src...), nil
	case CodecS2:
		// s2 takes (dst, src) and writes from dst[0]; it reuses dst only
		// when cap covers MaxEncodedLen.
		need := s2.MaxEncodedLen(len(src))
		if need < 0 {
			return dst[:0], fmt.Errorf("comm: s2: block of %d bytes too large", len(src))
		}
		return s2.Encode(grow(dst, need), src), nil
	case CodecZstd:
		enc, _, err := zstdCodecs()
		if err != nil {
			return dst[:0], err
		}
		// zstd takes (src, dst) and appends to dst.
		return enc.EncodeAll(src, dst[:0]), nil
	}
	return dst[:0], fmt.Errorf("comm: unknown codec %d", c)
}

// Decompress decodes src, compressed with codec c, into dst[:0] and checks
// that it yields exactly rawLen bytes, which the caller has already bounded
// (MaxFrame). dst is reused when its capacity covers rawLen.
func Decompress(c Codec, dst, src []byte, rawLen int) ([]byte, error) {
	return decompress(c, dst, src, rawLen)
}

func decompress(c Codec, dst, src []byte, rawLen int) ([]byte, error) {
	switch c {
	case CodecNone:
		if len(src) != rawLen {
			return dst[:0], fmt.Errorf("%w: length %d, header says %d", ErrCorrupt, len(src), rawLen)
		}
		return append(dst[:0], src...), nil
	case CodecS2:
		n, err := s2.DecodedLen(src)
		if err != nil || n != rawLen {
			return dst[:0], fmt.Errorf("%w: s2 block decodes to %d bytes, header says %d (%v)", ErrCorrupt, n, rawLen, err)
		}
		out, err := s2.Decode(grow(dst, rawLen), src)
		if err != nil {
			return dst[:0], fmt.Errorf("%w: s2: %v", ErrCorrupt, err)
		}
		return out, nil
	case CodecZstd:
		_, dec, err := zstdCodecs()
		if err != nil {
			return dst[:0], err
		}
		out, err := dec.DecodeAll(src, grow(dst, rawLen)[:0])
		if err != nil || len(out) != rawLen {
			return dst[:0], fmt.Errorf("%w: zstd frame decodes to %d bytes, header says %d (%v)", ErrCorrupt, len(out), rawLen, err)
		}
		return out, nil
	}
	return dst[:0], fmt.Errorf("%w: unknown codec %d", ErrCorrupt, c)
}

// Shuffle writes the byte-shuffle of the float64 array src (len a multiple
// of 8) to dst (same length): byte k of value i goes to dst[k*n+i], so the
// slowly varying sign/exponent bytes of all values sit together, which
// compressors like. It panics on mismatched lengths (caller bug).
//
// Reference loop:
//
//	for i := 0; i < n; i++ { for k := 0; k < 8; k++ { dst[k*n+i] = src[8*i+k] } }
func Shuffle(dst, src []byte) {
	if len(dst) != len(src) || len(src)%8 != 0 {
		panic("comm: Shuffle: lengths must be equal multiples of 8")
	}
	n := len(src) / 8
	if n == 0 {
		return
	}
	p0, p1, p2, p3 := dst[0:n], dst[n:2*n], dst[2*n:3*n], dst[3*n:4*n]
	p4, p5, p6, p7 := dst[4*n:5*n], dst[5*n:6*n], dst[6*n:7*n], dst[7*n:8*n]
	for i := range p0 {
		v := src[8*i : 8*i+8 : 8*i+8]
		p0[i], p1[i], p2[i], p3[i] = v[0], v[1], v[2], v[3]
		p4[i], p5[i], p6[i], p7[i] = v[4], v[5], v[6], v[7]
	}
}

// Unshuffle inverts Shuffle: dst[8*i+k] = src[k*n+i].
func Unshuffle(dst, src []byte) {
	if len(dst) != len(src) || len(src)%8 != 0 {
		panic("comm: Unshuffle: lengths must be equal multiples of 8")
	}
	n := len(src) / 8
	if n == 0 {
		return
	}
	p0, p1, p2, p3 := src[0:n], src[n:2*n], src[2*n:3*n], src[3*n:4*n]
	p4, p5, p6, p7 := src[4*n:5*n], src[5*n:6*n], src[6*n:7*n], src[7*n:8*n]
	for i := range p0 {
		v := dst[8*i : 8*i+8 : 8*i+8]
		v[0], v[1], v[2], v[3] = p0[i], p1[i], p2[i], p3[i]
		v[4], v[5], v[6], v[7] = p4[i], p5[i], p6[i], p7[i]
	}
}

// unshuffleInto copies the shuffled message payload src to dst (same
// length), unshuffling its float block.
func unshuffleInto(dst, src []byte) error {
	l, err := parseLayout(src)
	if err != nil {
		return err
	}
	copy(dst[:l.floatOff], src[:l.floatOff])
	Unshuffle(dst[l.floatOff:l.idxOff], src[l.floatOff:l.idxOff])
	copy(dst[l.idxOff:], src[l.idxOff:])
	return nil
}
