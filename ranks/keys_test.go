package ranks

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

// appendKeysSlow and decodeKeysSlow are the key coders as they were before
// the inline 1- and 2-byte paths, kept verbatim as the reference.
func appendKeysSlow(dst []byte, keys []int32) []byte {
	prev := int64(-1)
	for _, j := range keys {
		dst = binary.AppendUvarint(dst, uint64(int64(j)-prev-1))
		prev = int64(j)
	}
	return dst
}

func decodeKeysSlow(dst []int32, b []byte, nkeys int64, d int) ([]int32, error) {
	if nkeys < 0 || nkeys > int64(len(b)) || nkeys > int64(d) {
		return dst, fmt.Errorf("%d keys in %d bytes (dimension %d)", nkeys, len(b), d)
	}
	if dst == nil {
		dst = make([]int32, 0, nkeys)
	}
	prev := int64(-1)
	for range nkeys {
		gap, n := binary.Uvarint(b)
		if n <= 0 || gap >= uint64(d) {
			return dst[:0], fmt.Errorf("bad key code after key %d", prev)
		}
		b = b[n:]
		j := prev + 1 + int64(gap)
		if j >= int64(d) {
			return dst[:0], fmt.Errorf("key %d outside [0,%d)", j, d)
		}
		dst = append(dst, int32(j))
		prev = j
	}
	if len(b) != 0 {
		return dst[:0], fmt.Errorf("%d bytes after the %d keys", len(b), nkeys)
	}
	return dst, nil
}

// textKeys draws sorted keys in [0, d) with popularity 1/j (gaps of 1, 2
// and 3 bytes).
func textKeys(rng *rand.Rand, d, k int) []int32 {
	lnd := math.Log(float64(d))
	keys := make([]int32, 0, k)
	for range k {
		keys = append(keys, int32(min(d-1, int(math.Exp(rng.Float64()*lnd))-1)))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// TestKeyCodersMatchSlow: the key coders give the reference's bytes, and
// the decoder the reference's keys and errors (message included, nil-ness
// of the result too, appending after a prefix), on valid codes of every
// gap length, their truncations, padded varints, mutations and random
// bytes.
func TestKeyCodersMatchSlow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	check := func(b []byte, nkeys int64, d int) {
		t.Helper()
		for _, pre := range [][]int32{nil, {}, {42, 43}} {
			got, err := decodeKeys(slices.Clone(pre), b, nkeys, d)
			want, werr := decodeKeysSlow(slices.Clone(pre), b, nkeys, d)
			if fmt.Sprint(err) != fmt.Sprint(werr) || !slices.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("decode % x (%d keys, d %d, after %v): %v, %v; reference %v, %v", b, nkeys, d, pre, got, err, want, werr)
			}
		}
	}
	for round := range 3000 {
		d := 1 + rng.IntN(1<<uint(1+rng.IntN(30)))
		var keys []int32
		if round%2 == 0 {
			keys = textKeys(rng, d, rng.IntN(50))
		} else {
			for j := 0; j < d && len(keys) < 40; j += 1 + rng.IntN(1<<uint(rng.IntN(22))) {
				keys = append(keys, int32(j))
			}
		}
		code := appendKeys([]byte{7}, keys)[1:]
		if want := appendKeysSlow(nil, keys); !bytes.Equal(code, want) {
			t.Fatalf("append %v: % x, reference % x", keys, code, want)
		}
		n := int64(len(keys))
		check(code, n, d)
		check(code, n, d/2+1)
		check(code, n-1, d)
		if len(code) > 0 {
			check(code[:rng.IntN(len(code))], n, d)
			bad := slices.Clone(code)
			for range 1 + rng.IntN(3) {
				bad[rng.IntN(len(bad))] = []byte{0x00, 0x80, 0xff, byte(rng.Uint32())}[rng.IntN(4)]
			}
			check(bad, n, d)
		}
		check(append(slices.Clone(code), 0x80, 0x00), n+1, d) // a padded 0
		check(append(slices.Clone(code), 0x81, 0x80, 0x00), n+1, d)
		junk := make([]byte, rng.IntN(30))
		for i := range junk {
			junk[i] = byte(rng.Uint32()) | byte(rng.IntN(2))<<7
		}
		check(junk, int64(rng.IntN(len(junk)+2)), d)
	}
}

// BenchmarkKeyCoders measures the key coders on text-like key lists (about
// 3,800 keys of d = 2^20 with popularity 1/j, as a d1m batch): the
// reference against the inline 1- and 2-byte paths, in the same run, in ns
// per key and the ratio.
func BenchmarkKeyCoders(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	const d = 1 << 20
	var sets [][]int32
	var codes [][]byte
	for range 64 {
		keys := textKeys(rng, d, 6400)
		sets, codes = append(sets, keys), append(codes, appendKeysSlow(nil, keys))
	}
	dst := make([]int32, 0, 8192)
	buf := make([]byte, 0, 1<<16)
	per := map[string]float64{}
	for _, name := range []string{"decode/slow", "decode/fast", "append/slow", "append/fast"} {
		b.Run(name, func(b *testing.B) {
			n := 0
			for i := 0; b.Loop(); i++ {
				k := i % len(sets)
				switch name {
				case "decode/slow":
					dst, _ = decodeKeysSlow(dst[:0], codes[k], int64(len(sets[k])), d)
				case "decode/fast":
					dst, _ = decodeKeys(dst[:0], codes[k], int64(len(sets[k])), d)
				case "append/slow":
					buf = appendKeysSlow(buf[:0], sets[k])
				case "append/fast":
					buf = appendKeys(buf[:0], sets[k])
				}
				n += len(sets[k])
			}
			per[name] = float64(b.Elapsed().Nanoseconds()) / float64(n)
			b.ReportMetric(per[name], "ns/key")
			if op, ok := strings.CutSuffix(name, "/fast"); ok && per[op+"/slow"] > 0 {
				b.ReportMetric(per[op+"/slow"]/per[name], "x-slow")
			}
		})
	}
}
