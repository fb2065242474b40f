package algo

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSupport: members lists every coordinate added (by index or as a
// nonzero) once, in increasing order, across word boundaries and after
// more adds; setAll makes it every coordinate.
func TestSupport(t *testing.T) {
	const d = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSupport(d)
	if idx, ok := s.members(); !ok || len(idx) != 0 {
		t.Fatalf("empty support lists %v %v", idx, ok)
	}
	want := map[int32]bool{}
	x := make([]float64, d)
	for round := range 5 {
		var idx []int32
		for range 40 {
			j := int32(rng.IntN(d))
			idx = append(idx, j)
			want[j] = true
		}
		idx = append(idx, 0, 63, 64, d-1)
		want[0], want[63], want[64], want[d-1] = true, true, true, true
		s.add(idx)
		if round == 2 {
			x[517], x[128] = -0.5, 3
			want[517], want[128] = true, true
			s.addNonzeros(x)
		}
		got, ok := s.members()
		var w []int32
		for j := range want {
			w = append(w, j)
		}
		slices.Sort(w)
		if !ok || !slices.Equal(got, w) {
			t.Fatalf("round %d: members %v, want %v", round, got, w)
		}
	}
	s.setAll()
	if _, ok := s.members(); ok {
		t.Fatal("setAll: still listed")
	}
}

// TestCheckFinite: a NaN or an infinity anywhere (in the 4-wide body or
// the tail) is refused with its entry, finite values (huge, subnormal,
// signed zeros) are not.
func TestCheckFinite(t *testing.T) {
	for n := range 11 {
		v := make([]float64, n)
		for j := range v {
			v[j] = []float64{1e308, -1e308, 5e-324, math.Copysign(0, -1), 0.5}[j%5]
		}
		if err := checkFinite(1, v); err != nil {
			t.Fatalf("n=%d: finite refused: %v", n, err)
		}
		for j := range n {
			for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
				u := slices.Clone(v)
				u[j] = bad
				if err := checkFinite(1, u); err == nil {
					t.Fatalf("n=%d: %v at %d accepted", n, bad, j)
				}
			}
		}
	}
}
