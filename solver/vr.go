package solver

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// Method is the training algorithm.
type Method uint8

const (
	// MethodSGD is the paper's asynchronous (or serial) proximal SGD: each
	// update is a step along one mini-batch gradient.
	MethodSGD Method = iota
	// MethodSVRG adds the variance reduction of ProxSVRG (Xiao and Zhang
	// 2014): each update steps along g_B(x) - g_B(x~) + mu~, where x~ is a
	// snapshot taken every epoch-equivalent of updates and mu~ = grad f(x~)
	// its full gradient (see VRStep).
	MethodSVRG
	numMethods
)

var methodNames = [numMethods]string{"sgd", "svrg"}

// MethodNames lists the accepted method names.
func MethodNames() []string { return methodNames[:] }

// ParseMethod maps "sgd" or "svrg" to a Method.
func ParseMethod(s string) (Method, error) { return parseName[Method](methodNames[:], "method", s) }

func (m Method) String() string { return nameOf(methodNames[:], "Method", m) }

// VRStepDiv is the default constant step of MethodSVRG in units of 1/L
// (L in the metric): alpha = 1/(VRStepDiv L). Xiao and Zhang's guarantee
// needs alpha < 1/(4 L_Q) with L_Q the largest Lipschitz constant of a
// component; measured on the testdata, 1/(2L) with the full-data L is
// stable with up to 4 workers and twice as fast as 1/(4L).
const VRStepDiv = 1

// VRStep is the variance-reduced proximal step, shared by the master and the
// serial solver. With diff = g_B(x) - g_B(x~) (the worker's mini-batch
// gradient at x minus the same batch's at the snapshot x~), Mu = grad f(x~)
// and the metric C (nil: Euclidean),
//
//	Dense:  x_j <- prox_{(alpha/c_j) psi}(x_j - (alpha/c_j)(s diff_j + mu_j))   for every j
//	Sparse: x_j <- prox_{(alpha w_j/c_j) psi}(x_j - (alpha/c_j)(s diff_j + w_j mu_j))  for j in supp(diff)
//
// Dense is ProxSVRG's step (O(d)). Sparse is the sparse variant of ProxASAGA
// (Pedregosa, Leblond and Lacoste-Julien 2017): the dense mu and Psi are
// applied only on the batch's support, reweighted by w_j = 1/P(j in the
// support) (ColumnStats.SupportWeights), so that their expectation over the
// batch is mu and Psi again; it costs O(nnz(diff)). Both have the minimizers
// of phi as fixed points for any positive c and w (at x = x~ = x*, diff = 0
// and -mu in dPsi(x*)). Sparse needs a separable Psi; Dense takes the
// Euclidean Step of the others. Not safe for concurrent use (Dense of a
// non-separable Psi uses a scratch vector).
//
// Pack lays Sparse's per-coordinate constants side by side: while it
// holds, Sparse reads one record per coordinate instead of C, W and Mu
// (see Pack). Hold moves x into the records too, so that the step touches
// one cache line per coordinate (see Hold).
type VRStep struct {
	Reg Reg
	C   []float64 // the metric (nil: c_j = 1)
	W   []float64 // Sparse: the support weights (nil: 1)
	Mu  []float64 // the full gradient at the snapshot (len d)
	buf []float64

	pk     []vrCoord // Pack's records (nil: Sparse reads C, W and Mu)
	pkMode packMode  // Sparse's loop over them
	held   bool      // pk[j].x is x_j (Hold)
	// The inline proxes of pkMode need every prox step alpha w_j / c_j
	// > 0 (ProxScalar's own path at 0): they are known to be for every
	// step >= okAlpha and known not to be for every step <= badAlpha
	// (a smaller step rounds each a_j w_j no higher).
	okAlpha, badAlpha float64
}

