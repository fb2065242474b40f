package algo

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// zipfCSR is a sparse matrix of n rows with k entries each, the features
// drawn with popularity about 1/j (as words in text), and +-1 labels.
func zipfCSR(n, d, k int, seed uint64) (*kernels.CSR, []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	a := &kernels.CSR{Rows: n, Cols: d, Indptr: make([]int64, 1, n+1)}
	y := make([]float64, n)
	lnd := math.Log(float64(d))
	row := make([]int32, 0, k)
	for i := range n {
		row = row[:0]
		for range k {
			row = append(row, int32(min(d-1, int(math.Exp(rng.Float64()*lnd))-1)))
		}
		slices.Sort(row)
		row = slices.Compact(row)
		for _, j := range row {
			a.Indices = append(a.Indices, j)
			a.Data = append(a.Data, rng.NormFloat64())
		}
		a.Indptr = append(a.Indptr, int64(len(a.Indices)))
		y[i] = float64(1 - 2*(i%2))
	}
	return a, y
}

// TestKeySet: the keys are the sorted union of the rows' columns, for
// short lists (sorted by comparison) and long ones (radix), at a d that
// needs three radix passes.
func TestKeySet(t *testing.T) {
	for _, c := range []struct{ d, rows, k int }{{50, 3, 4}, {5000, 64, 30}, {1 << 24, 64, 100}, {1 << 24, 2, 5}} {
		t.Run(fmt.Sprintf("d=%d/rows=%d", c.d, c.rows), func(t *testing.T) {
			a, _ := zipfCSR(200, c.d, c.k, 3)
			ks := NewKeySet(c.d)
			for rep := range 5 {
				rows := make([]int, c.rows)
				for i := range rows {
					rows[i] = (rep*31 + i*7) % a.Rows
				}
				var want []int32
				for _, i := range rows {
					want = append(want, a.Indices[a.Indptr[i]:a.Indptr[i+1]]...)
				}
				slices.Sort(want)
				want = slices.Compact(want)
				if got := ks.Keys(a.Indptr, a.Indices, rows); !slices.Equal(got, want) {
					t.Fatalf("rep %d: %d keys, want %d (first %v, want %v)", rep, len(got), len(want), got[:min(5, len(got))], want[:min(5, len(want))])
				}
			}
		})
	}
}

// TestAhead: batches drawn ahead are the sampler's sequence, and Peek(k)
// is what Next returns k calls later.
func TestAhead(t *testing.T) {
	ref := NewSampler(37, 9)
	a := NewAhead(NewSampler(37, 9), 5)
	var peeked [][]int
	for i := range 40 {
		got := a.Next()
		if want := ref.Next(5); !slices.Equal(got, want) {
			t.Fatalf("batch %d: %v, want %v", i, got, want)
		}
		if i >= 2 && !slices.Equal(got, peeked[i-2]) {
			t.Fatalf("batch %d: %v, but Peek(2) said %v", i, got, peeked[i-2])
		}
		peeked = append(peeked, slices.Clone(a.Peek(2)))
	}
}

