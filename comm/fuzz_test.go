package comm

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the frame reader. The corpus is
// frames from our own writer with every codec. Decode errors are fine; a
// frame that decodes must re-encode to a frame that decodes to the same
// message, and nothing may panic or allocate beyond MaxFrame.
func FuzzReadFrame(f *testing.F) {
	for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
		for i, m := range seedMsgs(30) {
			b, err := AppendFrame(nil, 1, i, m, codec, 64)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	old := fragSize
	fragSize = 200 // seeds with fragmented messages
	for i, m := range seedMsgs(30) {
		b, err := AppendFrame(nil, 1, i, m, CodecNone, 64)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fragSize = old
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := FrameReader{R: bytes.NewReader(data), MaxFrame: 1 << 20}
		for {
			fm, err := fr.Next()
			if err != nil {
				return
			}
			var m Msg
			if DecodeMsg(fm.Payload, &m) != nil {
				continue
			}
			b, err := AppendFrame(nil, fm.Src, fm.Tag, &m, CodecS2, 64)
			if err != nil {
				t.Fatalf("re-encoding a decoded message: %v", err)
			}
			fr2 := FrameReader{R: bytes.NewReader(b)}
			fm2, err := fr2.Next()
			if err != nil {
				t.Fatalf("re-encoded frame does not decode: %v", err)
			}
			var m2 Msg
			if err := DecodeMsg(fm2.Payload, &m2); err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			if err := sameMsgBits(&m2, &m); err != nil {
				t.Fatalf("round trip changed the message: %v", err)
			}
		}
	})
}

// sameMsgBits is sameMsg comparing floats by bits (NaNs from fuzz input).
func sameMsgBits(a, b *Msg) error {
	eq := func(x, y []float64) bool {
		return slices.EqualFunc(x, y, func(u, v float64) bool { return u == v || (u != u && v != v) })
	}
	c, d := *a, *b
	if !eq(c.Dense, d.Dense) || !eq(c.Vals, d.Vals) {
		return sameMsg(&Msg{Dense: []float64{0}}, &Msg{Dense: []float64{1}})
	}
	c.Dense, d.Dense, c.Vals, d.Vals = nil, nil, nil, nil
	if (a.Dense == nil) != (b.Dense == nil) {
		return sameMsg(&Msg{Dense: []float64{}}, &Msg{})
	}
	return sameMsg(&c, &d)
}

// FuzzDecodeSparse: arbitrary bytes never panic the sparse decoder, and
// what decodes re-encodes to the same bytes (the encoding is canonical).
func FuzzDecodeSparse(f *testing.F) {
	f.Add(AppendSparse(nil, 0, nil, nil))
	f.Add(AppendSparse(nil, 10, []int32{0, 3, 9}, []float64{1, 2, 3}))
	f.Add(AppendSparse(nil, 1<<20, []int32{5, 1 << 19, 1<<20 - 1}, []float64{-1, 0, 1}))
	for _, m := range seedMsgs(30) {
		if m.Idx != nil {
			f.Add(AppendSparse(nil, m.Dim, m.Idx, m.Vals))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dim, idx, val, err := DecodeSparse(data, nil, nil)
		if err != nil {
			return
		}
		if len(idx) != len(val) {
			t.Fatalf("decoded %d indices and %d values", len(idx), len(val))
		}
		for k, j := range idx {
			if j < 0 || int(j) >= dim || (k > 0 && j <= idx[k-1]) {
				t.Fatalf("index %d = %d breaks the invariants (dim %d)", k, j, dim)
			}
		}
		if re := AppendSparse(nil, dim, idx, val); !bytes.Equal(re, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, data)
		}
	})
}