// vrCoord is coordinate j's record: x_j while Hold holds it, and the
// constants of the sparse step: c_j, w_j (1 without C or W) and wmu =
// w_j mu_j, rounded as Sparse's plain loop rounds it. None depends on the
// step: the packed loop computes a = alpha / c_j and a w_j as the plain
// loop does (the same bits; alpha / 1 is alpha and a * 1 is a), so that a
// new step (VRRate changes it at nearly every snapshot) needs no new
// records and a new mu~ rewrites only wmu, on its support (PackMuOn).
// 32 bytes, 32-byte aligned (newRecords): one record is half of a 64-byte
// cache line, never two lines.
type vrCoord struct{ x, c, w, wmu float64 }

// newRecords allocates d records starting on a 32-byte boundary. Go's
// allocator aligns large objects to pages but small size classes (48,
// 80, ... bytes) only to 16: one spare record leaves room to shift.
func newRecords(d int) []vrCoord {
	buf := make([]vrCoord, d+1)
	p := unsafe.Pointer(&buf[0])
	if off := uintptr(p) % 32; off != 0 {
		return unsafe.Slice((*vrCoord)(unsafe.Add(p, 32-off)), d)
	}
	return buf[:d:d]
}

// packMode selects the packed loop: the common separable kinds get the
// prox inline (the arithmetic of Reg.ProxScalar, without its switch per
// coordinate); packGeneric calls ProxScalar.
type packMode uint8

const (
	packGeneric packMode = iota
	packNone
	packL1
	packL2
	packElastic
)

// Pack lays what Sparse reads per coordinate from C, W and Mu out in one
// array of records (32 bytes per coordinate, allocated once): on a large
// d the three or four arrays are as many cache misses per coordinate, the
// record one. Sparse then uses the records at any step, with the same
// bits as the plain loop. The caller must call Pack again after changing
// Reg, C or W, and Pack or PackMuOn after changing Mu, or Unpack: the
// records are a copy. A held x stays held. O(d): one pass over C, W, Mu
// and the records (at d = 2^24, 512 MB of records; see BenchmarkVRPack).
func (v *VRStep) Pack() {
	d := len(v.Mu)
	if len(v.pk) != d {
		if v.held {
			panic("solver: VRStep.Pack of another dimension while x is held")
		}
		v.pk = newRecords(d)
	}
	pk, mu := v.pk, v.Mu[:d]
	ok := true // every c_j and w_j > 0: the inline proxes may apply
	if v.C != nil && v.W != nil {
		// The master's case, without the two tests per coordinate.
		c, w := v.C[:d], v.W[:d]
		for j := range pk {
			e := &pk[j]
			e.c, e.w = c[j], w[j]
			e.wmu = w[j] * mu[j]
			if !(e.c > 0 && e.w > 0) {
				ok = false
			}
		}
	} else {
		for j := range pk {
			e := &pk[j]
			e.c, e.w = 1, 1
			if v.C != nil {
				e.c = v.C[j]
			}
			if v.W != nil {
				e.w = v.W[j]
			}
			e.wmu = e.w * mu[j]
			ok = ok && e.c > 0 && e.w > 0
		}
	}
	v.okAlpha, v.badAlpha = math.Inf(1), 0
	v.pkMode = packGeneric
	if ok {
		switch v.Reg.Kind {
		case RegNone:
			v.pkMode = packNone
		case RegL1:
			v.pkMode = packL1
		case RegL2:
			v.pkMode = packL2
		case RegElastic:
			v.pkMode = packElastic
		}
	}
}

// PackMuOn rewrites the records' w_j mu_j on idx after Mu changed there
// only (for the master: the union of the old and the new mu~'s supports),
// O(len(idx)) instead of Pack's O(d).
func (v *VRStep) PackMuOn(idx []int32) {
	if len(v.pk) != len(v.Mu) {
		panic("solver: VRStep.PackMuOn without records of len(Mu)")
	}
	pk, mu := v.pk, v.Mu
	for _, j := range idx {
		e := &pk[j]
		e.wmu = e.w * mu[j]
	}
}

