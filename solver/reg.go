package solver

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// RegKind names a regularizer Psi.
type RegKind uint8

// The regularizers. Their values, with lambda = Reg.Lambda, lambda2 =
// Reg.Lambda2, [lo, hi] = [Reg.Lo, Reg.Hi], r = Reg.Radius and I_C the
// indicator of a set C (0 on C, +Inf off it):
//
//	RegNone:    0
//	RegL1:      lambda ||x||_1
//	RegL2:      (lambda/2) ||x||_2^2
//	RegElastic: lambda ||x||_1 + (lambda2/2) ||x||_2^2
//	RegBox:     I_{[lo,hi]^d}(x)
//	RegNonneg:  I_{x >= 0}(x)
//	RegBall:    I_{||x||_2 <= r}(x)
//	RegL1Box:   lambda ||x||_1 + I_{[lo,hi]^d}(x)
//	RegGroup:   lambda sum_g ||x_g||_2 over contiguous groups (Reg.Groups)
//	RegSimplex: I_{x >= 0, sum x = 1}(x), stepped with the entropic mirror step
const (
	RegNone RegKind = iota
	RegL1
	RegL2
	RegElastic
	RegBox
	RegNonneg
	RegBall
	RegL1Box
	RegGroup
	RegSimplex
	numRegKinds
)

var regNames = [numRegKinds]string{"none", "l1", "l2", "elastic", "box", "nonneg", "ball", "l1box", "group", "simplex"}

// RegNames lists the accepted regularizer names, in RegKind order.
func RegNames() []string { return regNames[:] }

// ParseRegKind maps a name of RegNames to its RegKind.
func ParseRegKind(s string) (RegKind, error) {
	return parseName[RegKind](regNames[:], "regularizer", s)
}

func (k RegKind) String() string { return nameOf(regNames[:], "RegKind", k) }

// Params are the names of the Reg fields a regularizer of kind k needs
// (lowercase, as the command line's flags): l1, l2 and group need lambda,
// elastic lambda and lambda2, box lo and hi, l1box all three, ball radius.
func (k RegKind) Params() []string {
	switch k {
	case RegL1, RegL2, RegGroup:
		return []string{"lambda"}
	case RegElastic:
		return []string{"lambda", "lambda2"}
	case RegBox:
		return []string{"lo", "hi"}
	case RegL1Box:
		return []string{"lambda", "lo", "hi"}
	case RegBall:
		return []string{"radius"}
	}
	return nil
}

// parseName returns the index of s in names as a K, or an error listing the
// names.
func parseName[K ~uint8](names []string, what, s string) (K, error) {
	for k, n := range names {
		if n == s {
			return K(k), nil
		}
	}
	return 0, fmt.Errorf("solver: unknown %s %q (want one of %s)", what, s, strings.Join(names, ", "))
}

// nameOf returns names[k], or "Type(k)" for a k out of range.
func nameOf[K ~uint8](names []string, typ string, k K) string {
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("%s(%d)", typ, uint8(k))
}

// Reg is a convex regularizer Psi: its value, exact proximal operator,
// strong-convexity modulus and the step x+ = argmin_u <g,u> + Psi(u) +
// (1/alpha) D(u, x). Only the fields its Kind names are used (see the RegKind
// constants). A Reg is a small value; its methods only read it, so one Reg may
// be used by any number of goroutines. Groups is shared, not copied.
type Reg struct {
	Kind    RegKind
	Lambda  float64 // l1, l2, elastic (the L1 weight), l1box, group
	Lambda2 float64 // elastic: the weight of (lambda2/2)||x||^2
	Lo, Hi  float64 // box, l1box
	Radius  float64 // ball
	// Groups holds the group boundaries of RegGroup: group k is
	// x[Groups[k]:Groups[k+1]], Groups[0] = 0 and the last entry is the
	// dimension d. Build it with GroupsOfSize or ParseGroups.
	Groups []int
}

