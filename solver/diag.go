package solver

import (
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/kernels"
)

// Diagonal metric. The step x+ = argmin_u <g,u> + Psi(u) + (1/alpha) D(u, x)
// with D(u, x) = 1/2 sum_j c_j (u_j - x_j)^2 is, for a separable Psi =
// sum_j psi_j, one scalar problem per coordinate,
//
//	x+_j = argmin_u g_j u + psi_j(u) + (c_j/(2 alpha)) (u - x_j)^2
//	     = prox_{(alpha/c_j) psi_j}(x_j - (alpha/c_j) g_j),
//
// i.e. the Euclidean prox with the per-coordinate step alpha/c_j: for l1 a
// soft-threshold of x_j - alpha g_j/c_j by alpha lambda/c_j. It minimizes the
// same phi as the Euclidean step (its fixed points are the minimizers of
// phi for any c > 0); only the geometry of the steps changes.

// ProxScalarW is the proximal point at v of (alpha/c) psi for one coordinate
// of a separable Psi: argmin_u psi(u) + (c/(2 alpha)) (u - v)^2. c must be
// > 0. It panics for non-separable kinds.
func (r Reg) ProxScalarW(v, alpha, c float64) float64 { return r.ProxScalar(v, alpha/c) }

// StepDiag overwrites x with the step of the diagonal metric c (len d, every
// entry > 0): x+_j = prox_{(alpha/c_j) psi}(x_j - (alpha/c_j) g_j) for the
// separable kinds. The non-separable kinds (ball, group, simplex) ignore c
// and take the Step of their own distance. g is only read.
func (r Reg) StepDiag(x, g []float64, alpha float64, c []float64) {
	if c == nil || !r.Separable() {
		r.Step(x, g, alpha)
		return
	}
	if len(x) != len(g) || len(c) != len(x) {
		panic("solver: StepDiag length mismatch")
	}
	if !(alpha >= 0) {
		panic("solver: StepDiag with negative or NaN alpha")
	}
	g, c = g[:len(x)], c[:len(x)]
	for j := range x {
		a := alpha / c[j]
		x[j] = r.ProxScalar(x[j]-a*g[j], a)
	}
}

// MetricMode chooses the distance of the proximal step.
type MetricMode uint8

const (
	// MetricAuto is MetricDiag when the columns' scales differ (see
	// ScalesDiffer) and the regularizer is separable, else MetricNone.
	MetricAuto MetricMode = iota
	// MetricNone is the Euclidean distance (c_j = 1).
	MetricNone
	// MetricDiag is the diagonal metric c_j = curvature * mean_i a_ij^2.
	MetricDiag
	numMetricModes
)

var metricNames = [numMetricModes]string{"auto", "none", "diag"}

// ParseMetricMode maps "auto", "none" or "diag" to a MetricMode.
func ParseMetricMode(s string) (MetricMode, error) {
	return parseName[MetricMode](metricNames[:], "metric", s)
}

func (m MetricMode) String() string { return nameOf(metricNames[:], "MetricMode", m) }

// ColumnStats are per-column sums over the rows of A: Sq[j] = sum_i a_ij^2
// and Count[j] = #{i: a_ij != 0}, with N the number of rows. Shards add up.
type ColumnStats struct {
	Sq, Count []float64
	N         int64
}

// AddColumnStats adds the column sums of a into sq and count (len a.Cols).
func AddColumnStats(a *kernels.CSR, sq, count []float64) {
	if len(sq) != a.Cols || len(count) != a.Cols {
		panic("solver: AddColumnStats length mismatch")
	}
	for k, j := range a.Indices {
		v := a.Data[k]
		if v != 0 {
			sq[j] += v * v
			count[j]++
		}
	}
}