// mode is the packed loop for the step alpha: pkMode when every prox step
// alpha w_j / c_j is > 0, else the generic loop (ProxScalar). The check is
// O(d), made only for a step below every one checked before.
func (v *VRStep) mode(alpha float64) packMode {
	switch {
	case v.pkMode == packGeneric || alpha >= v.okAlpha:
		return v.pkMode
	case alpha <= v.badAlpha:
		return packGeneric
	}
	for j := range v.pk {
		e := &v.pk[j]
		if !(alpha/e.c*e.w > 0) {
			v.badAlpha = alpha
			return packGeneric
		}
	}
	v.okAlpha = alpha
	return v.pkMode
}

// Unpack drops Pack's records (Sparse reads C, W and Mu again), and with
// them a held x: Release it first to keep it.
func (v *VRStep) Unpack() { v.pk, v.held = nil, false }

// Hold moves x (len d) into Pack's records: until Release, x_j lives in
// coordinate j's record, beside the constants Sparse reads with it, and
// Sparse and SparseMu read and write it there (their x must be nil);
// read it with X, AppendX or CopyX, and overwrite it with SetX. The
// caller's x is not touched until Release. Dense needs x dense: Release
// first. Hold panics without Pack. O(d).
func (v *VRStep) Hold(x []float64) {
	if v.pk == nil || len(x) != len(v.pk) {
		panic("solver: VRStep.Hold without records of len(x)")
	}
	v.SetX(x)
	v.held = true
}

// Held reports whether the records hold x.
func (v *VRStep) Held() bool { return v.held }

// Release ends Hold, copying the held x into x (len d). O(d).
func (v *VRStep) Release(x []float64) {
	v.CopyX(x)
	v.held = false
}

// X is the held x_j.
func (v *VRStep) X(j int) float64 { return v.pk[j].x }

// AppendX appends the held x on idx to dst.
func (v *VRStep) AppendX(dst []float64, idx []int32) []float64 {
	pk := v.pk
	for _, j := range idx {
		dst = append(dst, pk[j].x)
	}
	return dst
}

// CopyX copies the held x into dst (len d); it stays held. O(d).
func (v *VRStep) CopyX(dst []float64) {
	pk := v.pk
	dst = dst[:len(pk)]
	for j := range pk {
		dst[j] = pk[j].x
	}
}

// SetX overwrites the records' x with src (len d). O(d).
func (v *VRStep) SetX(src []float64) {
	pk := v.pk
	src = src[:len(pk)]
	for j := range pk {
		pk[j].x = src[j]
	}
}

// CopyXOn copies the held x on idx into dst (len d); it stays held.
func (v *VRStep) CopyXOn(dst []float64, idx []int32) {
	pk := v.pk
	for _, j := range idx {
		dst[j] = pk[j].x
	}
}

// SetXOn overwrites the records' x on idx with src's entries there.
func (v *VRStep) SetXOn(src []float64, idx []int32) {
	pk := v.pk
	for _, j := range idx {
		pk[j].x = src[j]
	}
}

// Dense applies the dense step with the gradient difference diff (len d)
// scaled by s.
func (v *VRStep) Dense(x, diff []float64, alpha, s float64) {
	if len(diff) != len(x) || len(v.Mu) != len(x) {
		panic("solver: VRStep.Dense length mismatch")
	}
	if v.held {
		panic("solver: VRStep.Dense while x is held")
	}
	mu := v.Mu[:len(x)]
	diff = diff[:len(x)]
	if !v.Reg.Separable() {
		if v.buf == nil {
			v.buf = make([]float64, len(x))
		}
		for j := range v.buf {
			v.buf[j] = s*diff[j] + mu[j]
		}
		v.Reg.Step(x, v.buf, alpha)
		return
	}
	if v.C == nil {
		for j := range x {
			x[j] = v.Reg.ProxScalar(x[j]-alpha*(s*diff[j]+mu[j]), alpha)
		}
		return
	}
	c := v.C[:len(x)]
	for j := range x {
		a := alpha / c[j]
		x[j] = v.Reg.ProxScalar(x[j]-a*(s*diff[j]+mu[j]), a)
	}
}