// Validate reports the first bad parameter of r for dimension d, or nil:
// negative or non-finite weights, lo > hi, a non-positive radius, groups that
// do not tile [0, d), an empty box or simplex.
func (r Reg) Validate(d int) error {
	finite := func(name string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("solver: %s regularizer needs a finite %s >= 0, got %v", r.Kind, name, v)
		}
		return nil
	}
	switch r.Kind {
	case RegNone, RegNonneg:
		return nil
	case RegL1, RegL2, RegGroup:
		if err := finite("lambda", r.Lambda); err != nil {
			return err
		}
		if r.Kind == RegGroup {
			return checkGroups(r.Groups, d)
		}
		return nil
	case RegElastic:
		if err := finite("lambda", r.Lambda); err != nil {
			return err
		}
		return finite("lambda2", r.Lambda2)
	case RegL1Box:
		if err := finite("lambda", r.Lambda); err != nil {
			return err
		}
		fallthrough
	case RegBox:
		if math.IsNaN(r.Lo) || math.IsNaN(r.Hi) || r.Lo > r.Hi {
			return fmt.Errorf("solver: %s regularizer needs lo <= hi, got [%v, %v]", r.Kind, r.Lo, r.Hi)
		}
		return nil
	case RegBall:
		if !(r.Radius > 0) || math.IsInf(r.Radius, 0) {
			return fmt.Errorf("solver: ball regularizer needs a finite radius > 0, got %v", r.Radius)
		}
		return nil
	case RegSimplex:
		if d < 1 {
			return fmt.Errorf("solver: simplex regularizer needs dimension >= 1")
		}
		return nil
	}
	return fmt.Errorf("solver: unknown regularizer kind %d", uint8(r.Kind))
}

// checkGroups reports whether g tiles [0, d) with non-empty groups.
func checkGroups(g []int, d int) error {
	if len(g) < 2 || g[0] != 0 || g[len(g)-1] != d {
		return fmt.Errorf("solver: group boundaries must run from 0 to the dimension %d", d)
	}
	for k := 1; k < len(g); k++ {
		if g[k] <= g[k-1] {
			return fmt.Errorf("solver: group %d is empty or reversed ([%d, %d))", k-1, g[k-1], g[k])
		}
	}
	return nil
}

// GroupsOfSize returns the boundaries of contiguous groups of size (the last
// group is shorter when size does not divide d). It panics if size < 1.
func GroupsOfSize(d, size int) []int {
	if size < 1 {
		panic("solver: GroupsOfSize size < 1")
	}
	b := make([]int, 0, (d+size-1)/size+1)
	for j := 0; j < d; j += size {
		b = append(b, j)
	}
	return append(b, d)
}

// ParseGroups reads a group spec for dimension d: either one integer G
// (contiguous groups of G features, the last one shorter if G does not divide
// d), or a comma-separated list of group sizes "s1,s2,...,sk" that must add
// up to d (group k is the next s_k features).
func ParseGroups(spec string, d int) ([]int, error) {
	parts := strings.Split(spec, ",")
	sizes := make([]int, len(parts))
	for k, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("solver: group spec %q: %q is not a positive integer", spec, p)
		}
		sizes[k] = v
	}
	if len(sizes) == 1 {
		return GroupsOfSize(d, sizes[0]), nil
	}
	b := make([]int, 1, len(sizes)+1)
	for _, s := range sizes {
		b = append(b, b[len(b)-1]+s)
	}
	if b[len(b)-1] != d {
		return nil, fmt.Errorf("solver: group sizes %q add up to %d, want the dimension %d", spec, b[len(b)-1], d)
	}
	return b, nil
}

// Mu is the strong-convexity modulus of Psi in the Euclidean norm: lambda for
// l2, lambda2 for elastic, 0 otherwise. (For the simplex, the KL distance of
// its mirror step is 1-strongly convex in the L1 norm; Mu still reports 0.)
func (r Reg) Mu() float64 {
	switch r.Kind {
	case RegL2:
		return r.Lambda
	case RegElastic:
		return r.Lambda2
	}
	return 0
}

