package solver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// oldVRSparse is VRStep.Sparse's plain loop as it was before Pack, kept
// verbatim as the reference the packed loop must match bit for bit.
func oldVRSparse(v *VRStep, x []float64, idx []int32, val []float64, alpha, s float64) {
	for k, j := range idx {
		a, w := alpha, 1.0
		if v.C != nil {
			a /= v.C[j]
		}
		if v.W != nil {
			w = v.W[j]
		}
		x[j] = v.Reg.ProxScalar(x[j]-a*(s*val[k]+w*v.Mu[j]), a*w)
	}
}

// vrPackData draws a VRStep problem of dimension d with awkward numbers:
// metric entries and weights over many magnitudes, signed zeros and
// values near the l1 threshold in x, mu and the difference.
func vrPackData(rng *rand.Rand, d int) (c, w, mu, x []float64) {
	c, w, mu, x = make([]float64, d), make([]float64, d), make([]float64, d), make([]float64, d)
	odd := func() float64 {
		switch rng.IntN(8) {
		case 0:
			return 0
		case 1:
			return math.Copysign(0, -1)
		case 2:
			return 1e-5 * (rng.Float64() - 0.5) // near lambda-sized thresholds
		}
		return rng.NormFloat64() * math.Exp(6*rng.NormFloat64())
	}
	for j := range d {
		c[j] = math.Exp(8 * rng.NormFloat64())
		w[j] = 1 / (1e-6 + rng.Float64())
		mu[j], x[j] = odd(), odd()
	}
	return
}

// TestVRStepPackedBitIdentical: Sparse on Pack's records writes the same
// bits as the plain loop (kept verbatim in oldVRSparse), for every
// separable kind, with and without a metric and weights, at the packed
// step and at another one (the plain fallback), and after Mu changed and
// Pack ran again; with a zero weight (a zero prox step: ProxScalar's own
// path) as well.
func TestVRStepPackedBitIdentical(t *testing.T) {
	const d = 3000
	rng := rand.New(rand.NewPCG(5, 9))
	regs := []Reg{{Kind: RegNone}, {Kind: RegL1, Lambda: 1e-5}, {Kind: RegL1, Lambda: 0.3}, {Kind: RegL2, Lambda: 0.7},
		{Kind: RegElastic, Lambda: 0.2, Lambda2: 0.5}, {Kind: RegBox, Lo: -0.5, Hi: 2}, {Kind: RegNonneg},
		{Kind: RegL1Box, Lambda: 0.1, Lo: -1, Hi: 1}}
	for _, reg := range regs {
		for _, shape := range []string{"euclid", "metric", "metric+weights", "zero-weight"} {
			t.Run(fmt.Sprintf("%s/%s", reg.Kind, shape), func(t *testing.T) {
				c, w, mu, x0 := vrPackData(rng, d)
				st := VRStep{Reg: reg, Mu: mu}
				switch shape {
				case "metric":
					st.C = c
				case "metric+weights", "zero-weight":
					st.C, st.W = c, w
				}
				if shape == "zero-weight" {
					w[7], w[100] = 0, 0
				}
				ref := VRStep{Reg: reg, C: st.C, W: st.W, Mu: mu}
				alpha := 0.37
				st.Pack(alpha)
				xa, xb := slices.Clone(x0), slices.Clone(x0)
				for round := range 60 {
					idx, val := vrPackBatch(rng, d, 200)
					step, s := alpha, 0.25+rng.Float64()
					if round%5 == 4 {
						step = 2 * alpha // not packed: the plain loop
					}
					if round == 30 {
						for j := range mu {
							mu[j] = rng.NormFloat64()
						}
						st.Pack(alpha)
					}
					st.Sparse(xa, idx, val, step, s)
					oldVRSparse(&ref, xb, idx, val, step, s)
					for j := range xa {
						if math.Float64bits(xa[j]) != math.Float64bits(xb[j]) {
							t.Fatalf("round %d: x[%d] = %v (%#x) packed, %v (%#x) plain", round, j, xa[j], math.Float64bits(xa[j]), xb[j], math.Float64bits(xb[j]))
						}
					}
				}
			})
		}
	}
}