// Sparse applies the sparse step on the support idx (strictly increasing)
// of the difference val scaled by s. The regularizer must be separable.
// While x is held (Hold), x must be nil.
func (v *VRStep) Sparse(x []float64, idx []int32, val []float64, alpha, s float64) {
	if len(idx) != len(val) {
		panic("solver: VRStep.Sparse len(idx) != len(val)")
	}
	val = val[:len(idx)]
	if v.pk != nil {
		if v.held {
			v.sparseHeld(x, idx, val, alpha, s, v.mode(alpha))
		} else {
			v.sparsePacked(x, idx, val, alpha, s, v.mode(alpha))
		}
		return
	}
	v.SparseMu(x, v.Mu, idx, val, alpha, s)
}

// SparseMu is Sparse's plain loop with the full gradient mu in place of
// Mu (a previous snapshot's, whose records are not packed). While x is
// held, x must be nil: x_j is read and written in the records.
func (v *VRStep) SparseMu(x, mu []float64, idx []int32, val []float64, alpha, s float64) {
	if len(idx) != len(val) {
		panic("solver: VRStep.SparseMu len(idx) != len(val)")
	}
	if v.held != (x == nil) {
		panic("solver: VRStep.SparseMu: x must be nil exactly while it is held")
	}
	val = val[:len(idx)]
	for k, j := range idx {
		a, w := alpha, 1.0
		if v.C != nil {
			a /= v.C[j]
		}
		if v.W != nil {
			w = v.W[j]
		}
		var xp *float64
		if v.held {
			xp = &v.pk[j].x
		} else {
			xp = &x[j]
		}
		*xp = v.Reg.ProxScalar(*xp-a*(s*val[k]+w*mu[j]), a*w)
	}
}

// sparsePacked is Sparse on Pack's records: the same expressions, with
// c_j, w_j and w_j mu_j read from one record and x_j from x.
func (v *VRStep) sparsePacked(x []float64, idx []int32, val []float64, alpha, s float64, mode packMode) {
	pk := v.pk
	val = val[:len(idx)]
	switch lam, lam2 := v.Reg.Lambda, v.Reg.Lambda2; mode {
	case packL1:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			x[j] = soft(x[j]-a*(s*val[k]+e.wmu), a*e.w*lam)
		}
	case packL2:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			x[j] = (x[j] - a*(s*val[k]+e.wmu)) * (1 / (1 + a*e.w*lam))
		}
	case packElastic:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			aw := a * e.w
			x[j] = soft(x[j]-a*(s*val[k]+e.wmu), aw*lam) * (1 / (1 + aw*lam2))
		}
	case packNone:
		for k, j := range idx {
			e := &pk[j]
			x[j] -= alpha / e.c * (s*val[k] + e.wmu)
		}
	default:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			x[j] = v.Reg.ProxScalar(x[j]-a*(s*val[k]+e.wmu), a*e.w)
		}
	}
}

// sparseHeld is sparsePacked with x held in the records: one record, one
// cache line, per coordinate.
func (v *VRStep) sparseHeld(x []float64, idx []int32, val []float64, alpha, s float64, mode packMode) {
	if x != nil {
		panic("solver: VRStep.Sparse: x is held, pass nil")
	}
	pk := v.pk
	val = val[:len(idx)]
	switch lam, lam2 := v.Reg.Lambda, v.Reg.Lambda2; mode {
	case packL1:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			e.x = soft(e.x-a*(s*val[k]+e.wmu), a*e.w*lam)
		}
	case packL2:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			e.x = (e.x - a*(s*val[k]+e.wmu)) * (1 / (1 + a*e.w*lam))
		}
	case packElastic:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			aw := a * e.w
			e.x = soft(e.x-a*(s*val[k]+e.wmu), aw*lam) * (1 / (1 + aw*lam2))
		}
	case packNone:
		for k, j := range idx {
			e := &pk[j]
			e.x -= alpha / e.c * (s*val[k] + e.wmu)
		}
	default:
		for k, j := range idx {
			e := &pk[j]
			a := alpha / e.c
			e.x = v.Reg.ProxScalar(e.x-a*(s*val[k]+e.wmu), a*e.w)
		}
	}
}