// runOneWorker runs a master and one worker state machine (in process,
// replies delivered in order after the worker's computation, as over a
// link) that computes real logistic mini-batch gradients, asking for keyed
// replies or not, and returns every iterate (the master's x after each
// update) and the master's counters.
//
// With onKeys > 0 the worker computes on the keyed replies' entries in
// place (WorkerConfig.OnKeys) except on every onKeys-th batch, which takes
// the general path; it does so on a copy of x that is NaN off the keys,
// and counts the batches so computed in *took.
func runOneWorker(t *testing.T, a *kernels.CSR, y []float64, pull Pull, update Update, pipeline bool, iters, onKeys int, took *int) ([][]float64, MasterStats) {
	t.Helper()
	d := a.Cols
	m, err := NewMaster(MasterConfig{Workers: 1, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 1e-3},
		Schedule: solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.5}, Average: solver.Averager{Kind: solver.AvgUniform},
		Update: update, Pull: pull, Iters: int64(iters), Pipeline: pipeline})
	if err != nil {
		t.Fatal(err)
	}
	ks := NewKeySet(d)
	wc := WorkerConfig{Worker: 1, Dim: d, Rows: a.Rows, Batch: 16, Seed: 11, Pipeline: pipeline}
	if pull != PullAll {
		wc.Keys = func(rows []int) []int32 { return ks.Keys(a.Indptr, a.Indices, rows) }
	}
	acc := kernels.NewSparseAcc(d)
	var sv kernels.SparseVec
	grad := func(rows []int, x []float64, out *Grad) {
		out.Rows, out.Dense = len(rows), nil
		out.Loss = acc.GradBatchCSR(kernels.Logistic, a, y, rows, x, &sv)
		out.Idx, out.Val = sv.Idx, sv.Val
	}
	if onKeys > 0 && wc.Keys != nil {
		own, xs, calls := NewKeySet(d), make([]float64, d), 0
		wc.OnKeys = func(rows []int, keys []int32, xk, snap []float64, out *Grad) bool {
			calls++
			if calls%onKeys == 0 || snap != nil || !slices.Equal(keys, own.Keys(a.Indptr, a.Indices, rows)) {
				return false
			}
			for j := range xs {
				xs[j] = math.NaN()
			}
			for p, j := range keys {
				xs[j] = xk[p]
			}
			grad(rows, xs, out)
			*took++
			return true
		}
	}
	w, err := NewWorker(wc)
	if err != nil {
		t.Fatal(err)
	}
	var iterates [][]float64
	var inbox []Reply // replies in flight to the worker
	deliver := func(rd Ready) {
		for _, r := range rd.Replies {
			r.Idx, r.Val, r.Dense = slices.Clone(r.Idx), slices.Clone(r.Val), slices.Clone(r.Dense)
			inbox = append(inbox, r)
		}
	}
	deliver(m.Start())
	for len(inbox) > 0 {
		r := inbox[0]
		inbox = inbox[1:]
		wrd, err := w.Step(WorkerEvent{Kind: WorkerReply, Reply: &r})
		for err == nil {
			if wrd.Send != nil {
				rd, err := m.Step(Event{Kind: EventGrad, Grad: wrd.Send})
				if err != nil {
					t.Fatal(err)
				}
				x := make([]float64, d)
				m.Iterate(x)
				iterates = append(iterates, x)
				deliver(rd)
			}
			if !wrd.Compute {
				break
			}
			w.Compute(grad)
			wrd, err = w.Step(WorkerEvent{Kind: WorkerComputed})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return iterates, m.Stats()
}

// TestKeyedBitIdentical is issue 10's acceptance at the algorithm level:
// with one worker and a fixed seed, replies on the keys of the worker's
// next batch give the same iterates, bit for bit, as replies with all of x,
// on the lazy and the eager update, while carrying far fewer entries.
func TestKeyedBitIdentical(t *testing.T) {
	a, y := zipfCSR(400, 20000, 12, 5)
	for _, c := range []struct {
		update   Update
		pipeline bool
	}{{UpdateLazy, false}, {UpdateEager, false}, {UpdateLazy, true}} {
		update := c.update
		t.Run(fmt.Sprintf("%s/pipeline=%v", update, c.pipeline), func(t *testing.T) {
			full, sf := runOneWorker(t, a, y, PullAll, update, c.pipeline, 300, 0, nil)
			keyed, sk := runOneWorker(t, a, y, PullKeys, update, c.pipeline, 300, 0, nil)
			took := 0
			inPlace, _ := runOneWorker(t, a, y, PullKeys, update, c.pipeline, 300, 5, &took)
			if sk.RepliesKeyed < 290 || sf.RepliesKeyed != 0 {
				t.Errorf("keyed replies: %d with keys (want about 300), %d without", sk.RepliesKeyed, sf.RepliesKeyed)
			}
			if took < 200 {
				t.Errorf("%d of 300 batches computed on the replies' entries in place, want about 240", took)
			}
			for name, run := range map[string][][]float64{"keyed": keyed, "keyed in place": inPlace} {
				if len(full) != len(run) {
					t.Fatalf("%d and %d updates", len(full), len(run))
				}
				for k := range full {
					for j := range full[k] {
						if math.Float64bits(full[k][j]) != math.Float64bits(run[k][j]) {
							t.Fatalf("%s: update %d: x[%d] = %v, %v full", name, k+1, j, run[k][j], full[k][j])
						}
					}
				}
			}
			if nz := slices.IndexFunc(full[len(full)-1], func(v float64) bool { return v != 0 }); nz < 0 {
				t.Error("the run never moved x: the comparison is vacuous")
			}
			t.Logf("%s: entries per reply %.0f keyed, %.0f full", update, float64(sk.ReplyEntries)/300, float64(sf.ReplyEntries)/300)
		})
	}
}

// TestKeyedRefused: a gradient whose keys are out of order or range is
// refused, and the reply it is owed carries all of x.
func TestKeyedRefused(t *testing.T) {
	m, err := NewMaster(MasterConfig{Workers: 1, X0: make([]float64, 100), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 1e-3},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}, Pull: PullKeys})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	for i, keys := range [][]int32{{3, 2}, {5, 100}, {-1}, {4, 4}} {
		rd, err := m.Step(Event{Kind: EventGrad, Grad: &Grad{Worker: 1, TRead: m.T(), Rows: 1, Idx: []int32{1}, Val: []float64{1}, Keys: keys, Snap: -1}})
		if err != nil {
			t.Fatal(err)
		}
		if st := m.Stats(); st.RefusedGrads != int64(i+1) {
			t.Errorf("keys %v: %d refused, want %d", keys, st.RefusedGrads, i+1)
		}
		if len(rd.Replies) != 1 || rd.Replies[0].Kind == ReplyKeyed {
			t.Errorf("keys %v: replies %+v, want one full reply", keys, rd.Replies)
		}
	}
	rd, _ := m.Step(Event{Kind: EventGrad, Grad: &Grad{Worker: 1, TRead: m.T(), Rows: 1, Idx: []int32{1}, Val: []float64{1}, Keys: []int32{1, 7}, Snap: -1}})
	if r := rd.Replies[0]; r.Kind != ReplyKeyed || !slices.Equal(r.Idx, []int32{1, 7}) || r.Val[0] >= 0 || r.Val[1] != 0 {
		t.Errorf("good keys: reply %v %v %v, want keyed on [1 7] with x_1 < 0", r.Kind, r.Idx, r.Val)
	}
}

