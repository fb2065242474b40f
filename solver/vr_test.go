package solver

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
)

// TestStepDiagIsTheArgmin checks the closed form of the diagonal-metric
// step against its definition, x+_j = argmin_u g_j u + psi(u) +
// (c_j/(2 alpha)) (u - x_j)^2: the scalar objective at x+_j is no larger
// than at nearby points, for every separable kind; with c = 1 it is Step.
func TestStepDiagIsTheArgmin(t *testing.T) {
	regs := []Reg{{Kind: RegNone}, {Kind: RegL1, Lambda: 0.3}, {Kind: RegL2, Lambda: 0.7}, {Kind: RegElastic, Lambda: 0.2, Lambda2: 0.5},
		{Kind: RegBox, Lo: -0.4, Hi: 0.6}, {Kind: RegNonneg}, {Kind: RegL1Box, Lambda: 0.1, Lo: -0.3, Hi: 2}}
	rng := rand.New(rand.NewPCG(1, 2))
	const d = 200
	for _, r := range regs {
		x, g, c := make([]float64, d), make([]float64, d), make([]float64, d)
		for j := range x {
			x[j] = rng.NormFloat64()
			if r.Kind == RegBox || r.Kind == RegNonneg || r.Kind == RegL1Box {
				x[j] = math.Min(math.Max(x[j], r.Lo), r.Hi)
				if r.Kind == RegNonneg {
					x[j] = math.Abs(x[j])
				}
			}
			g[j] = 3 * rng.NormFloat64()
			c[j] = math.Pow(10, 4*rng.Float64()-2)
		}
		const alpha = 0.8
		xp := append([]float64(nil), x...)
		r.StepDiag(xp, g, alpha, c)
		for j := range x {
			h := func(u float64) float64 {
				v := []float64{u}
				return g[j]*u + r.Value(v) + c[j]/(2*alpha)*(u-x[j])*(u-x[j])
			}
			best := h(xp[j])
			for _, delta := range []float64{1e-7, 1e-4, 1e-2, 1} {
				for _, u := range []float64{xp[j] - delta, xp[j] + delta} {
					if h(u) < best-1e-12*(1+math.Abs(best)) {
						t.Fatalf("%s: coordinate %d: h(%v) = %v < h(x+) = %v", r.Kind, j, u, h(u), best)
					}
				}
			}
		}
		ones := make([]float64, d)
		for j := range ones {
			ones[j] = 1
		}
		a, b := append([]float64(nil), x...), append([]float64(nil), x...)
		r.StepDiag(a, g, alpha, ones)
		r.Step(b, g, alpha)
		for j := range a {
			if math.Abs(a[j]-b[j]) > 1e-15*(1+math.Abs(b[j])) {
				t.Fatalf("%s: StepDiag with c = 1 differs from Step at %d: %v vs %v", r.Kind, j, a[j], b[j])
			}
		}
	}
}

// heartProblem is heart_scale's problem with reg.
func heartProblem(t *testing.T, reg Reg) *Problem {
	t.Helper()
	ds, err := data.Read("../testdata/heart_scale", data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.ToBinary(); err != nil {
		t.Fatal(err)
	}
	p, err := NewProblem(kernels.Matrix{CSR: &ds.X}, ds.Y, kernels.Logistic, reg, 1)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVRStepFixedPoint: at the optimum x* with the snapshot x~ = x* (diff =
// 0, mu = grad f(x*)), the dense and the sparse steps leave x* in place for
// any metric and weights: -mu is in dPsi(x*).
func TestVRStepFixedPoint(t *testing.T) {
	for _, reg := range []Reg{{Kind: RegL1, Lambda: 0.01}, {Kind: RegL2, Lambda: 0.01}, {Kind: RegElastic, Lambda: 0.01, Lambda2: 0.01}} {
		p := heartProblem(t, reg)
		ref := Reference(p, RefOptions{Tol: 1e-12})
		_, d := p.Dims()
		mu := make([]float64, d)
		p.Smooth(ref.X, mu)
		st := p.Columns()
		c, w := st.Metric(0.25), st.SupportWeights(8)
		idx := make([]int32, d)
		for j := range idx {
			idx[j] = int32(j)
		}
		for _, step := range []VRStep{{Reg: reg, Mu: mu}, {Reg: reg, Mu: mu, C: c}, {Reg: reg, Mu: mu, C: c, W: w}} {
			x := append([]float64(nil), ref.X...)
			step.Dense(x, make([]float64, d), 0.5, 1)
			y := append([]float64(nil), ref.X...)
			step.Sparse(y, idx, make([]float64, d), 0.5, 1)
			for j := range x {
				if math.Abs(x[j]-ref.X[j]) > 1e-7 || math.Abs(y[j]-ref.X[j]) > 1e-7 {
					t.Fatalf("%s: coordinate %d moved from %v to %v (dense), %v (sparse)", reg.Kind, j, ref.X[j], x[j], y[j])
				}
			}
		}
	}
}

// refPhi is the objective of a row of testdata/reference.jsonl.
func refPhi(t *testing.T, dataset, problem string, lambda float64) float64 {
	t.Helper()
	f, err := os.Open("../testdata/reference.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var row struct {
			Dataset, Problem  string
			Lambda, Objective float64
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		if row.Dataset == dataset && row.Problem == problem && row.Lambda == lambda {
			return row.Objective
		}
	}
	t.Fatalf("no row %s %s %g", dataset, problem, lambda)
	return 0
}

// TestSVRGReaches1e6: serial ProxSVRG with the default step rule (1/L,
// adapted at the snapshots) reaches phi*(1+1e-6), phi* from liblinear
// (testdata/reference.jsonl), on heart_scale l1 and l2, with the dense and
// the sparse step and with the metric — what plain SGD cannot.
func TestSVRGReaches1e6(t *testing.T) {
	for _, c := range []struct {
		problem string
		reg     Reg
	}{{"l1-logistic", Reg{Kind: RegL1, Lambda: 0.01}}, {"l2-logistic", Reg{Kind: RegL2, Lambda: 0.01}}} {
		p := heartProblem(t, c.reg)
		phiStar := refPhi(t, "heart_scale", c.problem, 0.01)
		st := p.Columns()
		for _, v := range []struct {
			name   string
			metric []float64
			sparse bool
		}{{"euclid", nil, false}, {"sparse", nil, true}, {"metric", st.Metric(0.25), false}} {
			L := p.EstimateLMetric(v.metric, 100, 1)
			cfg := SVRGConfig{Batch: 8, Alpha: 1 / (VRStepDiv * L), Metric: v.metric, Sparse: v.sparse, Seed: 1, Adapt: true}
			if v.sparse {
				cfg.Weights = st.SupportWeights(8)
			}
			s, err := NewSVRG(p, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for s.Epochs() < 100 && (p.Objective(s.X)-phiStar)/phiStar > 1e-6 {
				s.Step()
			}
			if rel := (p.Objective(s.X) - phiStar) / phiStar; rel > 1e-6 {
				t.Errorf("%s %s: rel. subopt %.3g after %.0f epochs", c.problem, v.name, rel, s.Epochs())
			} else {
				t.Logf("%s %s: 1e-6 after %.1f epochs (%d snapshots, %d rejected)", c.problem, v.name, s.Epochs(), s.Snaps, s.Reverts)
			}
		}
	}
}
