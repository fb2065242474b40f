package ranks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
)

// zipfShard is a shard of n rows with about k entries each (columns drawn
// with popularity about 1/j, as words in text, or uniformly if k < 0, for
// -k entries; duplicates dropped), N(0,1) values and +-1 labels; every
// 50th row is empty.
func zipfShard(n, d, k int, seed uint64) *shard {
	uniform := k < 0
	k = max(k, -k)
	rng := rand.New(rand.NewPCG(seed, 3))
	a := &kernels.CSR{Rows: n, Cols: d, Indptr: make([]int64, 1, n+1)}
	y := make([]float64, n)
	lnd := math.Log(float64(d))
	row := make([]int32, 0, k)
	for i := range n {
		row = row[:0]
		for range k {
			if uniform {
				row = append(row, int32(rng.IntN(d)))
			} else {
				row = append(row, int32(min(d-1, int(math.Exp(rng.Float64()*lnd))-1)))
			}
		}
		if i%50 == 7 {
			row = row[:0]
		}
		slices.Sort(row)
		for _, j := range slices.Compact(row) {
			a.Indices = append(a.Indices, j)
			a.Data = append(a.Data, rng.NormFloat64())
		}
		a.Indptr = append(a.Indptr, int64(len(a.Indices)))
		y[i] = float64(1 - 2*rng.IntN(2))
	}
	return &shard{a: a, y: y, d: d}
}

// sameGrad fails unless got and want carry the same loss and entries,
// bit for bit, in the same form (sparse or dense).
func sameGrad(t *testing.T, what string, got, want *algo.Grad) {
	t.Helper()
	if got.Rows != want.Rows || math.Float64bits(got.Loss) != math.Float64bits(want.Loss) {
		t.Fatalf("%s: rows %d loss %v, want %d %v", what, got.Rows, got.Loss, want.Rows, want.Loss)
	}
	if (got.Dense == nil) != (want.Dense == nil) || !slices.Equal(got.Idx, want.Idx) {
		t.Fatalf("%s: dense %v with %d indices, want dense %v with %d", what, got.Dense != nil, len(got.Idx), want.Dense != nil, len(want.Idx))
	}
	gv, wv := got.Val, want.Val
	if got.Dense != nil {
		gv, wv = got.Dense, want.Dense
	}
	if len(gv) != len(wv) {
		t.Fatalf("%s: %d values, want %d", what, len(gv), len(wv))
	}
	for k := range gv {
		if math.Float64bits(gv[k]) != math.Float64bits(wv[k]) {
			t.Fatalf("%s: value %d is %v, want %v", what, k, gv[k], wv[k])
		}
	}
}

// cloneGrad copies the entries of g (which may be a computer's buffers).
func cloneGrad(g *algo.Grad) algo.Grad {
	c := *g
	c.Dense, c.Idx, c.Val = slices.Clone(g.Dense), slices.Clone(g.Idx), slices.Clone(g.Val)
	return c
}

// oldDiff is svrg's difference as the worker takes it from two gradients
// (algo/worker_vr.go): a at x minus b at the snapshot, entry by entry.
func oldDiff(a, b *algo.Grad) algo.Grad {
	c := cloneGrad(a)
	if c.Dense != nil {
		for j, g := range b.Dense {
			c.Dense[j] -= g
		}
		return c
	}
	for k, g := range b.Val {
		c.Val[k] -= g
	}
	return c
}