// BenchmarkMasterKeyed measures the master alone (no network) on text-like
// data of d = 2^20 and 2^24 (100 nonzeros per row, popularity 1/j, batch
// 64, logistic gradients at x = 0, cycled), with 3 workers in async mode and
// the lazy l1 update: one Step per gradient with its reply built, keyed on
// the next batch's keys against all of x (the baseline, in the same run).
// It reports updates/s, reply entries per update and the ratio.
func BenchmarkMasterKeyed(b *testing.B) {
	for _, d := range []int{1 << 20, 1 << 24} {
		a, y := zipfCSR(4096, d, 100, 1)
		grads := keyedGrads(a, y, 64)
		rate := map[Pull]float64{}
		for _, pull := range []Pull{PullAll, PullKeys} {
			b.Run(fmt.Sprintf("d=%d/%s", d, pull), func(b *testing.B) {
				const P = 3
				m, err := NewMaster(MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 1e-5},
					Schedule: solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 1}, Average: solver.Averager{Kind: solver.AvgUniform},
					Update: UpdateLazy, Pull: pull})
				if err != nil {
					b.Fatal(err)
				}
				rr := newRoundRobin(m, P, grads, Grad{})
				b.ReportAllocs()
				for b.Loop() {
					if err := rr.step(); err != nil {
						b.Fatal(err)
					}
				}
				rate[pull] = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rate[pull], "updates/s")
				b.ReportMetric(float64(rr.entries)/float64(b.N), "reply-entries/op")
				if pull == PullKeys && rate[PullAll] > 0 {
					b.ReportMetric(rate[PullKeys]/rate[PullAll], "x-vs-all")
				}
			})
		}
	}
}

