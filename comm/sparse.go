package comm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrSparse reports a malformed sparse vector encoding.
var ErrSparse = errors.New("comm: malformed sparse vector")

// AppendFloat64s appends the little-endian IEEE-754 bytes of x to dst.
func AppendFloat64s(dst []byte, x []float64) []byte {
	for _, v := range x {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}

// DecodeFloat64s appends the float64s encoded in src (len(src) a multiple
// of 8; a trailing partial value is ignored) to dst.
func DecodeFloat64s(dst []float64, src []byte) []float64 {
	for len(src) >= 8 {
		dst = append(dst, math.Float64frombits(binary.LittleEndian.Uint64(src)))
		src = src[8:]
	}
	return dst
}

// appendIdx appends the delta-varint encoding of idx (the first index, then
// each gap) to dst. It panics unless idx is strictly increasing within
// [0, dim): that is a caller bug. The bytes are binary.AppendUvarint's,
// written straight into dst's spare capacity (grown once for the worst
// case, 5 bytes per index) with the 1- and 2-byte gaps, most of a text-like
// support's, inline.
func appendIdx(dst []byte, idx []int32, dim int) []byte {
	dst = slices.Grow(dst, binary.MaxVarintLen32*len(idx))
	n := len(dst)
	out := dst[:cap(dst)]
	prev := int64(-1)
	for _, j := range idx {
		if int64(j) <= prev || int(j) >= dim {
			panic("comm: sparse indices must be strictly increasing and in [0, dim)")
		}
		gap := uint64(int64(j) - prev - 1)
		prev = int64(j)
		if gap < 1<<14 {
			// Both bytes written, the second kept only when the
			// first continues (c = 1: gap >= 128), without a branch
			// on the length.
			c := (127 - gap) >> 63
			out[n], out[n+1] = byte(gap)|byte(c<<7), byte(gap>>7)
			n += 1 + int(c)
		} else {
			n += len(binary.AppendUvarint(out[n:n], gap))
		}
	}
	return out[:n]
}

// decodeIdx appends nnz indices decoded from src (exactly consumed) to dst
// and checks they are strictly increasing within [0, dim). The 1- and
// 2-byte gaps are decoded inline (the rest by uvarint); what it accepts
// and the errors it gives are decodeIdxSlow's (the reference in the
// tests).
func decodeIdx(dst []int32, src []byte, nnz, dim int) ([]int32, error) {
	if nnz > len(src) {
		return dst, fmt.Errorf("%w: %d indices in %d bytes", ErrSparse, nnz, len(src))
	}
	dst = growInt32(dst, nnz)
	prev, i := int64(-1), 0
	for k := range dst {
		var gap uint64
		fast := false
		if i+1 < len(src) {
			// Without a branch on the length (1 or 2 bytes at random
			// in a text-like support): c is 1 when the first byte
			// continues; the second must then end the code and not
			// be 0 (a non-minimal code), else the general path.
			b0, b1 := uint64(src[i]), uint64(src[i+1])
			c := b0 >> 7
			if fast = c&(b1>>7|(b1-1)>>63) == 0; fast {
				gap = b0&0x7f | (b1&-c)<<7
				i += 1 + int(c)
			}
		}
		if !fast {
			g, n := uvarint(src[i:])
			if n <= 0 || g > math.MaxInt32 {
				return dst[:0], fmt.Errorf("%w: bad index varint", ErrSparse)
			}
			gap = g
			i += n
		}
		j := prev + 1 + int64(gap)
		if j >= int64(dim) {
			return dst[:0], fmt.Errorf("%w: index %d outside [0,%d)", ErrSparse, j, dim)
		}
		dst[k] = int32(j)
		prev = j
	}
	if i != len(src) {
		return dst[:0], fmt.Errorf("%w: %d trailing bytes after the indices", ErrSparse, len(src)-i)
	}
	return dst, nil
}

func growInt32(b []int32, n int) []int32 {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]int32, n)
}

// AppendSparse appends a self-contained encoding of the sparse vector
// (dim, idx, val) to dst and returns it:
//
//	uvarint dim, uvarint nnz, nnz uvarint index gaps (the first index, then
//	idx[k]-idx[k-1]-1), nnz float64 little-endian values.
//
// idx must be strictly increasing in [0, dim) and len(val) == len(idx);
// otherwise AppendSparse panics (a caller bug). It allocates only when dst
// lacks capacity.
func AppendSparse(dst []byte, dim int, idx []int32, val []float64) []byte {
	if len(idx) != len(val) {
		panic("comm: AppendSparse: len(idx) != len(val)")
	}
	dst = binary.AppendUvarint(dst, uint64(dim))
	dst = binary.AppendUvarint(dst, uint64(len(idx)))
	dst = appendIdx(dst, idx, dim)
	return AppendFloat64s(dst, val)
}

// DecodeSparse decodes an AppendSparse encoding, appending to idx[:0] and
// val[:0] (reused when their capacity suffices). It returns the dimension,
// or an error wrapping ErrSparse for malformed input; it never allocates
// more than the input's length justifies.
func DecodeSparse(src []byte, idx []int32, val []float64) (dim int, idxOut []int32, valOut []float64, err error) {
	d, n := uvarint(src)
	if n <= 0 || d > math.MaxInt32+1 {
		return 0, idx[:0], val[:0], fmt.Errorf("%w: bad dimension", ErrSparse)
	}
	src = src[n:]
	nnz, n := uvarint(src)
	if n <= 0 || nnz > d || nnz > uint64(len(src)/9) {
		return 0, idx[:0], val[:0], fmt.Errorf("%w: bad entry count", ErrSparse)
	}
	src = src[n:]
	// The indices end where the values (8*nnz bytes) begin.
	vb := len(src) - 8*int(nnz)
	idx, err = decodeIdx(idx[:0], src[:vb], int(nnz), int(d))
	if err != nil {
		return 0, idx, val[:0], err
	}
	return int(d), idx, DecodeFloat64s(val[:0], src[vb:]), nil
}

// uvarint is binary.Uvarint that also refuses non-minimal encodings (a
// trailing 0x00 continuation byte), so that every value has exactly one
// encoding.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, -n
	}
	return v, n
}