// TestLocalGradBitIdentical: gradients computed on a batch's keys (the
// local form kept when its keys were asked for) equal those of the sparse
// accumulator, bit for bit, loss included, and so do svrg's differences:
// for every loss (squared hinge has rows of zero derivative), with
// repeated rows and empty rows in a batch, sparse and (d small against the
// keys) dense, and after the keys of later batches were asked for.
func TestLocalGradBitIdentical(t *testing.T) {
	for _, c := range []struct{ d, k, batch int }{{1 << 20, 100, 64}, {1 << 14, 30, 13}, {2100, 40, 50}, {2100, -100, 60}} {
		for _, loss := range []kernels.Loss{kernels.Logistic, kernels.Squared, kernels.SqHinge} {
			t.Run(fmt.Sprintf("d=%d/%v", c.d, loss), func(t *testing.T) {
				s := zipfShard(400, c.d, c.k, 1)
				gc := newGradComputer(&Config{Loss: loss, Pull: algo.PullKeys}, s)
				ref := newGradComputer(&Config{Loss: loss, Pull: algo.PullAll}, s)
				if gc.local == nil || ref.local != nil {
					t.Fatal("local batches not kept with --pull keys, or kept with --pull all")
				}
				rng := rand.New(rand.NewPCG(2, 2))
				x, snap := make([]float64, c.d), make([]float64, c.d)
				for j := range x {
					if rng.IntN(3) > 0 { // a third of x stays 0
						x[j], snap[j] = 0.3*rng.NormFloat64(), 0.3*rng.NormFloat64()
					}
				}
				var batches [][]int
				for b := range 12 {
					rows := make([]int, c.batch)
					for i := range rows {
						rows[i] = rng.IntN(s.a.Rows)
					}
					rows[1] = rows[0]               // repeated
					rows[2] = (50*b + 7) % s.a.Rows // empty
					batches = append(batches, rows)
				}
				gc.keys(batches[0])
				gc.keys(batches[1])
				var zero, dense, sparse int
				for b, rows := range batches {
					if b+2 < len(batches) {
						gc.keys(batches[b+2]) // two ahead, as with pipelining
					}
					var got, want algo.Grad
					gc.compute(rows, x, &got)
					if gc.local.pinned < 0 {
						t.Fatalf("batch %d: not found in local form", b)
					}
					ref.compute(rows, x, &want)
					sameGrad(t, fmt.Sprintf("batch %d", b), &got, &want)
					if got.Dense != nil {
						dense++
					} else {
						sparse++
					}

					a := cloneGrad(&want)
					ref.compute(rows, snap, &want)
					wantDiff := oldDiff(&a, &want)
					if !gc.diff(rows, x, snap, &got) {
						t.Fatalf("batch %d: no difference in local form", b)
					}
					sameGrad(t, fmt.Sprintf("batch %d difference", b), &got, &wantDiff)

					// On a keyed reply's entries (x on the batch's keys, in
					// their order, nothing gathered from x): the same bits.
					lb := gc.local.find(s.a, rows)
					keys := slices.Clone(lb.Keys)
					xk := make([]float64, len(keys))
					kernels.Gather(keys, x, xk)
					if !gc.onKeys(rows, keys, xk, nil, &got) {
						t.Fatalf("batch %d: not computed on its keys", b)
					}
					ref.compute(rows, x, &want)
					sameGrad(t, fmt.Sprintf("batch %d on keys", b), &got, &want)
					if !gc.onKeys(rows, keys, xk, snap, &got) {
						t.Fatalf("batch %d: no difference on its keys", b)
					}
					sameGrad(t, fmt.Sprintf("batch %d difference on keys", b), &got, &wantDiff)
					if len(keys) > 1 && gc.onKeys(rows, keys[1:], xk[1:], nil, &got) {
						t.Fatalf("batch %d: computed on keys that are not its own", b)
					}
					for _, i := range rows {
						idx, v := s.a.Row(i)
						if _, di := loss.ValueDeriv(kernels.DotSparse(idx, v, x), s.y[i]); di == 0 && len(idx) > 0 {
							zero++
						}
					}
				}
				// A batch not asked for is computed the general way.
				var got, want algo.Grad
				rows := slices.Clone(batches[0])
				rows[5]++
				gc.compute(rows, x, &got)
				ref.compute(rows, x, &want)
				if gc.local.pinned >= 0 || gc.diff(rows, x, snap, &got) {
					t.Error("a batch whose keys were not asked for was found")
				}
				sameGrad(t, "a batch not held", &got, &want)
				if loss == kernels.SqHinge && zero == 0 {
					t.Error("no row of zero derivative: the squared hinge case is vacuous")
				}
				if c.k < 0 && dense == 0 {
					t.Error("no dense gradient: the dense case is vacuous")
				}
				t.Logf("%d sparse, %d dense gradients; %d rows of zero derivative", sparse, dense, zero)
			})
		}
	}
}

