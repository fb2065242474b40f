package solver_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// BenchmarkStep measures Reg.Step, the master's per-update cost, against
// the bare gradient step x -= alpha g (the "axpy" rows) at several sizes: the
// ratio of the two is what the regularizer adds.
func BenchmarkStep(b *testing.B) {
	for _, d := range []int{1000, 100000} {
		rng := rand.New(rand.NewPCG(1, 1))
		g := randVec(rng, d, 1)
		x := make([]float64, d)
		b.Run(fmt.Sprintf("axpy/d=%d", d), func(b *testing.B) {
			b.SetBytes(int64(16 * d))
			b.ReportAllocs()
			for b.Loop() {
				for i := range x {
					x[i] -= 1e-3 * g[i]
				}
			}
		})
		for _, tc := range regCases(d) {
			if tc.name == "none" {
				continue
			}
			tc.r.Init(x)
			b.Run(fmt.Sprintf("%s/d=%d", tc.name, d), func(b *testing.B) {
				b.SetBytes(int64(16 * d))
				b.ReportAllocs()
				for b.Loop() {
					tc.r.Step(x, g, 1e-3)
				}
				if tc.r.Kind == solver.RegSimplex && tc.r.Value(x) != 0 {
					b.Fatal("left the simplex")
				}
			})
		}
	}
}