// keyedGrads draws n logistic mini-batch gradients of 64 rows of a at x =
// 0, each with the keys of the next batch: the master benchmarks' input.
func keyedGrads(a *kernels.CSR, y []float64, n int) []Grad {
	d := a.Cols
	acc, ks := kernels.NewSparseAcc(d), NewKeySet(d)
	x := make([]float64, d)
	var grads []Grad
	sampler := NewAhead(NewSampler(a.Rows, 3), 64)
	for range n {
		var sv kernels.SparseVec
		loss := acc.GradBatchCSR(kernels.Logistic, a, y, sampler.Next(), x, &sv)
		grads = append(grads, Grad{Rows: 64, Loss: loss, Idx: slices.Clone(sv.Idx), Val: slices.Clone(sv.Val), Snap: -1,
			Keys: slices.Clone(ks.Keys(a.Indptr, a.Indices, sampler.Peek(1)))})
	}
	return grads
}

// roundRobin drives a master as P workers would that answer in turn with
// the gradients grads, cycled (each has one in flight, computed at the x
// of its last reply), without a network: the master benchmarks' loop. A
// worker asked for a svrg snapshot answers with full (as a GradFull at
// that snapshot) and tags its differences with the last one activated.
type roundRobin struct {
	m                *Master
	grads            []Grad
	full             Grad
	ver, snap, asked []int64 // by worker: the version it holds, its snapshot, the one asked of it (-1: none)
	i                int
	entries          int // entries (indices or dense values) in the replies since Start's
}

// newRoundRobin starts m (P workers) and reads its first replies.
func newRoundRobin(m *Master, P int, grads []Grad, full Grad) *roundRobin {
	r := &roundRobin{m: m, grads: grads, full: full, ver: make([]int64, P+1), snap: make([]int64, P+1), asked: make([]int64, P+1)}
	for w := range r.snap {
		r.snap[w], r.asked[w] = -1, -1
	}
	r.read(m.Start())
	r.entries = 0
	return r
}

func (r *roundRobin) read(rd Ready) {
	for _, rp := range rd.Replies {
		switch rp.Kind {
		case ReplySnapshot:
			r.asked[rp.Worker] = rp.T
		case ReplyActivate:
			r.snap[rp.Worker] = rp.T
		case ReplyStop:
		default:
			r.ver[rp.Worker] = rp.T
			r.entries += len(rp.Idx) + len(rp.Dense)
		}
	}
}

// step sends the next worker's gradient: one Step, its replies read.
func (r *roundRobin) step() error {
	w := 1 + r.i%(len(r.ver)-1)
	g := r.grads[r.i%len(r.grads)]
	g.Snap = r.snap[w]
	if r.asked[w] >= 0 {
		g = r.full
		g.Kind, g.Snap, r.asked[w] = GradFull, r.asked[w], -1
	}
	r.i++
	g.Worker, g.TRead = w, r.ver[w]
	rd, err := r.m.Step(Event{Kind: EventGrad, Grad: &g})
	if err != nil {
		return err
	}
	r.read(rd)
	return nil
}