// TestLocalBatchesKeep: the last gradient's batch is never rebuilt (its
// keys are that gradient's indices), the newest of equal batches is used,
// and a batch of another matrix (an adopted shard) is not found.
func TestLocalBatchesKeep(t *testing.T) {
	s := zipfShard(100, 1<<16, 20, 4)
	l := newLocalBatches(s.d)
	batch := func(i int) []int { return []int{i, i + 1, i + 2} }
	l.add(s.a, s.y, batch(0))
	if lb := l.find(s.a, batch(0)); lb == nil || !slices.Equal(lb.Rows, batch(0)) {
		t.Fatal("batch 0 not found")
	}
	keys0 := slices.Clone(l.b[l.pinned].Keys)
	for i := 1; i <= 3*localCap; i++ {
		l.add(s.a, s.y, batch(i))
	}
	if lb := &l.b[l.pinned]; !slices.Equal(lb.Rows, batch(0)) || !slices.Equal(lb.Keys, keys0) {
		t.Fatal("the pinned batch was rebuilt")
	}
	for i := 3*localCap - localCap + 2; i <= 3*localCap; i++ {
		if l.find(s.a, batch(i)) == nil {
			t.Errorf("batch %d of the last %d not found", i, localCap-1)
		}
	}
	if l.find(s.a, batch(1)) != nil {
		t.Error("an evicted batch was found")
	}
	l.add(s.a, s.y, batch(3*localCap))
	if lb := l.find(s.a, batch(3*localCap)); lb == nil || l.seq[l.pinned] != l.n {
		t.Error("not the newest of two equal batches")
	}
	other := *s.a
	if l.find(&other, batch(3*localCap)) != nil {
		t.Error("a batch of another matrix was found")
	}
}

// TestShardFullGrad: svrg's full gradient over the shard by the three-pass
// kernel (gradComputer.full) equals the mini-batch path's over all rows up
// to rounding, loss included, sparse on the same support (its nonzeros),
// or dense when that is smaller; every loss, and d above the shard's
// nonzeros (no kernel: the mini-batch path itself).
func TestShardFullGrad(t *testing.T) {
	for _, c := range []struct{ n, d, k int }{{2000, 1 << 14, 30}, {3000, 4096, 20}, {200, 1 << 16, 10}} {
		for _, loss := range []kernels.Loss{kernels.Logistic, kernels.Squared, kernels.SqHinge} {
			t.Run(fmt.Sprintf("n=%d/d=%d/%v", c.n, c.d, loss), func(t *testing.T) {
				s := zipfShard(c.n, c.d, c.k, 3)
				gc := newGradComputer(&Config{Loss: loss, Pull: algo.PullKeys}, s)
				if want := int64(c.d) <= s.a.Indptr[s.a.Rows]; (gc.fg != nil) != want {
					t.Fatalf("three-pass kernel %v, want %v (d %d, %d nonzeros)", gc.fg != nil, want, c.d, s.a.Indptr[s.a.Rows])
				}
				rng := rand.New(rand.NewPCG(4, 4))
				x := make([]float64, c.d)
				for j := range x {
					x[j] = 0.2 * rng.NormFloat64()
				}
				all := make([]int, s.a.Rows)
				for i := range all {
					all[i] = i
				}
				var got, want algo.Grad
				gc.full(all, x, &got)
				got = cloneGrad(&got)
				gc.compute(all, x, &want)
				if got.Rows != want.Rows || math.Abs(got.Loss-want.Loss) > 1e-12*math.Abs(want.Loss) {
					t.Fatalf("rows %d loss %v, want %d %v", got.Rows, got.Loss, want.Rows, want.Loss)
				}
				dense := func(g *algo.Grad) []float64 {
					if g.Dense != nil {
						return g.Dense
					}
					v := make([]float64, c.d)
					for k, j := range g.Idx {
						v[j] = g.Val[k]
					}
					return v
				}
				gd, wd := dense(&got), dense(&want)
				scale := 0.0
				for _, v := range wd {
					scale = max(scale, math.Abs(v))
				}
				for j := range wd {
					if math.Abs(gd[j]-wd[j]) > 1e-12*scale || (gd[j] == 0) != (wd[j] == 0) {
						t.Fatalf("g[%d] = %v, want %v", j, gd[j], wd[j])
					}
				}
				if got.Dense == nil && 10*len(got.Idx) >= 8*c.d {
					t.Errorf("%d entries sent sparse at d = %d", len(got.Idx), c.d)
				}
				t.Logf("dense %v, %d entries", got.Dense != nil, len(got.Idx))
			})
		}
	}
}