// ScaleSpread is the ratio of the largest to the smallest column scale
// s_j = sqrt(Sq[j]/Count[j]) (the RMS of the column's nonzero entries) over
// the columns with at least SpreadMinCount nonzeros (or, when no column
// has that many, those with the most); 1 when fewer than two columns
// count. Column frequency does not count otherwise: binary features all
// have scale 1.
func (s ColumnStats) ScaleSpread() float64 {
	most := 0.0
	for _, c := range s.Count {
		most = math.Max(most, c)
	}
	minCount := math.Max(1, math.Min(SpreadMinCount, most))
	lo, hi := math.Inf(1), 0.0
	for j, q := range s.Sq {
		if s.Count[j] < minCount || q == 0 {
			continue
		}
		v := math.Sqrt(q / s.Count[j])
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if hi == 0 {
		return 1
	}
	return hi / lo
}

// MetricSpread is the ScaleSpread above which MetricAuto turns the diagonal
// metric on: the columns' RMS values differ by more than a factor 10 (the
// unscaled testdata spread over 10^9; scaled or binary data have at most 3).
const MetricSpread = 10

// SpreadMinCount is the fewest nonzeros a column needs to count in
// ScaleSpread: the RMS of one or two entries is one draw of the data's
// values, and on text-like data of 1M hashed features most columns have
// that few, so that N(0,1) values alone spread their RMS over 10^4 and
// turned the diagonal metric on, under which svrg's sparse step overshoots
// on the rare columns (c_j counts a column's entries over all n rows, a
// mini-batch holds them n/b times as densely): issue 10's d = 1M data, 15
// s, phi 0.67 with diag against 0.53 with none; at d = 16M phi rose from
// 0.69 to 1.49 in 8 epochs.
const SpreadMinCount = 10

// ScalesDiffer reports whether MetricAuto turns the metric on.
func (s ColumnStats) ScalesDiffer() bool { return s.ScaleSpread() > MetricSpread }

// Metric returns c_j = curv * Sq[j]/N, the diagonal of the curvature bound
// curv * A^T A / n (Loss.Curvature: 1/4 logistic, 1 squared, 2 sqhinge).
// A column without nonzeros gets the smallest positive c (its gradient
// entry is always 0; only the regularizer moves it).
func (s ColumnStats) Metric(curv float64) []float64 {
	c := make([]float64, len(s.Sq))
	lo := math.Inf(1)
	for j, q := range s.Sq {
		c[j] = curv * q / float64(s.N)
		if c[j] > 0 {
			lo = math.Min(lo, c[j])
		}
	}
	if math.IsInf(lo, 1) {
		lo = 1
	}
	for j := range c {
		if !(c[j] > 0) {
			c[j] = lo
		}
	}
	return c
}

// SupportWeights returns w_j = 1/p_j with p_j = 1 - (1 - Count[j]/N)^b, the
// probability that column j is in the support of a mini-batch of b rows
// drawn with replacement (a lower bound without replacement): the inverse
// frequencies of the sparse variance-reduced step (see VRStep.Sparse).
// Columns without nonzeros get 1.
func (s ColumnStats) SupportWeights(b int) []float64 {
	w := make([]float64, len(s.Count))
	for j, k := range s.Count {
		q := k / float64(s.N)
		p := -math.Expm1(float64(b) * math.Log1p(-math.Min(q, 1)))
		if q >= 1 {
			p = 1
		}
		w[j] = 1
		if p > 0 {
			w[j] = 1 / p
		}
	}
	return w
}

// Columns computes the ColumnStats of p's matrix, one entry per column of
// A (for a K-class problem: per feature, not per weight; see PerWeight).
func (p *Problem) Columns() ColumnStats {
	_, cols := p.A.Dims()
	s := ColumnStats{Sq: make([]float64, cols), Count: make([]float64, cols), N: int64(p.n)}
	if p.A.CSR != nil {
		AddColumnStats(p.A.CSR, s.Sq, s.Count)
		return s
	}
	for i := 0; i < p.n; i++ {
		for j, v := range p.A.Dense.Row(i) {
			if v != 0 {
				s.Sq[j] += v * v
				s.Count[j]++
			}
		}
	}
	return s
}

// PerWeight repeats each column's entry of v (a metric or weights over the
// columns) over its k weights of a flat K-class iterate (feature j's
// weights at j*k..j*k+k-1); k <= 1 returns v.
func PerWeight(v []float64, k int) []float64 {
	if v == nil || k <= 1 {
		return v
	}
	out := make([]float64, 0, len(v)*k)
	for _, c := range v {
		for range k {
			out = append(out, c)
		}
	}
	return out
}

// curvature is the bound on the loss's second derivative (K-class: the
// multinomial's).
func (p *Problem) curvature() float64 {
	if p.mp != nil {
		return p.mp.mc.Curvature()
	}
	return p.Loss.Curvature()
}

// EstimateLMetric is EstimateL in the metric c over the columns of A: the
// Lipschitz constant of grad f in the norm ||u||_c = sqrt(sum c_j u_j^2),
// curv * lambda_max(C^-1/2 A^T A C^-1/2 / n) (for a K-class problem with c
// repeated over each feature's weights, the same number). c nil is
// EstimateL. With c = Metric(curv) the diagonal of the scaled matrix is 1,
// so the result lies in [1, columns].
func (p *Problem) EstimateLMetric(c []float64, iters int, seed uint64) float64 {
	if c == nil {
		return p.EstimateL(iters, seed)
	}
	_, cols := p.A.Dims()
	if len(c) != cols {
		panic("solver: EstimateLMetric len(c) != columns")
	}
	return p.curvature() * p.powerMethod(c, iters, seed)
}

// checkMetric reports a metric that is not positive and finite.
func checkMetric(c []float64, d int) error {
	if c == nil {
		return nil
	}
	if len(c) != d {
		return fmt.Errorf("solver: metric of length %d, dimension %d", len(c), d)
	}
	for j, v := range c {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("solver: metric entry %d is %v, want finite > 0", j, v)
		}
	}
	return nil
}