// BenchmarkMasterVRKeyed measures the master's svrg update loop alone
// (the sparse step with a metric, support weights and l1, then the keyed
// reply on the next batch's keys; 3 workers, async, a refresh every 3125
// updates as on d1m with batch 64) on BenchmarkMasterKeyed's kind of data
// at d = 2^20 and 2^24 (16384 rows, 256 gradients cycled: their supports
// touch far more than the 32 MB L3 of the test machine, as a long run
// does; with 64 gradients of 4096 rows the records fit and the ratio was
// 2.2x), with x held in the step's records (solver.VRStep.Hold)
// against x in its own array (the records without x), in the same run. It
// reports updates/s and the ratio.
func BenchmarkMasterVRKeyed(b *testing.B) {
	defer func() { vrHold = true }()
	for _, d := range []int{1 << 20, 1 << 24} {
		a, y := zipfCSR(16384, d, 100, 1)
		grads := keyedGrads(a, y, 256)
		metric, wts := benchMetric(d)
		full := grads[0] // any sparse vector will do as a shard's mean gradient
		full.Keys = nil
		rate := map[bool]float64{}
		for _, hold := range []bool{false, true} {
			runtime.GC()
			b.Run(fmt.Sprintf("d=%d/hold=%v", d, hold), func(b *testing.B) {
				const P = 3
				vrHold = hold
				m := benchMasterVR(b, P, 0.5, metric, wts)
				rr := newRoundRobin(m, P, grads, full)
				for range 2 * P { // the first snapshot, activated
					if err := rr.step(); err != nil {
						b.Fatal(err)
					}
				}
				if m.xHeld() != hold {
					b.Fatalf("x held %v, want %v", m.xHeld(), hold)
				}
				for b.Loop() {
					if err := rr.step(); err != nil {
						b.Fatal(err)
					}
				}
				rate[hold] = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rate[hold], "updates/s")
				b.ReportMetric(float64(rr.entries)/float64(b.N), "reply-entries/op")
				if hold && rate[false] > 0 {
					b.ReportMetric(rate[true]/rate[false], "x-unheld")
				}
			})
		}
	}
}

var benchWindow = 4096

// TestLocalBatch: a batch's local form has the keys KeySet gives, and
// every entry's position points at its column, for short batches (sorted
// by comparison) and long ones (radix, up to three passes), with repeated
// and empty rows.
func TestLocalBatch(t *testing.T) {
	for _, c := range []struct{ d, rows, k int }{{50, 3, 4}, {5000, 64, 30}, {1 << 20, 64, 100}, {1 << 24, 64, 100}, {1 << 24, 2, 5}} {
		t.Run(fmt.Sprintf("d=%d/rows=%d", c.d, c.rows), func(t *testing.T) {
			a, y := zipfCSR(200, c.d, c.k, 3)
			// Row 7 empty.
			e0, e1 := a.Indptr[7], a.Indptr[8]
			a.Indices = append(a.Indices[:e0:e0], a.Indices[e1:]...)
			a.Data = append(a.Data[:e0:e0], a.Data[e1:]...)
			for i := 8; i <= a.Rows; i++ {
				a.Indptr[i] -= e1 - e0
			}
			ks, z := NewKeySet(c.d), NewLocalizer(c.d)
			var lb LocalBatch
			for rep := range 6 {
				rows := make([]int, c.rows)
				for i := range rows {
					rows[i] = (rep*31 + i*7) % a.Rows
				}
				if rep == 1 {
					rows[len(rows)-1] = rows[0] // repeated
				}
				if rep == 2 {
					rows[0] = 7 // empty
				}
				z.Build(a, y, rows, &lb)
				want := ks.Keys(a.Indptr, a.Indices, rows)
				if !slices.Equal(lb.Keys, want) {
					t.Fatalf("rep %d: %d keys, want %d", rep, len(lb.Keys), len(want))
				}
				if !lb.Matches(a, rows) || lb.Matches(a, rows[1:]) {
					t.Fatalf("rep %d: Matches wrong", rep)
				}
				m := &lb.M
				if m.Rows != len(rows) || m.Cols != len(want) || m.Check() != nil {
					t.Fatalf("rep %d: local matrix %dx%d (%v) for %d rows, %d keys", rep, m.Rows, m.Cols, m.Check(), len(rows), len(want))
				}
				for r, i := range rows {
					idx, v := a.Row(i)
					lidx, lv := m.Row(r)
					if len(lidx) != len(idx) || !slices.Equal(lv, v) || lb.Y[r] != y[i] {
						t.Fatalf("rep %d: row %d (%d) has %d entries, want %d, or other values", rep, r, i, len(lidx), len(idx))
					}
					for e, p := range lidx {
						if lb.Keys[p] != idx[e] {
							t.Fatalf("rep %d: row %d entry %d at key %d, column %d", rep, r, e, lb.Keys[p], idx[e])
						}
					}
				}
			}
		})
	}
}