// SVRGConfig configures serial variance-reduced proximal SGD.
type SVRGConfig struct {
	Batch  int       // b >= 1
	Alpha  float64   // the constant step (> 0)
	Metric []float64 // the diagonal metric c (nil: Euclidean)
	// Every is the number of updates between snapshots (0: ceil(n/b), one
	// epoch of mini-batches).
	Every int64
	// Sparse uses VRStep.Sparse with Weights (separable regularizers only).
	Sparse  bool
	Weights []float64
	Seed    uint64
	// Adapt adapts the step at every snapshot (VRRate).
	Adapt bool
}

// SVRG is serial ProxSVRG (with the diagonal metric and the sparse step of
// VRStep), the P = 1 run of MethodSVRG: every Every updates the snapshot x~
// = x and mu~ = grad f(x~) (one pass over the data, counted in Samples);
// each update samples a mini-batch as SGD does (a fresh permutation per
// epoch) and applies VRStep with diff = g_B(x) - g_B(x~). The output is the
// last iterate. Not safe for concurrent use.
type SVRG struct {
	p       *Problem
	cfg     SVRGConfig
	X       []float64 // the current iterate
	Snap    []float64 // x~
	T       int64     // updates applied
	Samples int64     // rows whose gradient was computed (mini-batches and full passes)
	Snaps   int64     // snapshots taken
	Reverts int64     // snapshots rejected by the step adaptation

	step     VRStep
	smp      *Sampler // NextInEpoch, as SGD
	n        int
	g1, g2   []float64
	mark     []bool
	idx      []int32
	val      []float64
	every    int64
	nextSnap int64
	rate     *VRRate
	alpha    float64
}

// NewSVRG starts SVRG on p from x0 (copied; nil means Reg.Init).
func NewSVRG(p *Problem, cfg SVRGConfig, x0 []float64) (*SVRG, error) {
	n, d := p.Dims()
	switch {
	case cfg.Batch < 1:
		return nil, fmt.Errorf("solver: batch size must be >= 1, got %d", cfg.Batch)
	case !(cfg.Alpha > 0) || math.IsInf(cfg.Alpha, 0):
		return nil, fmt.Errorf("solver: svrg needs a finite step > 0, got %v", cfg.Alpha)
	case cfg.Every < 0:
		return nil, fmt.Errorf("solver: svrg snapshot interval %d < 0", cfg.Every)
	case cfg.Sparse && !p.Reg.Separable():
		return nil, fmt.Errorf("solver: the sparse svrg step needs a separable regularizer, not %s", p.Reg.Kind)
	}
	if err := checkMetric(cfg.Metric, d); err != nil {
		return nil, err
	}
	s := &SVRG{p: p, cfg: cfg, X: make([]float64, d), Snap: make([]float64, d),
		smp: NewSampler(n, cfg.Seed), n: n,
		g1: make([]float64, d), g2: make([]float64, d)}
	s.step = VRStep{Reg: p.Reg, C: cfg.Metric, Mu: make([]float64, d)}
	if cfg.Sparse {
		s.step.W = cfg.Weights
		s.mark = make([]bool, d)
	}
	if err := p.start(s.X, x0); err != nil {
		return nil, err
	}
	s.alpha = cfg.Alpha
	if cfg.Adapt {
		s.rate = NewVRRate(cfg.Alpha)
	}
	s.every = cfg.Every
	if s.every == 0 {
		s.every = int64((n + cfg.Batch - 1) / cfg.Batch)
	}
	return s, nil
}

// snapshot sets x~ = x and mu~ = grad f(x~); it returns f(x~).
func (s *SVRG) snapshot() float64 {
	copy(s.Snap, s.X)
	f := s.p.Smooth(s.Snap, s.step.Mu)
	n, _ := s.p.Dims()
	s.Samples += int64(n)
	s.Snaps++
	s.nextSnap = s.T + s.every
	if s.rate != nil {
		var revert bool
		s.alpha, revert = s.rate.Snapshot(s.Snap, s.step.Mu, f+s.p.Reg.Value(s.Snap))
		if revert {
			copy(s.X, s.rate.PrevX)
			copy(s.Snap, s.rate.PrevX)
			copy(s.step.Mu, s.rate.PrevMu)
			s.Reverts++
		}
	}
	s.pack()
	return f
}

