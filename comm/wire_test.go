package comm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// seedMsgs are messages of every kind, for round trips and fuzz corpora;
// n scales the vector lengths (fuzz corpora want small inputs).
func seedMsgs(n int) []*Msg {
	rng := rand.New(rand.NewPCG(1, 2))
	normal := make([]float64, 3*n)
	for i := range normal {
		normal[i] = rng.NormFloat64()
	}
	smooth := make([]float64, 20*n)
	for i := range smooth {
		smooth[i] = math.Round(1000*math.Sin(float64(i)/float64(n))) / 1000
	}
	return []*Msg{
		{},
		{Ints: []int64{1, -2, math.MaxInt64}},
		{Dense: []float64{}},
		{Dense: []float64{1.5, -2, math.Inf(1)}, Ints: []int64{7}},
		{Dense: normal, Bytes: []byte("tail")},
		{Dense: smooth, Ints: []int64{3, 4}},
		{Dim: 10, Idx: []int32{0, 3, 9}, Vals: []float64{1, 2, 3}},
		{Dim: 5, Idx: []int32{}, Vals: []float64{}},
		{Dim: 1 << 20, Idx: []int32{5, 1 << 19, 1<<20 - 1}, Vals: []float64{-1, 0, 1}, Bytes: []byte{0}},
		{Bytes: bytes.Repeat([]byte("abc"), 5*n)},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
		var stream []byte
		msgs := seedMsgs(1000)
		for i, m := range msgs {
			var err error
			stream, err = AppendFrame(stream, 3, i, m, codec, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
		fr := FrameReader{R: bytes.NewReader(stream)}
		compressed := 0
		for i, want := range msgs {
			f, err := fr.Next()
			if err != nil {
				t.Fatalf("%v: frame %d: %v", codec, i, err)
			}
			if f.Tag != i || f.Src != 3 || f.Type != frameData {
				t.Fatalf("%v: frame %d: tag %d src %d type %d", codec, i, f.Tag, f.Src, f.Type)
			}
			if f.Codec != CodecNone {
				compressed++
			}
			var m Msg
			if err := DecodeMsg(f.Payload, &m); err != nil {
				t.Fatalf("%v: frame %d: %v", codec, i, err)
			}
			if err := sameMsg(&m, want); err != nil {
				t.Fatalf("%v: frame %d: %v", codec, i, err)
			}
		}
		if _, err := fr.Next(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
		// The smooth vector and the repeated bytes must compress; the
		// normal noise must not be sent compressed.
		if codec != CodecNone && compressed < 2 {
			t.Errorf("%v: only %d frames compressed", codec, compressed)
		}
	}
}

// TestFrameDefects: each defect of a frame from our writer is reported by
// the reader with the right error.
func TestFrameDefects(t *testing.T) {
	good, err := AppendFrame(nil, 1, 2, &Msg{Dense: []float64{1, 2, 3}}, CodecNone, 0)
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	withHeader := func(b []byte, off int, v uint64) []byte {
		binary.LittleEndian.PutUint64(b[off:], v)
		binary.LittleEndian.PutUint32(b[36:], crc32c(b[:36]))
		return b
	}
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"truncated payload", good[:len(good)-3], io.ErrUnexpectedEOF},
		{"truncated header", good[:20], io.ErrUnexpectedEOF},
		{"payload CRC", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum},
		{"header CRC", mut(func(b []byte) []byte { b[20] ^= 1; return b }), ErrChecksum},
		{"bad magic", mut(func(b []byte) []byte { b[0] = 'X'; return b }), ErrBadMagic},
		{"version", mut(func(b []byte) []byte { b[4] = 9; return b }), ErrVersion},
		{"oversized wire length", mut(func(b []byte) []byte { return withHeader(b, 16, 1<<40) }), ErrFrameTooLarge},
		{"oversized raw length", mut(func(b []byte) []byte { return withHeader(b, 24, 1<<40) }), ErrFrameTooLarge},
		{"lengths disagree", mut(func(b []byte) []byte { return withHeader(b, 24, 5) }), ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fr := FrameReader{R: bytes.NewReader(tc.frame), MaxFrame: 1 << 20}
			_, err := fr.Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func crc32c(b []byte) uint32 { return crcOf(b) }

func timeUnit(i int) time.Duration { return time.Duration(i) }

func TestSparseRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, dim := range []int{0, 1, 10, 1000, 1 << 24} {
		var idx []int32
		var val []float64
		for j := 0; j < dim; j += 1 + rng.IntN(max(1, dim/50)) {
			idx = append(idx, int32(j))
			val = append(val, rng.NormFloat64())
		}
		b := AppendSparse(nil, dim, idx, val)
		d, gi, gv, err := DecodeSparse(b, nil, nil)
		if err != nil || d != dim || !slices.Equal(gi, idx) || !slices.Equal(gv, val) {
			t.Fatalf("dim %d: round trip failed: %v", dim, err)
		}
		// Every strict prefix is refused, not mis-decoded.
		for cut := 0; cut < len(b); cut += 1 + len(b)/20 {
			if _, _, _, err := DecodeSparse(b[:cut], nil, nil); err == nil && cut < len(b) {
				d2, i2, _, _ := DecodeSparse(b[:cut], nil, nil)
				if d2 == dim && len(i2) == len(idx) {
					t.Fatalf("dim %d: prefix of %d/%d bytes decoded whole", dim, cut, len(b))
				}
			}
		}
	}
}

func TestShuffle(t *testing.T) {
	src := make([]byte, 8*37)
	for i := range src {
		src[i] = byte(i * 7)
	}
	sh := make([]byte, len(src))
	Shuffle(sh, src)
	n := len(src) / 8
	for i := range n {
		for k := range 8 {
			if sh[k*n+i] != src[8*i+k] {
				t.Fatalf("Shuffle: byte %d of value %d misplaced", k, i)
			}
		}
	}
	back := make([]byte, len(src))
	Unshuffle(back, sh)
	if !bytes.Equal(back, src) {
		t.Fatal("Unshuffle does not invert Shuffle")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"size 0", func(c *Config) { c.Size = 0 }},
		{"rank too big", func(c *Config) { c.Rank = 4 }},
		{"no secret", func(c *Config) { c.Secret = nil }},
		{"long job id", func(c *Config) { c.JobID = string(make([]byte, 65)) }},
		{"heartbeat", func(c *Config) { c.HeartbeatTimeout = c.HeartbeatInterval }},
		{"codec", func(c *Config) { c.Codec = 9 }},
		{"no rendezvous", func(c *Config) { c.Addr, c.Store = "", nil }},
		{"bad addr", func(c *Config) { c.Addr = "nohostport" }},
		{"bad bind", func(c *Config) { c.Bind = "no-such-interface0" }},
		{"max frame", func(c *Config) { c.MaxFrame = 3 }},
	}
	for _, tc := range cases {
		cfg := testConfig(1, 4, NewMemStore())
		if err := cfg.Validate(); err != nil {
			t.Fatalf("base config: %v", err)
		}
		tc.mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", tc.name)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.observe(1000 * timeUnit(i))
	}
	p50, p99 := h.quantile(0.5), h.quantile(0.99)
	// Buckets are a quarter power of two wide: within 25% above.
	if p50 < 500_000 || p50 > 625_000 || p99 < 990_000 || p99 > 1_250_000 {
		t.Fatalf("p50 %v p99 %v", p50, p99)
	}
}

func TestSizeClass(t *testing.T) {
	prev := 0
	for n := 1; n < 1<<22; n += 1 + n/7 {
		c, size := sizeClass(n)
		if size < n || size > n+n/4+64 {
			t.Fatalf("n=%d: size %d", n, size)
		}
		if c < prev {
			t.Fatalf("n=%d: class %d decreases", n, c)
		}
		if c2, s2 := sizeClass(size); c2 != c || s2 != size {
			t.Fatalf("n=%d: size %d maps to class %d size %d, want %d %d", n, size, c2, s2, c, size)
		}
		prev = c
	}
}

// TestCompressionPays: on a link faster than compression saves, frames go
// raw; on a slow link they are compressed; unmeasured links compress.
func TestCompressionPays(t *testing.T) {
	smooth := seedMsgs(20000)[5] // 400k compressible floats
	small := seedMsgs(100)[5]    // 2000 floats: below the sample size
	for _, tc := range []struct {
		name     string
		linkBps  float64
		wantComp bool
	}{
		{"unmeasured", 0, true},
		{"slow link", 1e6, true},
		{"very fast link", 1e13, false},
	} {
		for _, m := range []*Msg{smooth, small} {
			e := encoder{codec: CodecS2, minCompress: 64, maxFrame: DefaultMaxFrame, linkBps: tc.linkBps}
			compressed := 0
			for range 3 { // the first small message probes
				_, _, wire, raw, err := e.encode(1, m)
				if err != nil {
					t.Fatal(err)
				}
				if wire < raw {
					compressed++
				}
			}
			if got := compressed == 3; got != tc.wantComp && !(compressed == 1 && !tc.wantComp && len(m.Dense) < sampleFloats) {
				t.Errorf("%s, %d floats: compressed %d of 3, want all %v", tc.name, len(m.Dense), compressed, tc.wantComp)
			}
		}
	}
}

// TestFragments: long uncompressed messages travel as fragments, each
// checked, and a fragment that does not continue its message is refused.
func TestFragments(t *testing.T) {
	defer func(old int) { fragSize = old }(fragSize)
	fragSize = 1000
	m := seedMsgs(100)[4] // 300 floats and 4 bytes: 2444 bytes, 3 fragments
	b, err := AppendFrame(nil, 2, 9, m, CodecNone, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 2444+3*frameHeaderLen {
		t.Fatalf("frame of %d bytes, want 3 fragments", len(b))
	}
	fr := FrameReader{R: bytes.NewReader(b)}
	f, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	var got Msg
	if err := DecodeMsg(f.Payload, &got); err != nil || sameMsg(&got, m) != nil {
		t.Fatalf("reassembled message differs: %v", err)
	}
	second := frameHeaderLen + 1000 // offset of the second fragment's header
	cases := []struct {
		name string
		mod  func(b []byte) []byte
		want error
	}{
		{"cut in the second fragment", func(b []byte) []byte { return b[:second+100] }, io.ErrUnexpectedEOF},
		{"CRC of the second fragment", func(b []byte) []byte { b[second+frameHeaderLen+5] ^= 1; return b }, ErrChecksum},
		{"fragment of another tag", func(b []byte) []byte {
			b[second+8]++
			binary.LittleEndian.PutUint32(b[second+36:], crc32c(b[second:second+36]))
			return b
		}, ErrCorrupt},
		{"missing fragment", func(b []byte) []byte { return append(b[:second], b[second+frameHeaderLen+1000:]...) }, ErrCorrupt},
	}
	for _, tc := range cases {
		fr := FrameReader{R: bytes.NewReader(tc.mod(slices.Clone(b)))}
		if _, err := fr.Next(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestCastagnoliFold compares crcUpdate (the AVX-512 kernel where the CPU
// has it) with hash/crc32 on every length around the kernel's thresholds
// and on unaligned starts, with and without an initial CRC.
func TestCastagnoliFold(t *testing.T) {
	if !foldOK {
		t.Log("no AVX-512 VPCLMULQDQ (or noasm build): checking the fallback only")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 70000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lengths := []int{0, 1, 15, 16, 255, 256, 257, 511, 512, 513, 527, 528, 767, 768, 1024, 4095, 4096, 65536, 69000}
	for n := 500; n < 1400; n += 7 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, off := range []int{0, 1, 3, 8, 13} {
			for _, init := range []uint32{0, 0xdeadbeef} {
				p := buf[off : off+n]
				if got, want := crcUpdate(init, p), crc32.Update(init, castagnoli, p); got != want {
					t.Fatalf("len %d off %d init %#x: %#x, want %#x", n, off, init, got, want)
				}
			}
		}
	}
}

func BenchmarkCRC32C(b *testing.B) {
	p := make([]byte, 256<<10)
	for _, impl := range []struct {
		name string
		f    func(uint32, []byte) uint32
	}{
		{"ours", crcUpdate},
		{"hash-crc32", func(c uint32, p []byte) uint32 { return crc32.Update(c, castagnoli, p) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				impl.f(0, p)
			}
		})
	}
}