// BenchmarkLocalBatch measures the keys of a batch of text-like data (d =
// 2^20, 100 nonzeros per row, popularity 1/j, batch 64) with KeySet (the
// stamp per feature and a sort of the keys) against Localizer.Build
// (which also gives the entries' positions) and the Build it replaced
// (LocalizerRef), in the same run, on a matrix
// that fits the caches (4096 rows, 5 MB) and one that does not (65,536
// rows, 79 MB, a worker's shard of the d = 1M set).
func BenchmarkLocalBatch(b *testing.B) {
	const d = 1 << 20
	for _, n := range []int{4096, 1 << 16} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) { benchLocalBatch(b, d, n) })
	}
}

func benchLocalBatch(b *testing.B, d, n int) {
	a, y := zipfCSR(n, d, 100, 1)
	s := NewAhead(NewSampler(a.Rows, 3), 64)
	batches := make([][]int, max(64, n/64)) // every row once: none stays in cache
	for i := range batches {
		batches[i] = slices.Clone(s.Next())
	}
	ks, z, zr := NewKeySet(d), NewLocalizer(d), newRefLocalizer(d)
	var lb LocalBatch
	b.Run("KeySet", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			ks.Keys(a.Indptr, a.Indices, batches[i%len(batches)])
		}
	})
	b.Run("Localizer", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			z.Build(a, y, batches[i%len(batches)], &lb)
		}
		b.ReportMetric(float64(len(lb.Keys)), "keys")
	})
	b.Run("LocalizerRef", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			zr.build(a, y, batches[i%len(batches)], &lb)
		}
	})
}

// TestLocalizerRef: Build gives exactly what refLocalizer (the Build it
// replaced, kept as the reference) gives, on random batches with repeated
// and empty rows, unsorted and duplicated columns, one Localizer and
// LocalBatch reused throughout (stale state would show).
func TestLocalizerRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	for _, d := range []int{1, 63, 64, 4097, 1 << 20, 1<<20 + 3} {
		a, y := zipfCSR(300, d, 1+rng.IntN(150), uint64(d))
		// Every 10th row empty; every 7th reversed with a column repeated.
		var m kernels.CSR
		m.Rows, m.Cols, m.Indptr = a.Rows, a.Cols, []int64{0}
		for i := range a.Rows {
			idx, v := a.Row(i)
			switch {
			case i%10 == 0:
				idx, v = nil, nil
			case i%7 == 0 && len(idx) > 0:
				idx, v = slices.Clone(idx), slices.Clone(v)
				slices.Reverse(idx)
				idx, v = append(idx, idx[0]), append(v, -v[0])
			}
			m.Indices, m.Data = append(m.Indices, idx...), append(m.Data, v...)
			m.Indptr = append(m.Indptr, int64(len(m.Indices)))
		}
		z, zr := NewLocalizer(d), newRefLocalizer(d)
		var lb, want LocalBatch
		for rep := range 40 {
			rows := make([]int, rng.IntN(80))
			for i := range rows {
				rows[i] = rng.IntN(m.Rows)
				if i > 0 && rng.IntN(8) == 0 {
					rows[i] = rows[rng.IntN(i)] // repeated
				}
			}
			z.Build(&m, y, rows, &lb)
			zr.build(&m, y, rows, &want)
			g, w := &lb.M, &want.M
			if lb.A != &m || !slices.Equal(lb.Rows, want.Rows) || !slices.Equal(lb.Keys, want.Keys) ||
				!slices.Equal(lb.Y, want.Y) || g.Rows != w.Rows || g.Cols != w.Cols ||
				!slices.Equal(g.Indptr, w.Indptr) || !slices.Equal(g.Indices, w.Indices) ||
				!slices.EqualFunc(g.Data, w.Data, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }) {
				t.Fatalf("d=%d rep %d (%d rows): Build differs from the reference: %d keys, want %d", d, rep, len(rows), len(lb.Keys), len(want.Keys))
			}
		}
	}
}

