package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refMultiLoss is the K-class loss written straight from its definition
// (Multi's doc), without the max shift: the oracle for small margins.
func refMultiLoss(mc Multi, a *CSR, y []float64, rows []int, x []float64) float64 {
	k := mc.K
	var sum float64
	for _, i := range rows {
		m := make([]float64, k)
		for t := a.Indptr[i]; t < a.Indptr[i+1]; t++ {
			for c := range m {
				m[c] += a.Data[t] * x[int(a.Indices[t])*k+c]
			}
		}
		yc := int(y[i])
		if mc.OVR {
			for c := range m {
				s := -1.0
				if c == yc {
					s = 1
				}
				sum += math.Log(1 + math.Exp(-s*m[c]))
			}
			continue
		}
		var e float64
		for _, v := range m {
			e += math.Exp(v)
		}
		sum += math.Log(e) - m[yc]
	}
	return sum / float64(len(rows))
}

func classes(rng *rand.Rand, n, k int) []float64 {
	y := make([]float64, n)
	for i := range y {
		y[i] = float64(rng.IntN(k))
	}
	return y
}

var multis = []Multi{{K: 2}, {K: 3}, {K: 7}, {K: 3, OVR: true}, {K: 5, OVR: true}}

// TestMultiGradFiniteDifferences checks MultiGradBatchCSR's loss against
// the reference loop and its gradient against central differences of the
// reference, with every buffer between NaN guard bands.
func TestMultiGradFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, mc := range multis {
		for _, sz := range []struct{ n, d, maxRow, b int }{{6, 3, 3, 1}, {40, 9, 9, 7}, {200, 31, 12, 64}} {
			t.Run(fmt.Sprintf("%v/%dx%d/b%d", mc, sz.n, sz.d, sz.b), func(t *testing.T) {
				a, _ := randCSR(rng, sz.n, sz.d, sz.maxRow)
				y := classes(rng, sz.n, mc.K)
				rows := randRows(rng, sz.n, sz.b)
				dk := sz.d * mc.K
				x := guardedVec(dk, randVec(rng, dk, 0.5))
				g := guardedVec(dk, nil)
				scratch := guardedVec(2*mc.K, nil)
				got := MultiGradBatchCSR(mc, a, y, rows, x, g, scratch)
				checkGuards(t, "x", x)
				checkGuards(t, "g", g)
				checkGuards(t, "scratch", scratch)
				if want := refMultiLoss(mc, a, y, rows, x); !near(got, want, 1e-12) {
					t.Fatalf("loss %v, reference %v", got, want)
				}
				xp := append([]float64(nil), x...)
				const h = 1e-6
				for j := range xp {
					old := xp[j]
					xp[j] = old + h
					fp := refMultiLoss(mc, a, y, rows, xp)
					xp[j] = old - h
					fm := refMultiLoss(mc, a, y, rows, xp)
					xp[j] = old
					if fd := (fp - fm) / (2 * h); math.Abs(fd-g[j]) > 1e-6*(1+math.Abs(fd)) {
						t.Fatalf("grad[%d] (feature %d, class %d) = %v, finite difference %v", j, j/mc.K, j%mc.K, g[j], fd)
					}
				}
				// The sparse accumulator gives the same gradient, and is clean for the next call.
				acc := NewMultiSparseAcc(sz.d, mc.K)
				var sv SparseVec
				for rep := 0; rep < 2; rep++ {
					ls := acc.GradBatchCSR(mc, a, y, rows, x, &sv)
					if ls != got {
						t.Fatalf("sparse loss %v, dense %v", ls, got)
					}
					dense := make([]float64, dk)
					for q, j := range sv.Idx {
						if q > 0 && sv.Idx[q-1] >= j {
							t.Fatalf("sparse indices not increasing at %d", q)
						}
						dense[j] = sv.Val[q]
					}
					checkClose(t, "sparse gradient", dense, g, 1e-15)
				}
				// The full gradient over all rows, on 1 and 3 goroutines.
				all := make([]int, sz.n)
				for i := range all {
					all[i] = i
				}
				MultiGradBatchCSR(mc, a, y, all, x, g, scratch)
				for _, w := range []int{1, 3} {
					fg, err := NewMultiFullGrad(mc, a, y, w)
					if err != nil {
						t.Fatal(err)
					}
					gf := guardedVec(dk, nil)
					lf := fg.Eval(x, gf)
					checkGuards(t, "full g", gf)
					if want := refMultiLoss(mc, a, y, all, x); !near(lf, want, 1e-12) {
						t.Fatalf("full loss %v, reference %v", lf, want)
					}
					checkClose(t, "full gradient", gf, g, 1e-12)
				}
			})
		}
	}
}

// TestMultiSoftmaxStable checks that huge margins give the exact limits
// instead of Inf or NaN: the log-sum-exp is shifted by the largest margin.
func TestMultiSoftmaxStable(t *testing.T) {
	mc := Multi{K: 3}
	dm := make([]float64, 3)
	l := mc.ValueDeriv([]float64{1000, -1000, 0}, 0, dm)
	if l != 0 || dm[0] != 0 || dm[1] != 0 || dm[2] != 0 {
		t.Fatalf("confident right answer: loss %v, derivatives %v", l, dm)
	}
	l = mc.ValueDeriv([]float64{1000, -1000, 0}, 1, dm)
	if l != 2000 || dm[0] != 1 || dm[1] != -1 {
		t.Fatalf("confident wrong answer: loss %v (want 2000), derivatives %v", l, dm)
	}
	// Equal margins: log K, derivatives 1/K - [c == y].
	l = mc.ValueDeriv([]float64{7, 7, 7}, 2, dm)
	if !near(l, math.Log(3), 1e-15) || !near(dm[0], 1.0/3, 1e-15) || !near(dm[2], -2.0/3, 1e-15) {
		t.Fatalf("equal margins: loss %v, derivatives %v", l, dm)
	}
}

func TestMultiFullGradRejectsLabels(t *testing.T) {
	a, _ := randCSR(rand.New(rand.NewPCG(1, 2)), 4, 3, 3)
	for _, y := range [][]float64{{0, 1, 2, 3}, {0, 1, -1, 0}, {0, 0.5, 1, 1}, {0, 1}} {
		if _, err := NewMultiFullGrad(Multi{K: 3}, a, y, 1); err == nil {
			t.Errorf("labels %v accepted for K = 3", y)
		}
	}
}
