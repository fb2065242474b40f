package solver

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unsafe"
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
// separable kind, with and without a metric and weights, at steps that
// change from update to update (the records do not depend on it), at
// steps so small that some prox steps round to zero (the generic loop)
// and back, and after Mu changed and Pack or PackMuOn ran again; with a
// zero weight (a zero prox step: ProxScalar's own path) as well.
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
				c[5] = 1e300 // the tiny steps below round a_5 to zero
				ref := VRStep{Reg: reg, C: st.C, W: st.W, Mu: mu}
				held := VRStep{Reg: reg, C: st.C, W: st.W, Mu: mu}
				alpha := 0.37
				st.Pack()
				held.Pack()
				held.Hold(x0)
				xa, xb, xh := slices.Clone(x0), slices.Clone(x0), make([]float64, d)
				for round := range 80 {
					idx, val := vrPackBatch(rng, d, 200)
					step, s := alpha, 0.25+rng.Float64()
					switch {
					case round%5 == 4:
						step = 2 * alpha
					case round%5 == 3:
						step = alpha * (0.5 + rng.Float64())
					case round >= 60 && round%2 == 0:
						// a_j w_j underflows on the largest c_j: the
						// generic loop, then back (odd rounds).
						step = 1e-300 * math.Exp(-20*rng.Float64())
					}
					switch round {
					case 30:
						for j := range mu {
							mu[j] = rng.NormFloat64()
						}
						st.Pack()
						held.Pack() // x stays held
					case 45:
						// mu~ changes on a few coordinates only.
						changed, _ := vrPackBatch(rng, d, 300)
						for _, j := range changed {
							mu[j] = rng.NormFloat64()
						}
						st.PackMuOn(changed)
						held.PackMuOn(changed)
					}
					st.Sparse(xa, idx, val, step, s)
					held.Sparse(nil, idx, val, step, s)
					oldVRSparse(&ref, xb, idx, val, step, s)
					held.CopyX(xh)
					if round == 79 && shape != "euclid" && shape != "zero-weight" && reg.Kind <= RegElastic && held.badAlpha == 0 {
						t.Fatal("no step took the generic loop for a zero prox step")
					}
					for j := range xa {
						if math.Float64bits(xa[j]) != math.Float64bits(xb[j]) {
							t.Fatalf("round %d: x[%d] = %v (%#x) packed, %v (%#x) plain", round, j, xa[j], math.Float64bits(xa[j]), xb[j], math.Float64bits(xb[j]))
						}
						if math.Float64bits(xh[j]) != math.Float64bits(xb[j]) {
							t.Fatalf("round %d: x[%d] = %v (%#x) held, %v (%#x) plain", round, j, xh[j], math.Float64bits(xh[j]), xb[j], math.Float64bits(xb[j]))
						}
					}
				}
			})
		}
	}
}