// Separable reports whether Psi is a sum of functions of single coordinates,
// so that ProxScalar applies (none, l1, l2, elastic, box, nonneg, l1box).
func (r Reg) Separable() bool {
	switch r.Kind {
	case RegNone, RegL1, RegL2, RegElastic, RegBox, RegNonneg, RegL1Box:
		return true
	}
	return false
}

// Drift is what Step does to a coordinate whose gradient entry is zero,
// when that is the same map for every coordinate (none, l1, l2, elastic):
// with c = 1/(1 + alpha lambda2) the magnitude m = |x_j| becomes
// max(m c - alpha lambda1 c, 0), keeping the sign. ok is false for the
// other regularizers (their step couples coordinates or clips to bounds
// that differ per coordinate): an update that skips the coordinates
// outside a gradient's support (a lazy update) cannot be used with them.
func (r Reg) Drift() (lambda1, lambda2 float64, ok bool) {
	switch r.Kind {
	case RegNone:
		return 0, 0, true
	case RegL1:
		return r.Lambda, 0, true
	case RegL2:
		return 0, r.Lambda, true
	case RegElastic:
		return r.Lambda, r.Lambda2, true
	}
	return 0, 0, false
}

// Sparsifying reports whether Prox sets coordinates (or groups) to
// exactly zero: l1, elastic, l1box and group.
func (r Reg) Sparsifying() bool {
	switch r.Kind {
	case RegL1, RegElastic, RegL1Box, RegGroup:
		return true
	}
	return false
}

// Still reports whether Step leaves a coordinate whose gradient entry is
// zero where it is (none, box, nonneg, on a feasible x): only the
// gradient's support moves, so a copy of x is brought up to date by the
// coordinates of the supports since its version.
func (r Reg) Still() bool {
	switch r.Kind {
	case RegNone, RegBox, RegNonneg:
		return true
	}
	return false
}

// Mirror reports whether Step is a mirror step with a non-Euclidean distance
// (the simplex's KL divergence) rather than Prox(x - alpha g, alpha).
func (r Reg) Mirror() bool { return r.Kind == RegSimplex }

// feasTol is the relative slack of the ball's and the simplex's feasibility
// tests in Value: their projections are exact only up to rounding.
const feasTol = 1e-9

// Value returns Psi(x); +Inf when x is outside the domain of an indicator.
func (r Reg) Value(x []float64) float64 {
	switch r.Kind {
	case RegNone:
		return 0
	case RegL1:
		return r.Lambda * norm1(x)
	case RegL2:
		return 0.5 * r.Lambda * sumSq(x)
	case RegElastic:
		return r.Lambda*norm1(x) + 0.5*r.Lambda2*sumSq(x)
	case RegBox:
		return boxIndicator(x, r.Lo, r.Hi)
	case RegNonneg:
		return boxIndicator(x, 0, math.Inf(1))
	case RegBall:
		if math.Sqrt(sumSq(x)) <= r.Radius*(1+feasTol) {
			return 0
		}
		return math.Inf(1)
	case RegL1Box:
		return r.Lambda*norm1(x) + boxIndicator(x, r.Lo, r.Hi)
	case RegGroup:
		var s float64
		g := r.Groups
		for k := 0; k+1 < len(g); k++ {
			s += math.Sqrt(sumSq(x[g[k]:g[k+1]]))
		}
		return r.Lambda * s
	case RegSimplex:
		var s float64
		for _, v := range x {
			if v < 0 {
				return math.Inf(1)
			}
			s += v
		}
		if math.Abs(s-1) <= feasTol {
			return 0
		}
		return math.Inf(1)
	}
	panic("solver: Value of unknown regularizer")
}

// Init writes a feasible starting point into x: 0 projected onto the domain
// (clamped into [lo, hi] for box and l1box), and the uniform point 1/d for the
// simplex (the entropic step never leaves the support it starts on).
func (r Reg) Init(x []float64) {
	switch r.Kind {
	case RegBox, RegL1Box:
		z := math.Min(math.Max(0, r.Lo), r.Hi)
		for i := range x {
			x[i] = z
		}
	case RegSimplex:
		for i := range x {
			x[i] = 1 / float64(len(x))
		}
	default:
		clear(x)
	}
}