// vrPackBatch draws a sorted support of about k coordinates with
// popularity 1/j (text-like) and a difference on it, signed zeros included.
func vrPackBatch(rng *rand.Rand, d, k int) ([]int32, []float64) {
	lnd := math.Log(float64(d))
	idx := make([]int32, 0, k)
	for range k {
		idx = append(idx, int32(min(d-1, int(math.Exp(rng.Float64()*lnd))-1)))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	val := make([]float64, len(idx))
	for i := range val {
		val[i] = rng.NormFloat64()
		if rng.IntN(10) == 0 {
			val[i] = math.Copysign(0, -1)
		}
	}
	return idx, val
}

// BenchmarkVRSparse measures the sparse svrg step with the diag metric, the
// support weights and l1 at d = 2^20 and 2^24 on text-like supports (64 rows
// of 100 nonzeros with popularity 1/j: about 3,800 coordinates at 2^20,
// as the d1m data), cycling through 256 supports: the plain loop over C,
// W and Mu (the old layout) against Pack's records, in the same run. It
// reports ns per coordinate and the ratio plain/packed.
func BenchmarkVRSparse(b *testing.B) {
	for _, d := range []int{1 << 20, 1 << 24} {
		rng := rand.New(rand.NewPCG(1, 2))
		c, w, mu, x := vrPackData(rng, d)
		for j := range x {
			x[j] = 0
		}
		var idxs [][]int32
		var vals [][]float64
		nnz := 0
		for range 256 {
			idx, val := vrPackBatch(rng, d, 6400)
			idxs, vals = append(idxs, idx), append(vals, val)
			nnz += len(idx)
		}
		perCoord := map[bool]float64{}
		for _, packed := range []bool{false, true} {
			name := "plain"
			if packed {
				name = "packed"
			}
			b.Run(fmt.Sprintf("d=%d/%s", d, name), func(b *testing.B) {
				st := VRStep{Reg: Reg{Kind: RegL1, Lambda: 1e-5}, C: c, W: w, Mu: mu}
				if packed {
					st.Pack(0.9)
				}
				coords := 0
				for i := 0; b.Loop(); i++ {
					k := i % len(idxs)
					st.Sparse(x, idxs[k], vals[k], 0.9, 1e-3)
					coords += len(idxs[k])
				}
				perCoord[packed] = float64(b.Elapsed().Nanoseconds()) / float64(coords)
				b.ReportMetric(perCoord[packed], "ns/coord")
				b.ReportMetric(float64(nnz)/float64(len(idxs)), "coords/op")
				if packed && perCoord[false] > 0 {
					b.ReportMetric(perCoord[false]/perCoord[true], "x-plain")
				}
			})
		}
	}
}

// TestSVRGPackedBitIdentical: serial SVRG with the sparse step, the metric
// and the support weights on heart_scale (adaptive step: snapshots,
// growth, rejections) gives the same iterate, bit for bit after every
// update, on Pack's records as on the plain loop.
func TestSVRGPackedBitIdentical(t *testing.T) {
	for _, reg := range []Reg{{Kind: RegL1, Lambda: 0.01}, {Kind: RegL2, Lambda: 0.01}, {Kind: RegElastic, Lambda: 0.01, Lambda2: 0.02}} {
		t.Run(reg.Kind.String(), func(t *testing.T) {
			p := heartProblem(t, reg)
			st := p.Columns()
			metric := st.Metric(0.25)
			L := p.EstimateLMetric(metric, 100, 1)
			// Four times the default step: large enough to be rejected.
			cfg := SVRGConfig{Batch: 8, Alpha: 4 / (VRStepDiv * L), Metric: metric, Sparse: true, Weights: st.SupportWeights(8), Seed: 1, Adapt: true}
			run := func(pack bool) (*SVRG, [][]float64) {
				defer func() { svrgPack = true }()
				svrgPack = pack
				s, err := NewSVRG(p, cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				var xs [][]float64
				for range 3000 {
					s.Step()
					xs = append(xs, slices.Clone(s.X))
				}
				return s, xs
			}
			sp, plain := run(false)
			sk, packed := run(true)
			for k := range plain {
				for j := range plain[k] {
					if math.Float64bits(plain[k][j]) != math.Float64bits(packed[k][j]) {
						t.Fatalf("update %d: x[%d] = %v packed, %v plain", k+1, j, packed[k][j], plain[k][j])
					}
				}
			}
			if sp.Snaps != sk.Snaps || sk.Snaps < 5 {
				t.Fatalf("%d/%d snapshots (want the same, at least 5)", sp.Snaps, sk.Snaps)
			}
			t.Logf("%d snapshots, %d rejected", sk.Snaps, sk.Reverts)
		})
	}
}

// BenchmarkVRPack measures VRStep.Pack, the O(d) cost the master pays at
// each activation, rejection or restore, at d = 2^20 and 2^24.
func BenchmarkVRPack(b *testing.B) {
	for _, d := range []int{1 << 20, 1 << 24} {
		c, w, mu, _ := vrPackData(rand.New(rand.NewPCG(1, 2)), d)
		st := VRStep{Reg: Reg{Kind: RegL1, Lambda: 1e-5}, C: c, W: w, Mu: mu}
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			for b.Loop() {
				st.Pack(0.9)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(d), "ns/coord")
		})
	}
}