// refLocalizer is Localizer as it was before its cache misses were
// overlapped and its passes made to read contiguous memory: the reference
// of TestLocalizerRef and BenchmarkLocalBatch.
type refLocalizer struct {
	top, bits []uint64
	first     []int32
	touch     int32
	ftouch    float64
}

func newRefLocalizer(d int) *refLocalizer {
	w := (d + 63) / 64
	return &refLocalizer{top: make([]uint64, (w+63)/64), bits: make([]uint64, w), first: make([]int32, w)}
}

func (z *refLocalizer) build(a *kernels.CSR, y []float64, rows []int, lb *LocalBatch) {
	lb.A = a
	lb.Rows = append(lb.Rows[:0], rows...)
	ip, ind, val := a.Indptr, a.Indices, a.Data
	m := &lb.M
	m.Rows = len(rows)
	m.Indptr = append(m.Indptr[:0], 0)
	m.Data = m.Data[:0]
	lb.Y = lb.Y[:0]
	var touch int32
	var ftouch float64
	for _, i := range rows {
		if lo := ip[i]; lo < ip[i+1] {
			touch += ind[lo]
			ftouch += val[lo]
		}
	}
	z.touch, z.ftouch = touch, ftouch
	for _, i := range rows {
		m.Data = append(m.Data, val[ip[i]:ip[i+1]]...)
		m.Indptr = append(m.Indptr, int64(len(m.Data)))
		lb.Y = append(lb.Y, y[i])
	}
	top, bs, first := z.top, z.bits, z.first
	for _, i := range rows {
		for _, j := range ind[ip[i]:ip[i+1]] {
			w := uint32(j) >> 6
			bs[w] |= 1 << (uint32(j) & 63)
			top[w>>6] |= 1 << (w & 63)
		}
	}
	keys := lb.Keys[:0]
	for t, tw := range top {
		for tw != 0 {
			w := t<<6 | bits.TrailingZeros64(tw)
			tw &= tw - 1
			first[w] = int32(len(keys))
			for word := bs[w]; word != 0; word &= word - 1 {
				keys = append(keys, int32(w<<6|bits.TrailingZeros64(word)))
			}
		}
	}
	n := len(m.Data)
	pos := slices.Grow(m.Indices[:0], n)[:n]
	e := 0
	for _, i := range rows {
		for _, j := range ind[ip[i]:ip[i+1]] {
			w := uint32(j) >> 6
			pos[e] = first[w] + int32(bits.OnesCount64(bs[w]&(1<<(uint32(j)&63)-1)))
			e++
		}
	}
	for t, tw := range top {
		if tw == 0 {
			continue
		}
		top[t] = 0
		for ; tw != 0; tw &= tw - 1 {
			bs[t<<6|bits.TrailingZeros64(tw)] = 0
		}
	}
	lb.Keys, m.Indices, m.Cols = keys, pos, len(keys)
}

// shardPart is a shard's mean gradient as a refresh part: the columns of
// rows rows of k log-uniform features each (the support of a text shard's
// full gradient, as zipfCSR draws its rows), with small values.
func shardPart(d, rows, k int, seed uint64) Grad {
	rng := rand.New(rand.NewPCG(seed, 11))
	lnd := math.Log(float64(d))
	mark := make([]bool, d)
	for range rows * k {
		mark[min(d-1, int(math.Exp(rng.Float64()*lnd))-1)] = true
	}
	g := Grad{Rows: rows, Loss: 0.69}
	for j, in := range mark {
		if in {
			g.Idx, g.Val = append(g.Idx, int32(j)), append(g.Val, 1e-3*rng.NormFloat64())
		}
	}
	return g
}