// Prox overwrites v with the proximal point of alpha*Psi at v:
//
//	prox(v) = argmin_u Psi(u) + (1/(2 alpha)) ||u - v||^2
//
// in O(d) without allocating (the Euclidean simplex projection makes a few
// O(d) passes, at most d in the worst case). With alpha = 0 it leaves v
// unchanged, for indicators too (0*Psi is read as 0). It panics if alpha is
// negative or NaN, or if len(v) does not match Groups for RegGroup.
func (r Reg) Prox(v []float64, alpha float64) {
	if !(alpha >= 0) {
		panic("solver: Prox with negative or NaN alpha")
	}
	if alpha == 0 {
		return
	}
	switch r.Kind {
	case RegNone:
	case RegL1:
		softThreshold(v, alpha*r.Lambda)
	case RegL2:
		scale(v, 1/(1+alpha*r.Lambda))
	case RegElastic:
		softThreshold(v, alpha*r.Lambda)
		scale(v, 1/(1+alpha*r.Lambda2))
	case RegBox:
		clamp(v, r.Lo, r.Hi)
	case RegNonneg:
		for i, x := range v {
			v[i] = max(x, 0)
		}
	case RegBall:
		if n := math.Sqrt(sumSq(v)); n > r.Radius {
			scale(v, r.Radius/n)
		}
	case RegL1Box:
		// In one dimension the prox of a convex function plus the indicator of
		// an interval is the clamp of the function's prox.
		softThreshold(v, alpha*r.Lambda)
		clamp(v, r.Lo, r.Hi)
	case RegGroup:
		g := r.Groups
		if len(g) < 2 || g[len(g)-1] != len(v) {
			panic("solver: Prox group boundaries do not match len(v)")
		}
		thr := alpha * r.Lambda
		for k := 0; k+1 < len(g); k++ {
			blockShrink(v[g[k]:g[k+1]], thr)
		}
	case RegSimplex:
		projectSimplex(v)
	default:
		panic("solver: Prox of unknown regularizer")
	}
}

// ProxScalar returns the proximal point of alpha*psi at v for one coordinate
// of a separable Psi = sum_i psi(x_i) (see Separable): the same number Prox
// writes at that coordinate. It exists so that lazy O(nnz) updates can bring
// single coordinates up to date. It panics for non-separable kinds.
func (r Reg) ProxScalar(v, alpha float64) float64 {
	if !(alpha >= 0) {
		panic("solver: ProxScalar with negative or NaN alpha")
	}
	if alpha == 0 {
		return v
	}
	switch r.Kind {
	case RegNone:
		return v
	case RegL1:
		return soft(v, alpha*r.Lambda)
	case RegL2:
		return v * (1 / (1 + alpha*r.Lambda))
	case RegElastic:
		return soft(v, alpha*r.Lambda) * (1 / (1 + alpha*r.Lambda2))
	case RegBox:
		return min(max(v, r.Lo), r.Hi)
	case RegNonneg:
		return max(v, 0)
	case RegL1Box:
		return min(max(soft(v, alpha*r.Lambda), r.Lo), r.Hi)
	}
	panic("solver: ProxScalar of a non-separable regularizer " + r.Kind.String())
}

