package ranks

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
)

// roundTrip sends m through comm's frame encoding and decodes it again.
func roundTrip(t testing.TB, m *comm.Msg) *comm.Msg {
	t.Helper()
	b, err := comm.AppendFrame(nil, 1, tagGrad, m, comm.CodecNone, 64)
	if err != nil {
		t.Fatal(err)
	}
	var out comm.Msg
	if err := comm.DecodeMsg(b[frameHeaderLenForTest(t, b):], &out); err != nil {
		t.Fatal(err)
	}
	out.Src = 1
	return &out
}

// frameHeaderLenForTest finds the payload of a one-frame message: the
// frame reader's payload is what follows its header.
func frameHeaderLenForTest(t testing.TB, b []byte) int {
	t.Helper()
	var in comm.Msg
	for n := 0; n < len(b); n++ {
		if comm.DecodeMsg(b[n:], &in) == nil {
			return n
		}
	}
	t.Fatal("no payload in the frame")
	return 0
}

// TestGradKeysWire: the keys of a gradient message (delta-varint in Bytes,
// their count in Ints[7]) survive the wire, nil (no keys: a full reply)
// and empty (keyed on nothing) stay apart, and the decoder reuses g's key
// buffer.
func TestGradKeysWire(t *testing.T) {
	const d = 1 << 24
	for _, c := range []struct {
		name string
		keys []int32
	}{{"none", nil}, {"empty", []int32{}}, {"one", []int32{d - 1}}, {"spread", []int32{0, 1, 2, 127, 128, 16383, 16384, 1 << 21, d - 1}}} {
		t.Run(c.name, func(t *testing.T) {
			var m comm.Msg
			in := algo.Grad{TRead: 3, Rows: 2, Loss: 0.25, Idx: []int32{4}, Val: []float64{1}, Snap: -1, Keys: c.keys}
			encodeGrad(&m, &in, d, nil)
			var g algo.Grad
			if err := decodeGrad(roundTrip(t, &m), &g, d, nil); err != nil {
				t.Fatal(err)
			}
			if (g.Keys == nil) != (c.keys == nil) || !slices.Equal(g.Keys, c.keys) {
				t.Errorf("keys %v (nil %v), want %v (nil %v)", g.Keys, g.Keys == nil, c.keys, c.keys == nil)
			}
			if g.TRead != 3 || g.Rows != 2 || !slices.Equal(g.Idx, []int32{4}) {
				t.Errorf("the rest of the gradient changed: %+v", g)
			}
		})
	}
}

// TestGradKeysRefused: keys out of order or range, a count that does not
// match the bytes, trailing bytes or a cut varint are decode errors.
func TestGradKeysRefused(t *testing.T) {
	const d = 100
	uv := func(xs ...uint64) []byte {
		var b []byte
		for _, x := range xs {
			b = binary.AppendUvarint(b, x)
		}
		return b
	}
	for _, c := range []struct {
		name  string
		nkeys int64
		bytes []byte
	}{
		{"unsorted", 2, appendKeys(nil, []int32{5, 3})},
		{"repeated", 2, appendKeys(nil, []int32{5, 5})},
		{"out of range", 1, uv(100)},
		{"sum out of range", 2, uv(60, 40)},
		{"huge gap", 1, uv(1 << 40)},
		{"count too large", 3, uv(1, 2)},
		{"trailing bytes", 1, uv(1, 2)},
		{"cut varint", 1, []byte{0x80}},
		{"bytes without keys", -1, uv(1)},
		{"negative count", -2, nil},
		{"more keys than d", 101, make([]byte, 101)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m comm.Msg
			encodeGrad(&m, &algo.Grad{Rows: 1, Idx: []int32{}, Val: []float64{}, Snap: -1}, d, nil)
			m.Ints[7], m.Bytes = c.nkeys, c.bytes
			var g algo.Grad
			if err := decodeGrad(roundTrip(t, &m), &g, d, nil); err == nil {
				t.Errorf("decoded keys %v, want an error", g.Keys)
			}
		})
	}
}

// FuzzGradKeys: any count and bytes decode to strictly increasing keys in
// [0, d) or to an error, never a panic; what decodes encodes and decodes
// back to the same keys.
func FuzzGradKeys(f *testing.F) {
	f.Add(int64(3), appendKeys(nil, []int32{0, 7, 99}))
	f.Add(int64(0), []byte{})
	f.Add(int64(2), appendKeys(nil, []int32{5, 3}))
	f.Add(int64(1), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, nkeys int64, b []byte) {
		const d = 100
		keys, err := decodeKeys(nil, b, nkeys, d)
		if err != nil {
			return
		}
		for i, j := range keys {
			if j < 0 || j >= d || (i > 0 && j <= keys[i-1]) {
				t.Fatalf("decoded keys %v: not strictly increasing in [0,%d)", keys, d)
			}
		}
		// (A varint may be padded, so the bytes may differ.)
		again, err := decodeKeys(nil, appendKeys(nil, keys), nkeys, d)
		if int64(len(keys)) != nkeys || err != nil || !slices.Equal(again, keys) {
			t.Fatalf("keys %v from %d, %x do not round-trip: %v, %v", keys, nkeys, b, again, err)
		}
	})
}

// TestSnapshotSparse: an svrg snapshot with few nonzeros travels as them
// (found once per snapshot, reused for the next worker) and the worker's
// copy of it is the dense snapshot bit for bit; a snapshot with many
// nonzeros stays dense; other replies are left to encodeReply.
func TestSnapshotSparse(t *testing.T) {
	const d = 1000
	x := make([]float64, d)
	x[3], x[500], x[d-1] = -1.5, 2e-300, 7
	var s snapSparse
	for _, c := range []struct {
		name   string
		x      []float64
		t      int64
		sparse bool
	}{{"few", x, 1, true}, {"few again", x, 1, true}, {"zero", make([]float64, d), 2, true}, {"dense", denseVec(d), 3, false}} {
		var m comm.Msg
		r := algo.Reply{Worker: 1, Kind: algo.ReplySnapshot, T: c.t, Dense: c.x}
		if !s.encode(&m, &r, d) {
			if c.sparse {
				t.Fatalf("%s: sent dense, want sparse", c.name)
			}
			encodeReply(&m, &r, d, nil)
		} else if !c.sparse {
			t.Fatalf("%s: sent sparse, want dense", c.name)
		}
		var got algo.Reply
		if err := decodeReply(roundTrip(t, &m), &got, d, nil); err != nil {
			t.Fatal(err)
		}
		dense := got.Dense
		if dense == nil {
			dense = make([]float64, d)
			for k, j := range got.Idx {
				dense[j] = got.Val[k]
			}
		}
		if got.Kind != algo.ReplySnapshot || got.T != c.t || !slices.Equal(dense, c.x) {
			t.Errorf("%s: snapshot %v T %d changed on the wire", c.name, got.Kind, got.T)
		}
	}
	var m comm.Msg
	if s.encode(&m, &algo.Reply{Kind: algo.ReplyKeyed, Idx: []int32{1}, Val: []float64{1}}, d) {
		t.Error("a keyed reply taken as a snapshot")
	}
}

func denseVec(d int) []float64 {
	x := make([]float64, d)
	for j := range x {
		x[j] = float64(j + 1)
	}
	return x
}
