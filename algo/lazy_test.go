package algo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// TestLazyEqualsEager checks the lazy O(nnz(g)) step against the eager
// Reg.Step + Averager.Add on random sparse gradient sequences, for every
// lazy regularizer, every average and step-size policy shape, with window
// sizes that force several synchronisations.
func TestLazyEqualsEager(t *testing.T) {
	regs := []solver.Reg{
		{Kind: solver.RegNone},
		{Kind: solver.RegL1, Lambda: 0.05},
		{Kind: solver.RegL2, Lambda: 0.3},
		{Kind: solver.RegElastic, Lambda: 0.02, Lambda2: 0.5},
		{Kind: solver.RegL1, Lambda: 2}, // strong shrinkage: most coordinates hit zero
	}
	avgs := []solver.Averager{
		{Kind: solver.AvgLast},
		{Kind: solver.AvgUniform},
		{Kind: solver.AvgWeighted, T0: 7.5},
		{Kind: solver.AvgTail},
		{Kind: solver.AvgTail, Horizon: 300},
	}
	for ri, reg := range regs {
		for ai, avg := range avgs {
			for _, window := range []int{1, 5, 64, 100000} {
				rng := rand.New(rand.NewPCG(uint64(ri), uint64(ai*1000+window)))
				d := 40
				x0 := make([]float64, d)
				for j := range x0 {
					if rng.IntN(2) == 0 {
						x0[j] = rng.NormFloat64()
					}
				}
				z, err := NewLazy(reg, avg, x0, window)
				if err != nil {
					t.Fatal(err)
				}
				ex := append([]float64(nil), x0...)
				ea := avg
				g := make([]float64, d)
				steps := 300
				for s := 0; s < steps; s++ {
					alpha := 0.3 / math.Sqrt(float64(s)+1)
					var idx []int32
					var val []float64
					clear(g)
					for j := 0; j < d; j++ {
						if rng.IntN(8) == 0 {
							v := rng.NormFloat64()
							idx = append(idx, int32(j))
							val = append(val, v)
							g[j] = v
						}
					}
					z.Step(idx, val, alpha)
					reg.Step(ex, g, alpha)
					ea.Add(ex)
					if s%37 == 0 {
						// Reading single coordinates must not disturb the state.
						j := rng.IntN(d)
						if got := z.At(j); !near(got, ex[j]) {
							t.Fatalf("reg %v avg %v window %d step %d: At(%d)=%v want %v", reg.Kind, avg.Kind, window, s, j, got, ex[j])
						}
						nzi, nzv := z.AppendNonzeros(nil, nil)
						checkNonzeros(t, nzi, nzv, ex)
					}
				}
				gotAvg := make([]float64, d)
				z.Average(gotAvg)
				wantAvg := make([]float64, d)
				ea.Value(ex, wantAvg)
				x := z.X()
				for j := range x {
					if !near(x[j], ex[j]) {
						t.Fatalf("reg %v avg %v window %d: x[%d]=%v want %v", reg.Kind, avg.Kind, window, j, x[j], ex[j])
					}
					if !near(gotAvg[j], wantAvg[j]) {
						t.Fatalf("reg %v avg %v window %d: avg[%d]=%v want %v", reg.Kind, avg.Kind, window, j, gotAvg[j], wantAvg[j])
					}
				}
				// Export gives the eager averager's state.
				xe, ae := z.Export()
				if ae.N != ea.N {
					t.Fatalf("export N=%d want %d", ae.N, ea.N)
				}
				out := make([]float64, d)
				ae.Value(xe, out)
				for j := range out {
					if !near(out[j], wantAvg[j]) {
						t.Fatalf("reg %v avg %v: exported avg[%d]=%v want %v", reg.Kind, avg.Kind, j, out[j], wantAvg[j])
					}
				}
			}
		}
	}
}

func checkNonzeros(t *testing.T, idx []int32, val []float64, x []float64) {
	t.Helper()
	k := 0
	for j, v := range x {
		if v == 0 {
			continue
		}
		if k >= len(idx) || int(idx[k]) != j || !near(val[k], v) {
			t.Fatalf("nonzeros: entry %d: got %v, want index %d value %v", k, idx, j, v)
		}
		k++
	}
	// Lazy may keep an entry the eager path rounded to exactly zero only if
	// its value is negligible.
	for ; k < len(idx); k++ {
		if math.Abs(val[k]) > 1e-12 {
			t.Fatalf("nonzeros: extra entry %d=%v", idx[k], val[k])
		}
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-10*(1+math.Abs(b))
}

// TestLastAlive: the zero-crossing search (a few steps after a, then the
// coarse index, then one block) finds what a scan of the history finds,
// across block boundaries and for stretches of every length.
func TestLastAlive(t *testing.T) {
	const d, steps = 4, 3*hcEvery + 77
	z, err := NewLazy(solver.Reg{Kind: solver.RegL1, Lambda: 0.1}, solver.Averager{Kind: solver.AvgUniform}, make([]float64, d), steps+10)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range steps {
		z.Step(nil, nil, rng.Float64()) // some steps of alpha 0: D repeats
	}
	hd := z.hd
	for range 20000 {
		a := rng.IntN(len(hd) - 1)
		b := a + 1 + rng.IntN(len(hd)-1-a)
		// u with D_a < u <= D_b (or u = D_a: rounding), near a step's D.
		u := hd[a+rng.IntN(b-a+1)]
		if rng.IntN(2) == 0 {
			u = math.Nextafter(u, math.Inf(1))
		}
		if !(hd[b] >= u) {
			continue
		}
		want := a
		for e := a + 1; e < b && hd[e] < u; e++ {
			want = e
		}
		if got := z.lastAlive(a, b, u); got != want {
			t.Fatalf("lastAlive(%d, %d, %v) = %d, want %d", a, b, u, got, want)
		}
	}
}