// BenchmarkMasterVRCycle measures the master's svrg loop over whole
// cycles (3,125 updates as on d1m with batch 64, then a refresh whose 3
// parts each have the support of a shard of 66,667 rows of 100 nonzeros:
// about 1.9M coordinates at d = 2^24), with the snapshot's copy, its
// nonzeros, the sum's clear and the records' repack over the supports
// (support=true) against over every coordinate (support=false, as
// before), in the same run, at d = 2^20 and 2^24. One op is one cycle;
// it reports the updates per second of a cycle, snapshot included, and
// the ratio.
func BenchmarkMasterVRCycle(b *testing.B) {
	defer func() { vrSupport = true }()
	for _, d := range []int{1 << 20, 1 << 24} {
		a, y := zipfCSR(16384, d, 100, 1)
		grads := keyedGrads(a, y, 256)
		full := shardPart(d, 66667, 100, 3)
		full.Keys = grads[0].Keys // a part names its next batch's keys, as a worker's does
		metric, wts := benchMetric(d)
		rate := map[bool]float64{}
		for _, sup := range []bool{false, true} {
			runtime.GC()
			b.Run(fmt.Sprintf("d=%d/support=%v", d, sup), func(b *testing.B) {
				const P = 3
				vrSupport = sup
				m := benchMasterVR(b, P, 0.05, metric, wts)
				rr := newRoundRobin(m, P, grads, full)
				cycle := func() int64 {
					a0, _ := m.VRSnapshots()
					t0 := m.T()
					for a, _ := m.VRSnapshots(); a == a0; a, _ = m.VRSnapshots() {
						if err := rr.step(); err != nil {
							b.Fatal(err)
						}
					}
					return m.T() - t0
				}
				cycle() // the first snapshot, activated
				var updates int64
				for b.Loop() {
					updates += cycle()
				}
				if a, r := m.VRSnapshots(); r != 0 || a < 2 {
					b.Fatalf("%d snapshots, %d rejected", a, r)
				}
				rate[sup] = float64(updates) / b.Elapsed().Seconds()
				b.ReportMetric(rate[sup], "updates/s")
				b.ReportMetric(float64(updates)/float64(b.N), "updates/op")
				if sup && rate[false] > 0 {
					b.ReportMetric(rate[true]/rate[false], "x-all")
				}
			})
		}
	}
}

// benchMetric draws the master benchmarks' metric and support weights.
func benchMetric(d int) (metric, wts []float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	metric, wts = make([]float64, d), make([]float64, d)
	for j := range d {
		metric[j], wts[j] = math.Exp(rng.NormFloat64()), 1+10*rng.Float64()
	}
	return metric, wts
}

// benchMasterVR is the master benchmarks' svrg master: P workers sharing
// the rows, the sparse step with metric and weights at the constant step
// alpha, l1, a refresh every 3125 updates (d1m with batch 64), the last
// iterate, keyed pull.
func benchMasterVR(b *testing.B, P int, alpha float64, metric, wts []float64) *Master {
	share := make([]float64, P+1)
	for w := 1; w <= P; w++ {
		share[w] = 1 / float64(P)
	}
	vc := &VRConfig{Alpha: alpha, Metric: metric, Sparse: true, Weights: wts, Every: 3125, FullShare: share}
	m, err := NewMaster(MasterConfig{Workers: P, X0: make([]float64, len(metric)), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 1e-5},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: alpha}, Average: solver.Averager{Kind: solver.AvgLast},
		Pull: PullKeys, VR: vc})
	if err != nil {
		b.Fatal(err)
	}
	return m
}