// svrgPack lets the sparse step run on VRStep.Pack's records (false in
// tests: the plain loop, which must give the same bits).
var svrgPack = true

// pack lays the sparse step out (VRStep.Pack) after mu~ changed (the
// records do not depend on the step).
func (s *SVRG) pack() {
	if s.cfg.Sparse && svrgPack {
		s.step.Pack()
	}
}

// Step applies one update (taking a snapshot first when one is due) and
// returns the mini-batch loss at x.
func (s *SVRG) Step() float64 {
	if s.T == s.nextSnap {
		s.snapshot()
	}
	rows := s.smp.NextInEpoch(s.cfg.Batch)
	loss := s.p.GradBatch(rows, s.X, s.g1)
	if s.rate != nil && s.rate.Exploded(loss) {
		// The step is too large: back to the snapshot, a smaller step,
		// a new cycle.
		s.alpha = s.rate.Reject()
		copy(s.X, s.Snap)
		s.Reverts++
		s.nextSnap = s.T + s.every
		s.Samples += int64(len(rows))
		s.T++
		return s.rate.PrevPhi
	}
	s.p.GradBatch(rows, s.Snap, s.g2)
	s.Samples += int64(len(rows))
	s.T++
	if !s.cfg.Sparse {
		for j := range s.g1 {
			s.g1[j] -= s.g2[j]
		}
		s.step.Dense(s.X, s.g1, s.alpha, 1)
		return loss
	}
	s.idx, s.val = s.idx[:0], s.val[:0]
	s.idx = appendSupport(s.p, rows, s.mark, s.idx)
	for _, j := range s.idx {
		s.val = append(s.val, s.g1[j]-s.g2[j])
	}
	s.step.Sparse(s.X, s.idx, s.val, s.alpha, 1)
	return loss
}

// appendSupport appends the sorted union of the rows' column indices to idx
// (mark is a scratch of len d, left all false).
func appendSupport(p *Problem, rows []int, mark []bool, idx []int32) []int32 {
	start := len(idx)
	if p.A.CSR == nil {
		for j := range mark {
			idx = append(idx, int32(j))
		}
		return idx
	}
	for _, i := range rows {
		ri, _ := p.A.CSR.Row(i)
		for _, j := range ri {
			if !mark[j] {
				mark[j] = true
				idx = append(idx, j)
			}
		}
	}
	for _, j := range idx[start:] {
		mark[j] = false
	}
	slices.Sort(idx[start:])
	return idx
}

// Epochs is the number of passes over the data so far, full-gradient
// passes included (Samples / n).
func (s *SVRG) Epochs() float64 { return float64(s.Samples) / float64(s.n) }

// Alpha is the step in use.
func (s *SVRG) Alpha() float64 { return s.alpha }

// Output writes the run's output, the last iterate, into dst.
func (s *SVRG) Output(dst []float64) { copy(dst, s.X) }

// VRRate adapts the constant step of MethodSVRG between snapshots from
// the objective at the snapshots, which the refresh computes anyway (the
// losses come with the full gradient): a step-size search across epochs.
// While phi(x~) decreases, the step grows by VRGrow per snapshot, up to
// VRMaxGrowth times the safe start 1/(VRStepDiv L); when phi(x~) rises,
// the epoch is rejected: the run goes back to the previous snapshot (x,
// x~ and mu~; see Snapshot's revert), the step is halved and may grow back
// to VRRetry times the rejected step until VRRecover accepted snapshots
// in a row at that cap raise it (see VRRecover). Logistic losses are far flatter than their bound 1/4
// near the optimum, which is what the growth gains; the rejection keeps a
// step that is too large from doing more than one epoch of harm. Not safe
// for concurrent use.
type VRRate struct {
	Alpha, Max    float64
	PrevX, PrevMu []float64 // the last accepted snapshot and its full gradient
	PrevPhi       float64
	have          bool
	top           float64 // the first Max (VRMaxGrowth times the start)
	streak        int     // accepted snapshots in a row at Max
}

