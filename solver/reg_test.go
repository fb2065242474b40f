package solver_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// regCases is one regularizer of every kind, with parameters that make the
// interesting branches (zeroed coordinates, clamped ones, shrunk groups)
// happen on random N(0, 1) inputs.
func regCases(d int) []struct {
	name string
	r    solver.Reg
} {
	return []struct {
		name string
		r    solver.Reg
	}{
		{"none", solver.Reg{Kind: solver.RegNone}},
		{"l1", solver.Reg{Kind: solver.RegL1, Lambda: 0.7}},
		{"l2", solver.Reg{Kind: solver.RegL2, Lambda: 0.7}},
		{"elastic", solver.Reg{Kind: solver.RegElastic, Lambda: 0.5, Lambda2: 0.3}},
		{"box", solver.Reg{Kind: solver.RegBox, Lo: -0.4, Hi: 0.8}},
		{"nonneg", solver.Reg{Kind: solver.RegNonneg}},
		{"ball", solver.Reg{Kind: solver.RegBall, Radius: 1.5}},
		{"l1box", solver.Reg{Kind: solver.RegL1Box, Lambda: 0.3, Lo: -0.4, Hi: 0.8}},
		{"group", solver.Reg{Kind: solver.RegGroup, Lambda: 0.6, Groups: solver.GroupsOfSize(d, 3)}},
		{"simplex", solver.Reg{Kind: solver.RegSimplex}},
	}
}

func randVec(rng *rand.Rand, d int, s float64) []float64 {
	v := make([]float64, d)
	for i := range v {
		v[i] = s * rng.NormFloat64()
	}
	return v
}

