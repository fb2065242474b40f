package ranks

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
)

// keyLink is both ends of one worker's link: the worker's history of the
// key lists it sent and the master's of those it received.
type keyLink struct {
	w, m keyHist
	d    int
}

// grad sends g from the worker to the master over the wire and returns
// the message as sent and the gradient as decoded.
func (l *keyLink) grad(t testing.TB, g *algo.Grad) (*comm.Msg, algo.Grad, error) {
	t.Helper()
	var m comm.Msg
	encodeGrad(&m, g, l.d, &l.w)
	var got algo.Grad
	err := decodeGrad(roundTrip(t, &m), &got, l.d, &l.m)
	return &m, got, err
}

// reply sends r from the master to the worker.
func (l *keyLink) reply(t testing.TB, r *algo.Reply) (*comm.Msg, algo.Reply, error) {
	t.Helper()
	var m comm.Msg
	encodeReply(&m, r, l.d, &l.m)
	var got algo.Reply
	err := decodeReply(roundTrip(t, &m), &got, l.d, &l.w)
	return &m, got, err
}

func randVals(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// TestKeyHistWire: over a link, a sparse gradient whose support is a key
// list sent one, two or zero messages before (sgd, --pipeline, a support
// that is the message's own keys) goes as a reference and values only; a
// support not held (never sent, or sent five lists ago), a dense gradient
// and an empty one go explicit; keyed replies on the last keys go as
// values only, on other keys explicit. Every message decodes to what was
// sent, bit for bit, and the keys decoded are the master's copy, not a
// view of the worker's.
func TestKeyHistWire(t *testing.T) {
	const d = 1 << 16
	rng := rand.New(rand.NewPCG(7, 7))
	l := &keyLink{d: d}
	lists := make([][]int32, 12)
	for i := range lists {
		lists[i] = textKeys(rng, d, 300+i)
	}
	dense := randVals(rng, d)
	for i, keys := range lists {
		var support []int32
		wantRef := true
		switch {
		case i == 0:
			wantRef = false // dense
		case i == 1:
			support, wantRef = []int32{}, false
		case i == 5:
			support, wantRef = textKeys(rng, d, 50), false // never sent
		case i == 7:
			support, wantRef = lists[i-5], false // no longer held
		case i == 8:
			support = keys // the message's own keys
		case i%2 == 0:
			support = lists[i-2] // pipelined
		default:
			support = lists[i-1]
		}
		g := algo.Grad{TRead: int64(i), Rows: 64, Loss: 0.5, Snap: -1, Keys: keys}
		if i == 0 {
			g.Dense = dense
		} else {
			g.Idx, g.Val = slices.Clone(support), randVals(rng, len(support))
		}
		m, got, err := l.grad(t, &g)
		if err != nil {
			t.Fatalf("gradient %d: %v", i, err)
		}
		if ref := m.Ints[9] >= 0; ref != wantRef || ref && m.Idx != nil {
			t.Errorf("gradient %d: reference %d (indices sent %v), want a reference %v", i, m.Ints[9], m.Idx != nil, wantRef)
		}
		if !slices.Equal(got.Keys, keys) || !slices.Equal(got.Idx, g.Idx) || !slices.Equal(got.Val, g.Val) ||
			!slices.Equal(got.Dense, g.Dense) || (got.Dense == nil) != (g.Dense == nil) || got.TRead != g.TRead {
			t.Fatalf("gradient %d changed on the wire", i)
		}
		// The master's copy of the keys is its own.
		if len(keys) > 0 && &got.Keys[0] == &l.w.get(int64(i)).keys[0] {
			t.Fatalf("gradient %d: the master's keys alias the worker's", i)
		}
		// The master's keyed reply is on a copy of the keys (algo's).
		vals := randVals(rng, len(keys))
		r := algo.Reply{Worker: 1, Kind: algo.ReplyKeyed, T: int64(i + 1), Idx: slices.Clone(got.Keys), Val: vals}
		rm, rgot, err := l.reply(t, &r)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if len(rm.Ints) != modelKeyedInts || rm.Idx != nil {
			t.Errorf("reply %d: %d header words, indices sent %v; want values only", i, len(rm.Ints), rm.Idx != nil)
		}
		if rgot.Kind != algo.ReplyKeyed || rgot.T != r.T || !slices.Equal(rgot.Idx, keys) || !slices.Equal(rgot.Val, vals) {
			t.Fatalf("reply %d changed on the wire", i)
		}
	}
	other := textKeys(rng, d, 20)
	r := algo.Reply{Worker: 1, Kind: algo.ReplyKeyed, T: 99, Idx: other, Val: randVals(rng, len(other))}
	rm, rgot, err := l.reply(t, &r)
	if err != nil || len(rm.Ints) != modelInts || !slices.Equal(rgot.Idx, other) || !slices.Equal(rgot.Val, r.Val) {
		t.Errorf("a keyed reply on keys not held: %d header words, %v; want them explicit", len(rm.Ints), err)
	}
}

// TestKeyHistRejoin: a worker that starts again (a late join: a new
// process, a new history) is refused by a master that still counts the
// old link's lists, and works once the master resets the link's history
// (join does); a reply the master encodes on the old link's lists after
// the worker's restart is refused by it.
func TestKeyHistRejoin(t *testing.T) {
	const d = 1000
	l := &keyLink{d: d}
	for i := range 6 {
		keys := []int32{int32(i), int32(i + 10)}
		if _, _, err := l.grad(t, &algo.Grad{Rows: 1, Snap: -1, Keys: keys, Idx: keys, Val: []float64{1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
	last := []int32{5, 15}
	l.w = keyHist{} // the worker restarts
	if _, _, err := l.reply(t, &algo.Reply{Kind: algo.ReplyKeyed, Idx: last, Val: []float64{1, 2}}); err == nil {
		t.Error("the restarted worker took a reply on a list of its former self")
	}
	g := algo.Grad{Rows: 1, Snap: -1, Keys: []int32{1, 2}, Idx: []int32{1}, Val: []float64{1}}
	if _, _, err := l.grad(t, &g); err == nil || !strings.Contains(err.Error(), "out of sequence") {
		t.Errorf("the restarted worker's first list: %v, want out of sequence", err)
	}
	l.w = keyHist{} // a joiner: a new process again
	l.m.reset()     // the master's join
	for i := range 3 {
		g.Idx = g.Keys
		g.Val = []float64{1, 2}
		if _, got, err := l.grad(t, &g); err != nil || !slices.Equal(got.Idx, g.Keys) {
			t.Fatalf("gradient %d after the join: %v", i, err)
		}
	}
}

// TestKeyHistMismatch: a support reference or a keyed reply whose list is
// not held, or whose length, check or values differ from the list held, is
// a decode error, never a gradient or an x on other keys.
func TestKeyHistMismatch(t *testing.T) {
	const d = 1000
	setup := func(t *testing.T) *keyLink {
		l := &keyLink{d: d}
		for i := range 4 {
			keys := []int32{int32(i), 100 + int32(i), 500}
			g := algo.Grad{Rows: 1, Snap: -1, Keys: keys, Idx: []int32{7}, Val: []float64{1}}
			if _, _, err := l.grad(t, &g); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	held := []int32{1, 101, 500} // list 1
	for _, c := range []struct {
		name string
		mut  func(m *comm.Msg)
	}{
		{"list not held", func(m *comm.Msg) { m.Ints[9] = 40 }},
		{"list no longer held", func(m *comm.Msg) { m.Ints[9] = 0 }},
		{"negative list", func(m *comm.Msg) { m.Ints[9] = -2 }},
		{"check differs", func(m *comm.Msg) { m.Ints[10] ^= 1 }},
		{"values short", func(m *comm.Msg) { m.Dense = m.Dense[:2] }},
		{"indices too", func(m *comm.Msg) { m.Idx, m.Vals, m.Dim, m.Dense = held, m.Dense, d, nil }},
		{"check without a list", func(m *comm.Msg) { m.Ints[9], m.Idx, m.Vals, m.Dim, m.Dense = -1, held, m.Dense, d, nil }},
		{"keys out of sequence", func(m *comm.Msg) { m.Ints[8]++ }},
	} {
		t.Run("gradient/"+c.name, func(t *testing.T) {
			l := setup(t)
			var m comm.Msg
			encodeGrad(&m, &algo.Grad{Rows: 1, Snap: -1, Keys: []int32{9}, Idx: held, Val: []float64{1, 2, 3}}, d, &l.w)
			if m.Ints[9] != 1 {
				t.Fatalf("support sent as %d, want list 1", m.Ints[9])
			}
			c.mut(&m)
			var g algo.Grad
			if err := decodeGrad(roundTrip(t, &m), &g, d, &l.m); err == nil {
				t.Errorf("decoded a gradient on %v", g.Idx)
			}
		})
	}
	for _, c := range []struct {
		name string
		mut  func(m *comm.Msg)
	}{
		{"list not held", func(m *comm.Msg) { m.Ints[3] = 7 }},
		{"negative list", func(m *comm.Msg) { m.Ints[3] = -1 }},
		{"another list", func(m *comm.Msg) { m.Ints[3] = 0 }},
		{"length differs", func(m *comm.Msg) { m.Ints[4] = 2 }},
		{"check differs", func(m *comm.Msg) { m.Ints[5] ^= 1 << 31 }},
		{"values short", func(m *comm.Msg) { m.Dense = m.Dense[:2] }},
		{"not keyed", func(m *comm.Msg) { m.Ints[0] = int64(algo.ReplyDelta) }},
	} {
		t.Run("reply/"+c.name, func(t *testing.T) {
			l := setup(t)
			var m comm.Msg
			encodeReply(&m, &algo.Reply{Kind: algo.ReplyKeyed, Idx: held, Val: []float64{1, 2, 3}}, d, &l.m)
			if len(m.Ints) != modelKeyedInts || m.Ints[3] != 1 {
				t.Fatalf("reply sent as %v, want on list 1", m.Ints)
			}
			c.mut(&m)
			var r algo.Reply
			if err := decodeReply(roundTrip(t, &m), &r, d, &l.w); err == nil {
				t.Errorf("decoded x on %v", r.Idx)
			}
		})
	}
	t.Run("reply/no history", func(t *testing.T) {
		l := setup(t)
		var m comm.Msg
		encodeReply(&m, &algo.Reply{Kind: algo.ReplyKeyed, Idx: held, Val: []float64{1, 2, 3}}, d, &l.m)
		var r algo.Reply
		if err := decodeReply(roundTrip(t, &m), &r, d, nil); err == nil {
			t.Errorf("decoded x on %v without a history", r.Idx)
		}
	})
}

// keyHistFuzzLists are the lists a fuzzed message may name (d = 100).
var keyHistFuzzLists = [][]int32{{0, 3, 7}, {}, {1, 2, 5, 99}, {4}, {10, 20}}

// fuzzLink returns a link whose histories hold keyHistFuzzLists (numbered
// 0..4: 1..4 are held).
func fuzzLink(t testing.TB) *keyLink {
	l := &keyLink{d: 100}
	for _, keys := range keyHistFuzzLists {
		if _, _, err := l.grad(t, &algo.Grad{Rows: 1, Snap: -1, Keys: keys, Idx: []int32{1}, Val: []float64{1}}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// fuzzFrame is the frame of m (a fuzz seed).
func fuzzFrame(f *testing.F, tag int, m *comm.Msg) []byte {
	b, err := comm.AppendFrame(nil, 1, tag, m, comm.CodecNone, 64)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// fuzzMsg decodes frame into a message, or reports false.
func fuzzMsg(frame []byte) (*comm.Msg, bool) {
	fr := comm.FrameReader{R: bytes.NewReader(frame), MaxFrame: 1 << 16}
	fm, err := fr.Next()
	if err != nil {
		return nil, false
	}
	var msg comm.Msg
	if comm.DecodeMsg(fm.Payload, &msg) != nil {
		return nil, false
	}
	msg.Src = 1
	return &msg, true
}

// sameLists fails unless h still holds lists 1..4 of keyHistFuzzLists.
func sameLists(t *testing.T, h *keyHist, what string) {
	for s := 1; s < len(keyHistFuzzLists); s++ {
		if e := h.get(int64(s)); e == nil || !slices.Equal(e.keys, keyHistFuzzLists[s]) {
			t.Fatalf("%s: list %d changed", what, s)
		}
	}
}

// FuzzGradSupport: any gradient message decodes, against a master's
// history, to an error or to a gradient whose support is exactly a list
// held (the one the message names) with a value per key, or explicit
// entries; it never panics and never changes the lists held but the
// oldest (which the message's own keys replace).
func FuzzGradSupport(f *testing.F) {
	for _, g := range []algo.Grad{
		{Rows: 1, Snap: -1, Keys: []int32{8}, Idx: []int32{1, 2, 5, 99}, Val: []float64{1, 2, 3, 4}},
		{Rows: 1, Snap: -1, Keys: []int32{4, 9}, Idx: []int32{4, 9}, Val: []float64{1, 2}},
		{Rows: 1, Snap: -1, Idx: []int32{10, 20}, Val: []float64{1, 2}},
		{Rows: 1, Snap: -1, Keys: []int32{}, Idx: []int32{3}, Val: []float64{1}},
	} {
		var m comm.Msg
		encodeGrad(&m, &g, 100, &fuzzLink(f).w)
		f.Add(fuzzFrame(f, tagGrad, &m))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, ok := fuzzMsg(frame)
		if !ok {
			return
		}
		l := fuzzLink(t)
		var g algo.Grad
		err := decodeGrad(msg, &g, l.d, &l.m)
		if l.m.n == 6 {
			// The message's keys took list 1's place: 2..4 stay.
			for s := 2; s < len(keyHistFuzzLists); s++ {
				if e := l.m.get(int64(s)); e == nil || !slices.Equal(e.keys, keyHistFuzzLists[s]) {
					t.Fatalf("list %d changed", s)
				}
			}
		} else {
			sameLists(t, &l.m, "a message")
		}
		if err != nil {
			return
		}
		if ref := msg.Ints[9]; ref >= 0 {
			e := l.m.get(ref)
			if e == nil || !slices.Equal(g.Idx, e.keys) || len(g.Val) != len(g.Idx) || len(g.Idx) == 0 {
				t.Fatalf("support %v with %d values from list %d", g.Idx, len(g.Val), ref)
			}
		} else if g.Idx != nil && len(g.Idx) != len(g.Val) {
			t.Fatalf("%d indices, %d values", len(g.Idx), len(g.Val))
		}
		for i, j := range g.Keys {
			if j < 0 || int(j) >= l.d || i > 0 && j <= g.Keys[i-1] {
				t.Fatalf("keys %v", g.Keys)
			}
		}
	})
}

// FuzzKeyedReply: any model message decodes, against a worker's history,
// to an error or to a reply; a keyed one on a list is on exactly a list
// held, with a value per key, and applies to a copy of x without a panic;
// the lists held never change.
func FuzzKeyedReply(f *testing.F) {
	l := fuzzLink(f)
	for _, r := range []algo.Reply{
		{Kind: algo.ReplyKeyed, T: 3, Idx: []int32{10, 20}, Val: []float64{1, 2}},
		{Kind: algo.ReplyKeyed, T: 3, Idx: []int32{}, Val: []float64{}},
		{Kind: algo.ReplyKeyed, T: 3, Idx: []int32{5, 6}, Val: []float64{1, 2}},
		{Kind: algo.ReplyDelta, T: 3, Base: 2, Idx: []int32{5, 6}, Val: []float64{1, 2}},
	} {
		var m comm.Msg
		encodeReply(&m, &r, l.d, &l.m)
		f.Add(fuzzFrame(f, tagModel, &m))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, ok := fuzzMsg(frame)
		if !ok {
			return
		}
		l := fuzzLink(t)
		var r algo.Reply
		err := decodeReply(msg, &r, l.d, &l.w)
		sameLists(t, &l.w, "a reply")
		if err != nil {
			return
		}
		if len(msg.Ints) == modelKeyedInts {
			e := l.w.get(msg.Ints[3])
			if r.Kind != algo.ReplyKeyed || e == nil || !slices.Equal(r.Idx, e.keys) || len(r.Val) != len(r.Idx) {
				t.Fatalf("keyed x on %v with %d values from list %d", r.Idx, len(r.Val), msg.Ints[3])
			}
		}
		x := algo.NewReplica(l.d)
		_ = x.Apply(&r)
		sameLists(t, &l.w, "applying a reply")
	})
}

// BenchmarkKeyedWire measures one gradient message and one keyed reply of
// a worker with keyed pull on text-like data like the d = 1M set (d =
// 2^20, 64-row batches of 100 nonzeros, popularity 1/j: about 3,800 keys):
// the worker encodes the gradient (its support the keys of the batch sent
// before, the next batch's keys with it), the master decodes it, encodes
// the keyed reply on the next batch's keys, and the worker decodes it,
// each through comm's frame coding. "explicit" sends every index (the
// fallback, and but for three header words the format before key
// histories), "history" names the key lists; it reports the wire bytes of
// both messages and history's ratios to explicit (measured in the same
// run), and the master's part (decoding the gradient, encoding the reply)
// alone.
func BenchmarkKeyedWire(b *testing.B) {
	const d, rows, batch = 1 << 20, 1 << 16, 64
	s := zipfShard(rows, d, 100, 1)
	z := algo.NewLocalizer(d)
	sampler := algo.NewSampler(rows, 9)
	lists := make([][]int32, 16)
	nkeys := 0
	for i := range lists {
		var lb algo.LocalBatch
		z.Build(s.a, s.y, sampler.Next(batch), &lb)
		lists[i] = lb.Keys
		nkeys += len(lb.Keys)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	vals := randVals(rng, 8000)
	ns, mns, wire := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, way := range []string{"explicit", "history"} {
		b.Run(way, func(b *testing.B) {
			var wh, mh *keyHist
			if way == "history" {
				wh, mh = new(keyHist), new(keyHist)
			}
			var gm, rm, gin, rin comm.Msg
			var g algo.Grad
			var r algo.Reply
			var gbuf, rbuf []byte
			var bytes int
			var masterNs int64 // the master's part: decode the gradient, encode the reply
			n := 0
			for i := 0; b.Loop(); i++ {
				cur, next := lists[i%len(lists)], lists[(i+1)%len(lists)]
				out := algo.Grad{TRead: int64(i), Rows: batch, Loss: 0.5, Snap: -1, Idx: cur, Val: vals[:len(cur)], Keys: next}
				encodeGrad(&gm, &out, d, wh)
				gbuf = appendFrame(b, gbuf[:0], tagGrad, &gm)
				t0 := time.Now()
				decodeFrame(b, gbuf, &gin)
				if err := decodeGrad(&gin, &g, d, mh); err != nil {
					b.Fatal(err)
				}
				keys := append([]int32(nil), g.Keys...) // algo's copy
				encodeReply(&rm, &algo.Reply{Kind: algo.ReplyKeyed, T: int64(i), Idx: keys, Val: vals[:len(keys)]}, d, mh)
				rbuf = appendFrame(b, rbuf[:0], tagModel, &rm)
				masterNs += time.Since(t0).Nanoseconds()
				decodeFrame(b, rbuf, &rin)
				if err := decodeReply(&rin, &r, d, wh); err != nil || len(r.Idx) != len(next) {
					b.Fatal(err)
				}
				bytes += len(gbuf) + len(rbuf)
				n++
			}
			ns[way] = float64(b.Elapsed().Nanoseconds()) / float64(n)
			mns[way] = float64(masterNs) / float64(n)
			b.ReportMetric(mns[way], "master_ns/op")
			wire[way] = float64(bytes) / float64(n)
			b.ReportMetric(wire[way], "wire_B/op")
			b.ReportMetric(float64(nkeys)/float64(len(lists)), "keys/batch")
			if way == "history" && ns["explicit"] > 0 {
				b.ReportMetric(ns[way]/ns["explicit"], "ns_ratio")
				b.ReportMetric(wire[way]/wire["explicit"], "wire_ratio")
				b.ReportMetric(mns[way]/mns["explicit"], "master_ns_ratio")
			}
		})
	}
}

func appendFrame(b *testing.B, dst []byte, tag int, m *comm.Msg) []byte {
	dst, err := comm.AppendFrame(dst, 1, tag, m, comm.CodecNone, 64)
	if err != nil {
		b.Fatal(err)
	}
	return dst
}

// decodeFrame decodes the one frame in buf into m.
func decodeFrame(b *testing.B, buf []byte, m *comm.Msg) {
	fr := comm.FrameReader{R: bytes.NewReader(buf), MaxFrame: 1 << 30}
	fm, err := fr.Next()
	if err == nil {
		err = comm.DecodeMsg(fm.Payload, m)
	}
	if err != nil {
		b.Fatal(fmt.Errorf("frame: %w", err))
	}
	m.Src = 1
}