// TestVRStepHold: Hold moves x into aligned records and leaves the
// caller's x alone; X, AppendX and CopyX read it, SetX overwrites it,
// SparseMu (another mu~, the plain loop) steps it as on a dense x, and
// Release gives it back; Pack keeps it held.
func TestVRStepHold(t *testing.T) {
	for _, d := range []int{1, 2, 3, 5, 7, 100, 1500, 5000} {
		if p := uintptr(unsafe.Pointer(&newRecords(d)[0])); p%32 != 0 {
			t.Fatalf("d=%d: records at %#x, not 32-byte aligned", d, p)
		}
	}
	const d = 500
	rng := rand.New(rand.NewPCG(3, 4))
	c, w, mu, x0 := vrPackData(rng, d)
	reg := Reg{Kind: RegL1, Lambda: 1e-3}
	st := VRStep{Reg: reg, C: c, W: w, Mu: mu}
	st.Pack()
	x := slices.Clone(x0)
	st.Hold(x)
	if !st.Held() {
		t.Fatal("not held after Hold")
	}
	idx, val := vrPackBatch(rng, d, 100)
	st.Sparse(nil, idx, val, 0.5, 1)
	mu2 := slices.Clone(x0) // any other mu~
	st.SparseMu(nil, mu2, idx, val, 0.25, 0.5)
	ref := VRStep{Reg: reg, C: c, W: w, Mu: mu}
	want := slices.Clone(x0)
	oldVRSparse(&ref, want, idx, val, 0.5, 1)
	ref.Mu = mu2
	oldVRSparse(&ref, want, idx, val, 0.25, 0.5)
	if !slices.Equal(x, x0) {
		t.Fatal("Hold's caller's x changed before Release")
	}
	got := st.AppendX([]float64{7}, idx)
	for k, j := range idx {
		if got[k+1] != want[j] || st.X(int(j)) != want[j] {
			t.Fatalf("x[%d] = %v (AppendX), %v (X), want %v", j, got[k+1], st.X(int(j)), want[j])
		}
	}
	st.Pack()
	st.Release(x)
	if st.Held() || !slices.Equal(x, want) {
		t.Fatal("Release did not give back the stepped x")
	}
	st.Hold(x)
	st.SetX(x0)
	st.CopyX(x)
	if !slices.Equal(x, x0) {
		t.Fatal("SetX then CopyX does not round-trip")
	}
	// SetXOn and CopyXOn touch idx only.
	y := slices.Clone(x0)
	for _, j := range idx {
		y[j] = float64(j) + 0.5
	}
	st.SetXOn(y, idx)
	got2 := make([]float64, d)
	st.CopyXOn(got2, idx)
	st.CopyX(x)
	for j := range x {
		in := slices.Contains(idx, int32(j))
		if x[j] != y[j] || in && got2[j] != y[j] || !in && got2[j] != 0 {
			t.Fatalf("x[%d] = %v (held), %v (CopyXOn), want %v (in idx: %v)", j, x[j], got2[j], y[j], in)
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

// rec24 is the record of the layout before Hold: 24 bytes of constants,
// x_j in a separate array (two cache misses per coordinate on a large d).
// Kept for BenchmarkVRSparse's baseline.
type rec24 struct{ a, aw, wmu float64 }

// pack24 builds rec24 records as Pack did.
func pack24(v *VRStep, alpha float64) []rec24 {
	pk := make([]rec24, len(v.Mu))
	for j := range pk {
		e := &pk[j]
		e.a = alpha / v.C[j]
		e.aw = e.a * v.W[j]
		e.wmu = v.W[j] * v.Mu[j]
	}
	return pk
}

// sparse24 is sparsePacked's l1 loop on rec24 records and a separate x,
// as it was.
func sparse24(pk []rec24, lam float64, x []float64, idx []int32, val []float64, s float64) {
	val = val[:len(idx)]
	for k, j := range idx {
		e := &pk[j]
		x[j] = soft(x[j]-e.a*(s*val[k]+e.wmu), e.aw*lam)
	}
}

// recA is the held record before the records stopped depending on the
// step: x_j and a = alpha / c_j, a w_j, w_j mu_j (no division in the
// loop, a full Pack at each new step). Kept for BenchmarkVRSparse.
type recA struct{ x, a, aw, wmu float64 }

// packA builds recA records for alpha around x.
func packA(v *VRStep, x []float64, alpha float64) []recA {
	pk := make([]recA, len(v.Mu))
	for j := range pk {
		e := &pk[j]
		e.x = x[j]
		e.a = alpha / v.C[j]
		e.aw = e.a * v.W[j]
		e.wmu = v.W[j] * v.Mu[j]
	}
	return pk
}

// sparseA is the l1 loop on recA records, as sparseHeld was.
func sparseA(pk []recA, lam float64, idx []int32, val []float64, s float64) {
	val = val[:len(idx)]
	for k, j := range idx {
		e := &pk[j]
		e.x = soft(e.x-e.a*(s*val[k]+e.wmu), e.aw*lam)
	}
}

// BenchmarkVRSparse measures the sparse svrg step with the diag metric, the
// support weights and l1 at d = 2^20 and 2^24 on text-like supports (64 rows
// of 100 nonzeros with popularity 1/j: about 3,800 coordinates at 2^20,
// as the d1m data), cycling through 256 supports, in four layouts in the
// same run: the plain loop over C, W, Mu and x; rec24, the 24-byte records
// and a separate x (the layout before Hold); packed, the 32-byte records
// and a separate x; held, the 32-byte records with x in them (Hold: one
// cache line per coordinate); heldA, held's layout before the records
// stopped depending on the step (a and a w_j stored, no division per
// coordinate). It reports ns per coordinate and each layout's ratio to
// rec24.
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
		// Every layout is built before any is timed, with a collection
		// in between: at 2^24 each is hundreds of MB, and building one
		// while another is measured (or collecting the last) skewed the
		// later layouts by up to 1.7x.
		reg := Reg{Kind: RegL1, Lambda: 1e-5}
		plain := VRStep{Reg: reg, C: c, W: w, Mu: mu}
		pk := pack24(&plain, 0.9)
		packed := VRStep{Reg: reg, C: c, W: w, Mu: mu}
		packed.Pack()
		held := VRStep{Reg: reg, C: c, W: w, Mu: mu}
		held.Pack()
		held.Hold(x)
		pkA := packA(&plain, x, 0.9)
		steps := map[string]func(idx []int32, val []float64){
			"plain":  func(idx []int32, val []float64) { plain.Sparse(x, idx, val, 0.9, 1e-3) },
			"rec24":  func(idx []int32, val []float64) { sparse24(pk, reg.Lambda, x, idx, val, 1e-3) },
			"packed": func(idx []int32, val []float64) { packed.Sparse(x, idx, val, 0.9, 1e-3) },
			"held":   func(idx []int32, val []float64) { held.Sparse(nil, idx, val, 0.9, 1e-3) },
			"heldA":  func(idx []int32, val []float64) { sparseA(pkA, reg.Lambda, idx, val, 1e-3) },
		}
		perCoord := map[string]float64{}
		for _, layout := range []string{"plain", "rec24", "packed", "held", "heldA"} {
			runtime.GC()
			b.Run(fmt.Sprintf("d=%d/%s", d, layout), func(b *testing.B) {
				step := steps[layout]
				coords := 0
				for i := 0; b.Loop(); i++ {
					k := i % len(idxs)
					step(idxs[k], vals[k])
					coords += len(idxs[k])
				}
				perCoord[layout] = float64(b.Elapsed().Nanoseconds()) / float64(coords)
				b.ReportMetric(perCoord[layout], "ns/coord")
				b.ReportMetric(float64(nnz)/float64(len(idxs)), "coords/op")
				if layout != "rec24" && perCoord["rec24"] > 0 {
					b.ReportMetric(perCoord["rec24"]/perCoord[layout], "x-rec24")
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
				st.Pack()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(d), "ns/coord")
		})
	}
}