func sgn(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// closedForm is the textbook prox of alpha*Psi at v, written independently
// of the package (one coordinate or one group at a time); for the simplex it
// is the sort-based projection of Held, Wolfe and Crowder (1974).
func closedForm(r solver.Reg, v []float64, alpha float64) []float64 {
	p := append([]float64(nil), v...)
	switch r.Kind {
	case solver.RegL1:
		for i, x := range v {
			p[i] = sgn(x) * math.Max(math.Abs(x)-alpha*r.Lambda, 0)
		}
	case solver.RegL2:
		for i, x := range v {
			p[i] = x / (1 + alpha*r.Lambda)
		}
	case solver.RegElastic:
		for i, x := range v {
			p[i] = sgn(x) * math.Max(math.Abs(x)-alpha*r.Lambda, 0) / (1 + alpha*r.Lambda2)
		}
	case solver.RegBox:
		for i, x := range v {
			p[i] = math.Max(r.Lo, math.Min(r.Hi, x))
		}
	case solver.RegNonneg:
		for i, x := range v {
			p[i] = math.Max(0, x)
		}
	case solver.RegBall:
		n := math.Sqrt(dot(v, v))
		if n > r.Radius {
			for i, x := range v {
				p[i] = x * r.Radius / n
			}
		}
	case solver.RegL1Box:
		for i, x := range v {
			p[i] = math.Max(r.Lo, math.Min(r.Hi, sgn(x)*math.Max(math.Abs(x)-alpha*r.Lambda, 0)))
		}
	case solver.RegGroup:
		for k := 0; k+1 < len(r.Groups); k++ {
			g := v[r.Groups[k]:r.Groups[k+1]]
			n := math.Sqrt(dot(g, g))
			for i := r.Groups[k]; i < r.Groups[k+1]; i++ {
				p[i] = v[i] * math.Max(0, 1-alpha*r.Lambda/n)
			}
		}
	case solver.RegSimplex:
		u := append([]float64(nil), v...)
		sortDesc(u)
		var s, theta float64
		for j, x := range u {
			s += x
			if t := (s - 1) / float64(j+1); x-t > 0 {
				theta = t
			}
		}
		for i, x := range v {
			p[i] = math.Max(x-theta, 0)
		}
	}
	return p
}

func sortDesc(u []float64) {
	for i := 1; i < len(u); i++ {
		for j := i; j > 0 && u[j] > u[j-1]; j-- {
			u[j], u[j-1] = u[j-1], u[j]
		}
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// TestProxClosedForm checks Prox against the closed forms above on random
// inputs and step sizes.
func TestProxClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{1, 7, 40} {
		for _, tc := range regCases(d) {
			for trial := 0; trial < 50; trial++ {
				v := randVec(rng, d, 1+rng.Float64())
				alpha := rng.ExpFloat64()
				got := append([]float64(nil), v...)
				tc.r.Prox(got, alpha)
				want := closedForm(tc.r, v, alpha)
				if e := maxAbsDiff(got, want); e > 1e-12 {
					t.Fatalf("%s d=%d alpha=%g: Prox differs from the closed form by %g\nv=%v\ngot=%v\nwant=%v", tc.name, d, alpha, e, v, got, want)
				}
			}
		}
	}
}

// TestProxOptimality checks the characterization of the proximal point
// (e.g. Beck, First-Order Methods in Optimization, Thm 6.39):
//
//	p = prox_{alpha Psi}(v)  iff  p in dom Psi and
//	Psi(z) >= Psi(p) + (1/alpha) <v - p, z - p>  for every z,
//
// against random z (far ones and ones near p, projected into the domain so the
// inequality is not trivially true).
func TestProxOptimality(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d := 13
	for _, tc := range regCases(d) {
		for trial := 0; trial < 40; trial++ {
			v := randVec(rng, d, 2)
			alpha := 0.05 + rng.ExpFloat64()
			p := append([]float64(nil), v...)
			tc.r.Prox(p, alpha)
			psiP := tc.r.Value(p)
			if math.IsInf(psiP, 0) || math.IsNaN(psiP) {
				t.Fatalf("%s: prox point outside the domain: %v", tc.name, p)
			}
			for k := 0; k < 60; k++ {
				z := append([]float64(nil), p...)
				s := []float64{1, 1e-2, 1e-5}[k%3]
				for i := range z {
					z[i] += s * rng.NormFloat64()
				}
				tc.r.Prox(z, 1e-3) // a feasible nearby point for indicators
				psiZ := tc.r.Value(z)
				if math.IsInf(psiZ, 1) {
					continue
				}
				var lin float64
				for i := range z {
					lin += (v[i] - p[i]) * (z[i] - p[i])
				}
				if psiZ < psiP+lin/alpha-1e-10*(1+math.Abs(psiZ)) {
					t.Fatalf("%s: optimality violated: Psi(z)=%g < Psi(p)+<v-p,z-p>/alpha=%g", tc.name, psiZ, psiP+lin/alpha)
				}
			}
		}
	}
}

// TestProxSubgradient checks (v - p)/alpha in dPsi(p) coordinate- or
// group-wise, where the subdifferential has a closed form.
func TestProxSubgradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	d := 30
	const tol = 1e-12
	for trial := 0; trial < 30; trial++ {
		v := randVec(rng, d, 1.5)
		alpha := 0.1 + rng.Float64()

		l1 := solver.Reg{Kind: solver.RegL1, Lambda: 0.8}
		p := append([]float64(nil), v...)
		l1.Prox(p, alpha)
		for i := range p {
			u := (v[i] - p[i]) / alpha
			if p[i] != 0 && math.Abs(u-l1.Lambda*sgn(p[i])) > tol || p[i] == 0 && math.Abs(u) > l1.Lambda+tol {
				t.Fatalf("l1: (v-p)/alpha=%g not in lambda*d|p| at p=%g", u, p[i])
			}
		}

		el := solver.Reg{Kind: solver.RegElastic, Lambda: 0.4, Lambda2: 0.9}
		p = append(p[:0], v...)
		el.Prox(p, alpha)
		for i := range p {
			u := (v[i]-p[i])/alpha - el.Lambda2*p[i]
			if p[i] != 0 && math.Abs(u-el.Lambda*sgn(p[i])) > tol || p[i] == 0 && math.Abs(u) > el.Lambda+tol {
				t.Fatalf("elastic: residual %g not in lambda*d|p| at p=%g", u, p[i])
			}
		}

		gr := solver.Reg{Kind: solver.RegGroup, Lambda: 0.9, Groups: solver.GroupsOfSize(d, 4)}
		p = append(p[:0], v...)
		gr.Prox(p, alpha)
		for k := 0; k+1 < len(gr.Groups); k++ {
			lo, hi := gr.Groups[k], gr.Groups[k+1]
			n := math.Sqrt(dot(p[lo:hi], p[lo:hi]))
			var rn float64
			for i := lo; i < hi; i++ {
				u := (v[i] - p[i]) / alpha
				if n > 0 && math.Abs(u-gr.Lambda*p[i]/n) > tol {
					t.Fatalf("group %d: (v-p)/alpha=%g, want lambda p/||p||=%g", k, u, gr.Lambda*p[i]/n)
				}
				rn += u * u
			}
			if n == 0 && math.Sqrt(rn) > gr.Lambda+tol {
				t.Fatalf("group %d zeroed but ||v_g||/alpha=%g > lambda", k, math.Sqrt(rn))
			}
		}

		// Simplex projection (KKT): p = max(v - theta, 0) with one theta,
		// i.e. v_i - p_i = theta where p_i > 0 and v_i <= theta where p_i = 0.
		sx := solver.Reg{Kind: solver.RegSimplex}
		p = append(p[:0], v...)
		sx.Prox(p, alpha)
		theta := math.NaN()
		var sum float64
		for i := range p {
			sum += p[i]
			if p[i] > 0 {
				if math.IsNaN(theta) {
					theta = v[i] - p[i]
				} else if math.Abs(v[i]-p[i]-theta) > tol {
					t.Fatalf("simplex: v-p not constant on the support: %g vs %g", v[i]-p[i], theta)
				}
			}
		}
		for i := range p {
			if p[i] == 0 && v[i] > theta+tol {
				t.Fatalf("simplex: p_i=0 but v_i=%g > theta=%g", v[i], theta)
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Fatalf("simplex: projection sums to %v", sum)
		}
	}
}

// TestProxZeroAlphaIsIdentity: prox_{0 Psi} = I for every kind, and so is
// a step with alpha = 0.
func TestProxZeroAlphaIsIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	d := 12
	for _, tc := range regCases(d) {
		v := randVec(rng, d, 3)
		got := append([]float64(nil), v...)
		tc.r.Prox(got, 0)
		if e := maxAbsDiff(got, v); e != 0 {
			t.Errorf("%s: Prox(v, 0) changed v by %g", tc.name, e)
		}
		g := randVec(rng, d, 1)
		tc.r.Step(got, g, 0)
		if e := maxAbsDiff(got, v); e != 0 {
			t.Errorf("%s: Step(x, g, 0) changed x by %g", tc.name, e)
		}
		if tc.r.Separable() {
			for _, x := range v {
				if y := tc.r.ProxScalar(x, 0); y != x {
					t.Errorf("%s: ProxScalar(%g, 0) = %g", tc.name, x, y)
				}
			}
		}
	}
}

// TestProxScalarMatchesProx: the per-coordinate form of a separable prox is
// the same number as the vector form, bit for bit.
func TestProxScalarMatchesProx(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	d := 25
	for _, tc := range regCases(d) {
		if !tc.r.Separable() {
			continue
		}
		v := randVec(rng, d, 2)
		alpha := rng.ExpFloat64()
		p := append([]float64(nil), v...)
		tc.r.Prox(p, alpha)
		for i := range v {
			if s := tc.r.ProxScalar(v[i], alpha); s != p[i] {
				t.Fatalf("%s: ProxScalar(%g)=%g, Prox gives %g", tc.name, v[i], s, p[i])
			}
		}
	}
}

// TestStepEuclidean: for a Euclidean kind, Step(x, g, alpha) is
// Prox(x - alpha g, alpha).
func TestStepEuclidean(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	d := 9
	for _, tc := range regCases(d) {
		if tc.r.Mirror() {
			continue
		}
		x := randVec(rng, d, 1)
		tc.r.Prox(x, 1) // start feasible
		g := randVec(rng, d, 1)
		alpha := 0.3
		want := append([]float64(nil), x...)
		for i := range want {
			want[i] -= alpha * g[i]
		}
		tc.r.Prox(want, alpha)
		tc.r.Step(x, g, alpha)
		if e := maxAbsDiff(x, want); e != 0 {
			t.Errorf("%s: Step differs from Prox(x - alpha g) by %g", tc.name, e)
		}
	}
}

// TestEntropicStep checks the simplex mirror step against its closed form
// x+_i = x_i exp(-alpha g_i) / sum_j x_j exp(-alpha g_j), and its optimality
// condition: x+ minimizes <g,u> + (1/alpha) KL(u, x) over the simplex iff
// alpha g_i + log(x+_i / x_i) is the same constant for every i.
func TestEntropicStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	r := solver.Reg{Kind: solver.RegSimplex}
	for _, d := range []int{1, 2, 10, 100} {
		for trial := 0; trial < 20; trial++ {
			x := make([]float64, d)
			for i := range x {
				x[i] = rng.ExpFloat64()
			}
			r.Prox(x, 1) // onto the simplex
			for i := range x {
				x[i] = math.Max(x[i], 1e-3) // keep the support full
			}
			var s float64
			for _, v := range x {
				s += v
			}
			for i := range x {
				x[i] /= s
			}
			g := randVec(rng, d, 1)
			alpha := rng.ExpFloat64()
			want := make([]float64, d)
			var z float64
			for i := range x {
				want[i] = x[i] * math.Exp(-alpha*g[i])
				z += want[i]
			}
			for i := range want {
				want[i] /= z
			}
			got := append([]float64(nil), x...)
			r.Step(got, g, alpha)
			if e := maxAbsDiff(got, want); e > 1e-14 {
				t.Fatalf("d=%d: entropic step differs from the closed form by %g", d, e)
			}
			if v := r.Value(got); v != 0 {
				t.Fatalf("d=%d: entropic step left the simplex", d)
			}
			c := alpha*g[0] + math.Log(got[0]/x[0])
			for i := range got {
				if ci := alpha*g[i] + math.Log(got[i]/x[i]); math.Abs(ci-c) > 1e-10 {
					t.Fatalf("d=%d: optimality constant %g at %d, %g at 0", d, ci, i, c)
				}
			}
		}
	}
	// Max-shift: exponents far beyond float64's range still give a point of
	// the simplex, with all mass on the smallest gradient.
	x := []float64{0.25, 0.25, 0.25, 0.25}
	r.Step(x, []float64{-1e5, 3e5, -2e5, 0}, 10)
	if x[2] != 1 || x[0] != 0 || x[1] != 0 || x[3] != 0 {
		t.Fatalf("huge exponents: got %v, want [0 0 1 0]", x)
	}
	x = []float64{0.5, 0, 0.5}
	r.Step(x, []float64{1, -50, 1}, 1)
	if x[1] != 0 || math.Abs(x[0]-0.5) > 1e-15 {
		t.Fatalf("a zero coordinate must stay zero: %v", x)
	}
}