// VRRecover is the number of accepted snapshots in a row at the cap Max
// after which the cap grows again by VRGrow (up to VRMaxGrowth times the
// start). A rejection can come from one epoch's noise rather than from a
// step that is too large; without the recovery every such rejection
// lowered the cap for good, and a long run ratcheted down to a step far
// below the stable one (digits: stuck at 0.72/L in the metric, where 3/L
// is stable and reaches 1e-3 in a third of the epochs).
const VRRecover = 8

// VRRetry is the fraction of a rejected step that VRRate may grow back to.
const VRRetry = 0.75

// VRGrow is VRRate's growth of the step per accepted snapshot.
const VRGrow = 1.5

// VRMaxGrowth bounds VRRate's step: at most VRMaxGrowth times its start.
const VRMaxGrowth = 1 << 20

// VRExplode bounds a mini-batch loss during a cycle: above VRExplode
// phi(x~) + 1 (phi of the last accepted snapshot) the step is too large
// and the cycle is rejected at once (Reject), before the loss explodes.
const VRExplode = 100

// Exploded reports whether a mini-batch loss means the step is too large.
func (r *VRRate) Exploded(loss float64) bool {
	return r.have && !(loss <= VRExplode*math.Abs(r.PrevPhi)+1)
}

// Reject rejects the cycle under way (the caller goes back to PrevX, whose
// mu~ it still holds): the step is halved and may grow back to VRRetry
// times the rejected one. It returns the new step.
func (r *VRRate) Reject() float64 {
	r.Max = VRRetry * r.Alpha
	r.Alpha /= 2
	r.streak = 0
	return r.Alpha
}

// NewVRRate starts at alpha (the safe step 1/(VRStepDiv L)).
func NewVRRate(alpha float64) *VRRate {
	return &VRRate{Alpha: alpha, Max: VRMaxGrowth * alpha, top: VRMaxGrowth * alpha}
}

// State returns the rate's internal state beside its exported fields
// (for checkpoints): whether a snapshot was accepted, the first cap, and
// the accepted snapshots in a row at the cap.
func (r *VRRate) State() (have bool, top float64, streak int) { return r.have, r.top, r.streak }

// SetState restores what State returned.
func (r *VRRate) SetState(have bool, top float64, streak int) {
	r.have, r.top, r.streak = have, top, streak
}

// Snapshot takes the new snapshot x (len d), its full gradient mu and
// phi(x), and returns the step to use until the next one. revert says the
// snapshot is rejected: the caller must go back to PrevX (as x and x~) and
// PrevMu (as mu~). Accepted snapshots are copied.
func (r *VRRate) Snapshot(x, mu []float64, phi float64) (alpha float64, revert bool) {
	if alpha, revert = r.Decide(phi); revert {
		return alpha, true
	}
	if r.PrevX == nil {
		r.PrevX, r.PrevMu = make([]float64, len(x)), make([]float64, len(x))
	}
	copy(r.PrevX, x)
	copy(r.PrevMu, mu)
	return alpha, false
}

// Decide is Snapshot without its copies, for a caller that keeps the last
// accepted snapshot itself (swapping buffers instead of copying d floats
// twice): it decides on the snapshot with objective phi and returns the
// step; once it accepted, PrevX and PrevMu are the caller's to set (or to
// leave nil, if it never reads them).
func (r *VRRate) Decide(phi float64) (alpha float64, revert bool) {
	if r.have {
		if !(phi <= r.PrevPhi) {
			return r.Reject(), true
		}
		if r.Alpha >= r.Max {
			r.streak++
			if r.streak >= VRRecover {
				r.Max, r.streak = min(r.Max*VRGrow, r.top), 0
			}
		}
		r.Alpha = min(r.Alpha*VRGrow, r.Max)
	}
	r.PrevPhi, r.have = phi, true
	return r.Alpha, false
}
