package comm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// appendIdxSlow and decodeIdxSlow are the index coders as they were before
// the inline 1- and 2-byte paths, kept verbatim as the reference.
func appendIdxSlow(dst []byte, idx []int32, dim int) []byte {
	prev := int64(-1)
	for _, j := range idx {
		if int64(j) <= prev || int(j) >= dim {
			panic("comm: sparse indices must be strictly increasing and in [0, dim)")
		}
		dst = binary.AppendUvarint(dst, uint64(int64(j)-prev-1))
		prev = int64(j)
	}
	return dst
}

func decodeIdxSlow(dst []int32, src []byte, nnz, dim int) ([]int32, error) {
	if nnz > len(src) {
		return dst, fmt.Errorf("%w: %d indices in %d bytes", ErrSparse, nnz, len(src))
	}
	dst = growInt32(dst, nnz)
	prev := int64(-1)
	for k := range nnz {
		gap, n := uvarint(src)
		if n <= 0 || gap > math.MaxInt32 {
			return dst[:0], fmt.Errorf("%w: bad index varint", ErrSparse)
		}
		src = src[n:]
		j := prev + 1 + int64(gap)
		if j >= int64(dim) {
			return dst[:0], fmt.Errorf("%w: index %d outside [0,%d)", ErrSparse, j, dim)
		}
		dst[k] = int32(j)
		prev = j
	}
	if len(src) != 0 {
		return dst[:0], fmt.Errorf("%w: %d trailing bytes after the indices", ErrSparse, len(src))
	}
	return dst, nil
}

// textIdx draws a sorted support of about k indices in [0, d) with
// popularity 1/j (text-like: gaps of 1, 2 and 3 bytes).
func textIdx(rng *rand.Rand, d, k int) []int32 {
	lnd := math.Log(float64(d))
	idx := make([]int32, 0, k)
	for range k {
		idx = append(idx, int32(min(d-1, int(math.Exp(rng.Float64()*lnd))-1)))
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// TestIdxCodersMatchSlow: the index coders give the reference's bytes, and
// the decoder the reference's indices and errors (message included), on
// valid codes of every gap length, on their truncations and on random
// and mutated bytes (non-minimal codes, overlong varints, bytes after the
// end, indices out of range).
func TestIdxCodersMatchSlow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	check := func(src []byte, nnz, dim int) {
		t.Helper()
		got, err := decodeIdx(nil, src, nnz, dim)
		want, werr := decodeIdxSlow(nil, src, nnz, dim)
		if fmt.Sprint(err) != fmt.Sprint(werr) || !slices.Equal(got, want) {
			t.Fatalf("decode % x (nnz %d, dim %d): %v, %v; reference %v, %v", src, nnz, dim, got, err, want, werr)
		}
	}
	for round := range 3000 {
		dim := 1 + rng.IntN(1<<uint(1+rng.IntN(30)))
		var idx []int32
		switch round % 3 {
		case 0:
			idx = textIdx(rng, dim, rng.IntN(50))
		case 1: // uniform: long gaps at a large dim
			for j := range dim {
				if rng.IntN(dim) < 20 {
					idx = append(idx, int32(j))
				}
				if j > 1<<16 {
					break
				}
			}
		case 2:
			for j := 0; j < dim && len(idx) < 40; j += 1 + rng.IntN(1<<uint(rng.IntN(22))) {
				idx = append(idx, int32(j))
			}
		}
		prefix := []byte{0xde, 0xad}[:rng.IntN(3)]
		got := appendIdx(slices.Clone(prefix), idx, dim)
		want := appendIdxSlow(slices.Clone(prefix), idx, dim)
		if !bytes.Equal(got, want) {
			t.Fatalf("append %v: % x, reference % x", idx, got, want)
		}
		code := want[len(prefix):]
		check(code, len(idx), dim)
		check(code, len(idx), dim/2+1)
		if len(code) > 0 {
			check(code[:rng.IntN(len(code))], len(idx), dim)
			check(code, len(idx)-1, dim)
			bad := slices.Clone(code)
			for range 1 + rng.IntN(3) {
				bad[rng.IntN(len(bad))] = []byte{0x00, 0x80, 0xff, byte(rng.Uint32())}[rng.IntN(4)]
			}
			check(bad, len(idx), dim)
			check(append(bad, 0x80, 0x00), len(idx)+1, dim) // a non-minimal last code
		}
		junk := make([]byte, rng.IntN(30))
		for i := range junk {
			junk[i] = byte(rng.Uint32()) | byte(rng.IntN(2))<<7
		}
		check(junk, rng.IntN(len(junk)+2), dim)
	}
}

// BenchmarkIdxCoders measures the index coders on text-like supports (about
// 3,800 indices of d = 2^20 with popularity 1/j, as a d1m gradient or
// key list): the reference (binary.Uvarint, binary.AppendUvarint) against
// the inline 1- and 2-byte paths, in the same run, in ns per index and
// the ratio.
func BenchmarkIdxCoders(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	const d = 1 << 20
	var sets [][]int32
	var codes [][]byte
	lens := [4]int{}
	for range 64 {
		idx := textIdx(rng, d, 6400)
		sets = append(sets, idx)
		codes = append(codes, appendIdxSlow(nil, idx, d))
		prev := int64(-1)
		for _, j := range idx {
			lens[len(binary.AppendUvarint(nil, uint64(int64(j)-prev-1)))]++
			prev = int64(j)
		}
	}
	b.Logf("varint lengths 1/2/3 bytes: %v", lens[1:])
	per := map[string]float64{}
	dst := make([]int32, 0, 8192)
	buf := make([]byte, 0, 1<<16)
	for _, name := range []string{"decode/slow", "decode/fast", "append/slow", "append/fast"} {
		b.Run(name, func(b *testing.B) {
			n := 0
			for i := 0; b.Loop(); i++ {
				k := i % len(sets)
				switch name {
				case "decode/slow":
					dst, _ = decodeIdxSlow(dst[:0], codes[k], len(sets[k]), d)
				case "decode/fast":
					dst, _ = decodeIdx(dst[:0], codes[k], len(sets[k]), d)
				case "append/slow":
					buf = appendIdxSlow(buf[:0], sets[k], d)
				case "append/fast":
					buf = appendIdx(buf[:0], sets[k], d)
				}
				n += len(sets[k])
			}
			per[name] = float64(b.Elapsed().Nanoseconds()) / float64(n)
			b.ReportMetric(per[name], "ns/index")
			if op, ok := strings.CutSuffix(name, "/fast"); ok && per[op+"/slow"] > 0 {
				b.ReportMetric(per[op+"/slow"]/per[name], "x-slow")
			}
		})
	}
}