func TestProxDoesNotAllocate(t *testing.T) {
	d := 64
	v := make([]float64, d)
	g := make([]float64, d)
	for _, tc := range regCases(d) {
		tc.r.Init(v)
		if n := testing.AllocsPerRun(20, func() { tc.r.Step(v, g, 0.1) }); n != 0 {
			t.Errorf("%s: Step allocates %v times", tc.name, n)
		}
	}
}

func TestParseGroups(t *testing.T) {
	cases := []struct {
		spec string
		d    int
		want []int
		bad  bool
	}{
		{"3", 7, []int{0, 3, 6, 7}, false},
		{"7", 7, []int{0, 7}, false},
		{"10", 7, []int{0, 7}, false},
		{"2,3,2", 7, []int{0, 2, 5, 7}, false},
		{"2,3", 7, nil, true},
		{"0", 7, nil, true},
		{"a", 7, nil, true},
		{"2,-1,6", 7, nil, true},
	}
	for _, c := range cases {
		got, err := solver.ParseGroups(c.spec, c.d)
		if (err != nil) != c.bad {
			t.Errorf("ParseGroups(%q, %d) error %v, want error %v", c.spec, c.d, err, c.bad)
			continue
		}
		if !c.bad && (len(got) != len(c.want) || maxAbsDiff(f64(got), f64(c.want)) != 0) {
			t.Errorf("ParseGroups(%q, %d) = %v, want %v", c.spec, c.d, got, c.want)
		}
	}
}