// Step overwrites x with the regularized step from x along the gradient g:
//
//	x+ = argmin_u <g, u> + Psi(u) + (1/alpha) D(u, x)
//
// For every kind but the simplex D(u, x) = ||u - x||^2 / 2 and the step is
// Prox(x - alpha g, alpha). For the simplex D is the KL divergence
// sum_i u_i log(u_i / x_i) and the step is the multiplicative update
// x+_i = x_i exp(-alpha g_i) / sum_j x_j exp(-alpha g_j), computed with the
// largest exponent shifted to 0 so that nothing overflows; coordinates with
// x_i = 0 stay 0. x must then lie on the simplex. Step does not allocate;
// g is only read. It panics on length mismatch or a negative alpha.
func (r Reg) Step(x, g []float64, alpha float64) {
	if len(x) != len(g) {
		panic("solver: Step len(x) != len(g)")
	}
	if !(alpha >= 0) {
		panic("solver: Step with negative or NaN alpha")
	}
	if alpha == 0 {
		return
	}
	if r.Kind == RegSimplex {
		entropicStep(x, g, alpha)
		return
	}
	g = g[:len(x)]
	// The common separable kinds in one pass: the same arithmetic as the
	// gradient step followed by Prox, so the result is identical.
	switch r.Kind {
	case RegL1:
		k := alpha * r.Lambda
		for i := range x {
			v := x[i] - alpha*g[i]
			x[i] = v - max(-k, min(v, k))
		}
		return
	case RegL2:
		c := 1 / (1 + alpha*r.Lambda)
		for i := range x {
			x[i] = (x[i] - alpha*g[i]) * c
		}
		return
	case RegElastic:
		k, c := alpha*r.Lambda, 1/(1+alpha*r.Lambda2)
		for i := range x {
			v := x[i] - alpha*g[i]
			x[i] = (v - max(-k, min(v, k))) * c
		}
		return
	}
	for i := range x {
		x[i] -= alpha * g[i]
	}
	r.Prox(x, alpha)
}

// entropicStep is the KL mirror step on the simplex (see Step).
func entropicStep(x, g []float64, alpha float64) {
	g = g[:len(x)]
	m := math.Inf(-1)
	for i, v := range x {
		if v > 0 {
			m = math.Max(m, math.Log(v)-alpha*g[i])
		}
	}
	if math.IsInf(m, -1) {
		panic("solver: entropic step from a point with no positive entry")
	}
	var s float64
	for i, v := range x {
		if v > 0 {
			x[i] = math.Exp(math.Log(v) - alpha*g[i] - m)
			s += x[i]
		}
	}
	scale(x, 1/s)
}

// soft is the scalar soft-threshold sign(v) max(|v| - k, 0), written as
// v - clamp(v, -k, k): exact (v - v = 0 inside, v -+ k outside) and free of
// branches that random signs would mispredict.
func soft(v, k float64) float64 { return v - max(-k, min(v, k)) }

// softThreshold applies soft(., k) to every entry of v:
//
//	for i := range v { v[i] = sign(v[i]) * max(|v[i]| - k, 0) }
func softThreshold(v []float64, k float64) {
	for i, x := range v {
		v[i] = x - max(-k, min(x, k))
	}
}

// blockShrink is the prox of thr*||.||_2: v *= max(0, 1 - thr/||v||).
func blockShrink(v []float64, thr float64) {
	n := math.Sqrt(sumSq(v))
	if n <= thr {
		clear(v)
		return
	}
	scale(v, 1-thr/n)
}

// projectSimplex overwrites v with its Euclidean projection onto
// {x >= 0, sum x = 1}: x_i = max(v_i - theta, 0) with theta the root of
// sum_i max(v_i - theta, 0) = 1, found by Michelot's (1986) fixed-point
// iteration theta <- (sum_{v_i > theta} v_i - 1) / #{v_i > theta}, which
// starts below the root, increases, and stops when the active set stops
// shrinking (at most d passes, usually a handful).
func projectSimplex(v []float64) {
	var s float64
	for _, x := range v {
		s += x
	}
	k := len(v)
	theta := (s - 1) / float64(k)
	for range len(v) + 1 { // the bound only matters for NaN input

		s, n := 0.0, 0
		for _, x := range v {
			if x > theta {
				s += x
				n++
			}
		}
		theta = (s - 1) / float64(n)
		if n == k {
			break
		}
		k = n
	}
	for i, x := range v {
		v[i] = math.Max(x-theta, 0)
	}
}

func clamp(v []float64, lo, hi float64) {
	for i, x := range v {
		v[i] = min(max(x, lo), hi)
	}
}

func scale(v []float64, c float64) {
	for i := range v {
		v[i] *= c
	}
}

func norm1(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += math.Abs(v)
	}
	return s
}

func sumSq(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	return s
}

func boxIndicator(x []float64, lo, hi float64) float64 {
	for _, v := range x {
		if v < lo || v > hi {
			return math.Inf(1)
		}
	}
	return 0
}