func f64(a []int) []float64 {
	b := make([]float64, len(a))
	for i, v := range a {
		b[i] = float64(v)
	}
	return b
}

func TestRegValidate(t *testing.T) {
	bad := []solver.Reg{
		{Kind: solver.RegL1, Lambda: -1},
		{Kind: solver.RegL2, Lambda: math.NaN()},
		{Kind: solver.RegElastic, Lambda: 1, Lambda2: math.Inf(1)},
		{Kind: solver.RegBox, Lo: 1, Hi: 0},
		{Kind: solver.RegBall},
		{Kind: solver.RegL1Box, Lambda: 1, Lo: 2, Hi: 1},
		{Kind: solver.RegGroup, Lambda: 1, Groups: []int{0, 2}},
		{Kind: solver.RegGroup, Lambda: 1, Groups: []int{0, 3, 3, 5}},
		{Kind: 99},
	}
	for _, r := range bad {
		if r.Validate(5) == nil {
			t.Errorf("Validate accepted %+v", r)
		}
	}
	for _, tc := range regCases(5) {
		if err := tc.r.Validate(5); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestMu: the strong-convexity modulus of Psi, checked against the
// definition Psi(z) >= Psi(x) + <s, z - x> + (mu/2)||z - x||^2 with s the
// gradient of the smooth part, on random points (l2 and elastic away from 0).
func TestMu(t *testing.T) {
	want := map[solver.RegKind]float64{solver.RegL2: 0.7, solver.RegElastic: 0.3}
	for _, tc := range regCases(4) {
		if got := tc.r.Mu(); got != want[tc.r.Kind] {
			t.Errorf("%s: Mu=%g, want %g", tc.name, got, want[tc.r.Kind])
		}
	}
	r := solver.Reg{Kind: solver.RegL2, Lambda: 0.7}
	x, z := []float64{1, -2}, []float64{0.5, 3}
	diff := []float64{z[0] - x[0], z[1] - x[1]}
	lhs := r.Value(z)
	rhs := r.Value(x) + r.Lambda*dot(x, diff) + r.Mu()/2*dot(diff, diff)
	if math.Abs(lhs-rhs) > 1e-12 {
		t.Errorf("l2: quadratic identity fails: %g vs %g", lhs, rhs)
	}
}

// TestRegDrift: where Drift reports a uniform drift, Step with a zero
// gradient maps every coordinate by max(|x| c - alpha lambda1 c, 0) with its
// sign, c = 1/(1 + alpha lambda2); where Still holds, it leaves a feasible x
// where it is.
func TestRegDrift(t *testing.T) {
	const alpha = 0.3
	x0 := []float64{2, -0.01, 0, 0.5, -3}
	for _, r := range []solver.Reg{
		{Kind: solver.RegNone}, {Kind: solver.RegL1, Lambda: 0.2}, {Kind: solver.RegL2, Lambda: 0.7},
		{Kind: solver.RegElastic, Lambda: 0.1, Lambda2: 0.4}, {Kind: solver.RegNonneg}, {Kind: solver.RegBox, Lo: -5, Hi: 5},
		{Kind: solver.RegBall, Lambda: 10},
	} {
		x := append([]float64(nil), x0...)
		if r.Kind == solver.RegNonneg {
			for j := range x {
				x[j] = math.Abs(x[j])
			}
		}
		before := append([]float64(nil), x...)
		r.Step(x, make([]float64, len(x)), alpha)
		l1, l2, ok := r.Drift()
		if ok {
			c := 1 / (1 + alpha*l2)
			for j, v := range before {
				want := math.Copysign(math.Max(math.Abs(v)*c-alpha*l1*c, 0), v)
				if math.Abs(x[j]-want) > 1e-15 {
					t.Errorf("%v: drift of %v is %v, want %v", r.Kind, v, x[j], want)
				}
			}
		}
		if r.Still() {
			for j, v := range before {
				if x[j] != v {
					t.Errorf("%v: a zero gradient moved x_%d from %v to %v", r.Kind, j, v, x[j])
				}
			}
		}
		if want := r.Kind <= solver.RegElastic; ok != want {
			t.Errorf("%v: Drift ok = %v, want %v", r.Kind, ok, want)
		}
	}
}

// TestRegSparsifying: the regularizers Sparsifying names set small
// coordinates to exactly zero in Prox; the others leave them nonzero.
func TestRegSparsifying(t *testing.T) {
	for _, r := range []solver.Reg{
		{Kind: solver.RegNone}, {Kind: solver.RegL1, Lambda: 0.5}, {Kind: solver.RegL2, Lambda: 0.5},
		{Kind: solver.RegElastic, Lambda: 0.5, Lambda2: 0.1}, {Kind: solver.RegBox, Lo: -5, Hi: 5},
		{Kind: solver.RegL1Box, Lambda: 0.5, Lo: -5, Hi: 5},
	} {
		v := []float64{0.01, -0.02, 3}
		r.Prox(v, 1)
		if zero := v[0] == 0 && v[1] == 0; zero != r.Sparsifying() {
			t.Errorf("%v: prox %v, Sparsifying %v", r.Kind, v, r.Sparsifying())
		}
	}
}
