package algo

import (
	"fmt"
	"math"
	"slices"

	"github.com/asyncmb/asyncmb/solver"
)

// Lazy is the iterate of a proximal SGD run whose regularizer drifts every
// coordinate the same way when its gradient entry is zero — none, l1, l2 and
// elastic net — updated in O(nnz(g)) per step instead of O(d), together with
// its running average. Coordinates outside a gradient's support are brought
// up to date just in time, when a later gradient touches them or when the
// whole iterate is read (Sync), and the result equals the eager update
//
//	x <- Reg.Step(x, g, alpha)   (= prox_{alpha Psi}(x - alpha g))
//	avg.Add(x)
//
// to rounding.
//
// The drift. With g_j = 0 the step maps the magnitude m = |x_j| to
// max(m c_s - d_s, 0), keeping the sign, where c_s = 1/(1 + alpha_s lambda2)
// and d_s = alpha_s lambda1 c_s. Composed over steps a..b-1 this is
//
//	m_b = max(Q_b (m_a/Q_a - (D_b - D_a)), 0),
//	Q_e = prod_{s<e} c_s,  D_e = sum_{s<e} d_s / Q_{s+1},
//
// because once the magnitude reaches 0 it stays there. Lazy keeps Q_e and D_e
// for every step e since the last full synchronisation (the history window),
// plus the prefix sums WQ_e = sum_{r<=e} w_r Q_r and WQD_e = sum_{r<=e} w_r
// Q_r D_r of the averaging weights w_r, so that a coordinate's contribution
// to the weighted sum of iterates over a stretch of untouched steps is
//
//	sum_{e=a+1..E} w_e m_e = u (WQ_E - WQ_a) - (WQD_E - WQD_a),  u = m_a/Q_a + D_a,
//
// where E is the last step before the magnitude hits 0 (found by binary
// search: D_e is non-decreasing). When the window is full (or Q_e would
// underflow) every coordinate is brought up to date in O(d) and the history
// restarts: amortised, a step costs O(nnz(g) + d/window).
//
// The average follows the solver.Averager it was built from (last, uniform,
// weighted, or tail with doubling blocks or a horizon) and is exported back
// into one by Export, so checkpoints see the same state as with eager steps.
// A Lazy is not safe for concurrent use.
type Lazy struct {
	reg      solver.Reg
	lam1     float64 // L1 weight of the drift
	lam2     float64 // L2 weight of the drift
	avg      solver.Averager
	d        int
	window   int
	noAvg    bool
	c        []coord    // per coordinate j: x_j, sum_j, their history step, j's place in nz
	xOut     []float64  // X's copy of the iterate
	prevSum  []float64  // solver.AvgTail: weighted sum of the previous block
	sumW     float64    // total weight in sum
	prevW    float64    // total weight in prevSum
	h        []histStep // history steps e = 0..len-1
	hd       []float64  // hd[e] = h[e].D, for lastAlive's search
	hc       []float64  // hc[k] = hd[k*hcEvery]
	slow     []int32    // scratch of PeekKeys and StepScaled
	xe, se   []float64  // StepScaled's scratch
	nz       []int32    // coordinates that may be nonzero (superset of the support of x)
	nzSorted int        // nz[:nzSorted] is in increasing order; later entries are new
	nzMerge  []int32    // scratch for merging new entries into nz
	syncs    int64      // full synchronisations so far
}

// LazyWindow is the default history window: a full synchronisation every
// max(LazyWindow, d/8) steps keeps the amortised O(d) part below 8 coordinates
// per step.
const LazyWindow = 4096

// Lazyable reports whether r's drift can be applied lazily (none, l1, l2,
// elastic); other regularizers need the eager O(d) Step.
func Lazyable(r solver.Reg) bool {
	_, _, ok := r.Drift()
	return ok
}

// NewLazy starts a lazy iterate at x0 (copied) with the averaging state of
// avg (its Kind, T0, Horizon and any iterates already averaged, as restored
// from a checkpoint). window <= 0 picks the default. It returns an error for
// a regularizer that is not Lazyable.
func NewLazy(reg solver.Reg, avg solver.Averager, x0 []float64, window int) (*Lazy, error) {
	if !Lazyable(reg) {
		return nil, fmt.Errorf("algo: the %s regularizer has no lazy update (use the eager Step)", reg.Kind)
	}
	d := len(x0)
	if window <= 0 {
		window = max(LazyWindow, d/8)
	}
	z := &Lazy{reg: reg, avg: avg, d: d, window: window}
	z.lam1, z.lam2, _ = reg.Drift()
	z.noAvg = avg.Kind == solver.AvgLast
	z.c = make([]coord, d)
	for j, v := range x0 {
		z.c[j] = coord{x: v, u: math.Abs(v), pos: -1} // step 0: Q = 1, D = 0
		if v != 0 {
			z.c[j].pos = int32(len(z.nz))
			z.nz = append(z.nz, int32(j))
		}
	}
	if !z.noAvg {
		z.importAvg()
	}
	z.resetHistory()
	return z, nil
}

// importAvg turns the averager's running means into weighted sums.
func (z *Lazy) importAvg() {
	a := &z.avg
	switch a.Kind {
	case solver.AvgUniform:
		z.sumW = float64(a.N)
	case solver.AvgWeighted:
		z.sumW = a.W
	case solver.AvgTail:
		z.sumW = float64(a.CurN)
		if a.Horizon == 0 {
			z.prevW = float64(a.PrevN)
			z.prevSum = make([]float64, z.d)
			for j := range z.prevSum {
				if a.Prev != nil {
					z.prevSum[j] = a.Prev[j] * z.prevW
				}
			}
		}
	}
	if a.Cur != nil {
		for j := range z.c {
			z.c[j].sum = a.Cur[j] * z.sumW
		}
	}
}

// coord is one coordinate's state, side by side so that a step or a read
// of x_j touches one cache line, not four arrays of d (d = 2^20, keyed
// pull: BenchmarkMasterKeyed's Step from about 650 to 270-350 us on this
// loaded 2-core machine; the window's length, 4096 to d/8, made no
// difference there).
//
// u is |x_j|/Q_last + D_last, the magnitude carried back to the start of
// the history window (0 when x_j is 0): reading x_j at step b is then
// sign(x_j) Q_b (u - D_b), from this line and the history's newest step
// alone, with no load of h[last] and no division (d = 2^20, keyed pull:
// a real run's keyed reads from about 90 to 28 ns a key, zero crossings
// aside, with PeekKeys). It is the u that drift computed from x and
// h[last] at every read before, so every value read is what it was. 32
// bytes: one cache line holds two coordinates.
type coord struct {
	x    float64 // x_j as of history step last
	u    float64 // |x_j|/Q_last + D_last (0 when x_j == 0)
	sum  float64 // weighted sum of x_j over the iterates of the current block
	last int32   // history step at which x, u and sum are current
	pos  int32   // position of j in nz, or -1
}

// set stores v as x_j at history step e (h[e] must exist), without a
// branch on v (u is 0 for v == 0).
func (z *Lazy) set(j int, v float64, e int) {
	c, h := &z.c[j], &z.h[e]
	c.x, c.last = v, int32(e)
	c.u = math.Float64frombits(math.Float64bits(math.Abs(v)/h.Q+h.D) & -b2u(v != 0))
}

// histStep is one step of the history, its four sums side by side: a
// coordinate brought up to date from step a reads h[a] and h[E] (and h[b],
// the last, in cache), two cache lines instead of six.
type histStep struct {
	Q, D float64 // Q_e, D_e
	WQ   float64 // prefix sum of w_e Q_e
	WQD  float64 // prefix sum of w_e Q_e D_e
}

func (z *Lazy) resetHistory() {
	z.h = append(z.h[:0], histStep{Q: 1})
	z.hd = append(z.hd[:0], 0)
	z.hc = append(z.hc[:0], 0)
}

// N is the number of steps applied (iterates averaged) so far.
func (z *Lazy) N() int64 { return z.avg.N }

// Dim is the dimension d.
func (z *Lazy) Dim() int { return z.d }

// Syncs is the number of O(d) synchronisations so far.
func (z *Lazy) Syncs() int64 { return z.syncs }

// weight is the averaging weight of iterate k (1-based) and whether the
// tail average starts a new block at it.
func (z *Lazy) weight(k int64) (w float64, newBlock bool) {
	a := &z.avg
	switch a.Kind {
	case solver.AvgUniform:
		return 1, false
	case solver.AvgWeighted:
		return float64(k) + a.T0, false
	case solver.AvgTail:
		if a.Horizon > 0 {
			if k <= a.Horizon/2 {
				return 0, false
			}
			return 1, false
		}
		return 1, k >= 2 && k&(k-1) == 0
	}
	return 0, false
}

// Step applies one update with the sparse gradient (idx, val) — strictly
// increasing indices in [0, d), values only read — and step size alpha:
// every coordinate j gets x_j <- prox(x_j - alpha g_j), the iterate is added
// to the average, and only the coordinates in idx are touched now.
func (z *Lazy) Step(idx []int32, val []float64, alpha float64) { z.StepScaled(idx, val, alpha, 1) }

// StepScaled is Step with the gradient scaled by gscale: x_j <- prox(x_j -
// alpha gscale g_j); the prox still uses alpha.
func (z *Lazy) StepScaled(idx []int32, val []float64, alpha, gscale float64) {
	if len(idx) != len(val) {
		panic("algo: Lazy.Step len(idx) != len(val)")
	}
	if !(alpha >= 0) {
		panic("algo: Lazy.Step with negative or NaN alpha")
	}
	k := z.avg.N + 1
	w, newBlock := z.weight(k)
	if newBlock {
		z.startBlock()
	}
	e := len(z.h) - 1
	if e >= z.window || z.h[e].Q < 1e-150 {
		z.Sync()
		e = 0
	}
	// Extend the history by this step.
	c := 1 / (1 + alpha*z.lam2)
	he := z.h[e]
	q := he.Q * c
	dd := he.D + alpha*z.lam1*c/q
	z.h = append(z.h, histStep{Q: q, D: dd, WQ: he.WQ + w*q, WQD: he.WQD + w*q*dd})
	z.hd = append(z.hd, dd)
	if len(z.hd)%hcEvery == 1 {
		z.hc = append(z.hc, dd) // hc[k] = hd[k*hcEvery]
	}
	z.sumW += w
	z.avg.N = k

	val = val[:len(idx)]
	// Pass 1, with no branch on the data (see PeekKeys): each
	// coordinate's value at step e and its sum brought up to e, where x_j
	// is still alive or current; the ones that reached zero in the
	// stretch are listed. Pass 2 catches those up (the search), pass 3
	// steps every coordinate, its line now in cache.
	xe := slices.Grow(z.xe[:0], len(idx))[:len(idx)]
	se := slices.Grow(z.se[:0], len(idx))[:len(idx)]
	slow := slices.Grow(z.slow[:0], len(idx))[:len(idx)]
	ns := 0
	cs, h := z.c, z.h
	e32 := int32(e)
	withSum := !z.noAvg
	for n, j := range idx {
		c := &cs[j]
		x, u, a := c.x, c.u, c.last
		drifted := math.Copysign(he.Q*(u-he.D), x)
		stored := b2u(x == 0) | b2u(a == e32)
		alive := b2u(he.D < u) &^ stored
		xe[n] = math.Float64frombits(math.Float64bits(x)&-stored | math.Float64bits(drifted)&-alive)
		if withSum {
			ha := &h[a]
			sum := c.sum + math.Copysign(1, x)*(u*(he.WQ-ha.WQ)-(he.WQD-ha.WQD))
			se[n] = math.Float64frombits(math.Float64bits(c.sum)&-stored | math.Float64bits(sum)&-alive)
		}
		slow[ns] = int32(n)
		ns += int(1 - stored - alive)
	}
	for _, n := range slow[:ns] {
		j := int(idx[n])
		z.catchUp(j, e)
		xe[n], se[n] = z.c[j].x, z.c[j].sum
	}
	ag := alpha * gscale
	for n, j := range idx {
		v := z.reg.ProxScalar(xe[n]-ag*val[n], alpha)
		z.set(int(j), v, e+1)
		c := &cs[j]
		if withSum {
			c.sum = se[n] + w*v
		}
		if v != 0 && c.pos < 0 {
			c.pos = int32(len(z.nz))
			z.nz = append(z.nz, j)
		}
	}
	z.xe, z.se, z.slow = xe[:0], se[:0], slow[:0]
}

// catchUp brings x_j and sum_j from their history step to step b.
func (z *Lazy) catchUp(j, b int) {
	a := int(z.c[j].last)
	if a == b {
		return
	}
	if z.c[j].x == 0 {
		z.c[j].last = int32(b)
		return
	}
	xb, dsum := z.drift(j, a, b, !z.noAvg)
	if !z.noAvg {
		z.c[j].sum += dsum
	}
	z.set(j, xb, b)
}

// drift is x_j carried from history step a (where it is stored) to step b
// without a gradient, and (if withSum) what those steps add to sum_j; it
// changes nothing, so that reading a coordinate (Peek) leaves the state,
// and so the rounding of every later step, exactly as it was.
func (z *Lazy) drift(j, a, b int, withSum bool) (xb, dsum float64) {
	c := &z.c[j]
	xj := c.x
	if xj == 0 || a == b {
		return xj, 0
	}
	sign := 1.0
	if xj < 0 {
		sign = -1
	}
	hb, u := &z.h[b], c.u
	alive := hb.D < u // x_j is still nonzero at b
	if alive {
		xb = sign * hb.Q * (u - hb.D)
	}
	if !withSum {
		return xb, 0
	}
	// E: the last step in (a, b] with D_E < u (magnitude still positive).
	E := b
	if !alive {
		E = z.lastAlive(a, b, u)
	}
	if E > a {
		h := z.h
		dsum = sign * (u*(h[E].WQ-h[a].WQ) - (h[E].WQD - h[a].WQD))
	}
	return xb, dsum
}

// lastAlive is the last history step e in [a, b) with D_e < u, given
// D_b >= u. It looks at the steps right after a first (a small x_j reaches
// zero soon), then bisects hc, every hcEvery-th D_e, for the block, and
// counts within it in hd, the D_e alone: a few cache lines read in order
// instead of a probe into a different line (and page) of the history at
// each step of a bisection (d = 2^20, keyed pull: about 600 ns per
// coordinate that reached zero, most of it cache and TLB misses).
func (z *Lazy) lastAlive(a, b int, u float64) int {
	hd := z.hd[:b+1]
	lo, hi := a, b // D_lo < u <= D_hi (but for rounding at lo = a)
	for e := a + 1; e < min(a+8, b); e++ {
		if hd[e] >= u {
			return e - 1
		}
		lo = e
	}
	// Blocks: hc[k] = hd[k*hcEvery]. The last block start in (lo, hi)
	// with D < u narrows [lo, hi) to one block.
	hc := z.hc
	klo, khi := lo/hcEvery+1, (hi-1)/hcEvery // candidate block starts in (lo, hi)
	for klo <= khi {
		mid := int(uint(klo+khi) >> 1)
		if hc[mid] < u {
			lo = mid * hcEvery
			klo = mid + 1
		} else {
			hi = mid * hcEvery
			khi = mid - 1
		}
	}
	// Within the block (at most hcEvery steps, 4 cache lines, read in
	// order): count the steps still alive, without a branch per step.
	n := 0
	for _, v := range hd[lo+1 : hi] {
		n += int(b2u(v < u))
	}
	return lo + n
}

// hcEvery is the stride of lastAlive's coarse index: hc is 31 KB for the
// window of d = 2^20 (in L1 or L2 at every search), a block 256 bytes.
const hcEvery = 32

// startBlock begins a new tail-average block (at iterates 2, 4, 8, ...):
// every sum is brought up to date, the current block becomes the previous.
func (z *Lazy) startBlock() {
	z.Sync()
	if z.prevSum == nil {
		z.prevSum = make([]float64, z.d)
	}
	for j := range z.c {
		z.prevSum[j], z.c[j].sum = z.c[j].sum, 0
	}
	z.prevW, z.sumW = z.sumW, 0
}

// Sync brings every coordinate up to date in O(d) and restarts the history
// window; it drops coordinates that reached zero from the nonzero list.
func (z *Lazy) Sync() {
	b := len(z.h) - 1
	if b > 0 {
		for j := range z.c {
			z.catchUp(j, b)
			z.c[j].last, z.c[j].u = 0, math.Abs(z.c[j].x) // step 0: Q = 1, D = 0
		}
	}
	z.resetHistory()
	z.syncs++
	z.compactNZ()
}

func (z *Lazy) compactNZ() {
	z.sortNZ()
	out := z.nz[:0]
	for _, j := range z.nz {
		if z.c[j].x != 0 {
			z.c[j].pos = int32(len(out))
			out = append(out, j)
		} else {
			z.c[j].pos = -1
		}
	}
	z.nz = out
	z.nzSorted = len(out)
}

// CopyX synchronises and writes the current iterate into dst (len d).
func (z *Lazy) CopyX(dst []float64) {
	if len(dst) != z.d {
		panic("algo: Lazy.CopyX len(dst) != d")
	}
	z.Sync()
	for j := range dst {
		dst[j] = z.c[j].x
	}
}

// X synchronises and returns the current iterate (a copy owned by z, 8d
// bytes allocated at the first call, valid until the next Step; CopyX
// writes into the caller's buffer instead).
func (z *Lazy) X() []float64 {
	z.Sync()
	if z.xOut == nil {
		z.xOut = make([]float64, z.d)
	}
	for j := range z.xOut {
		z.xOut[j] = z.c[j].x
	}
	return z.xOut
}

// At returns the current value of x_j, bringing that coordinate up to date.
func (z *Lazy) At(j int) float64 {
	z.catchUp(j, len(z.h)-1)
	return z.c[j].x
}

// Peek returns the current value of x_j, equal to At's, without changing
// the rounding of any later step: O(1), or O(log window) when x_j reaches
// zero in the stretch. A nonzero value is not stored (catching up in two
// stretches a..b..c rounds differently from one, a..c); a zero is, with its
// contribution to the average, because from zero the drift is exact (the
// one-stretch catch-up finds the same last positive step and sum). The
// master's replies read x with Peek, so that what it sends (all of x, its
// nonzeros or a worker's keys) never changes its iterates, and a
// coordinate that reached zero is searched once, not at every read.
func (z *Lazy) Peek(j int) float64 {
	c, b := &z.c[j], len(z.h)-1
	xb, _ := z.drift(j, int(c.last), b, false) // from c and h[b] alone
	if xb == 0 && c.x != 0 {
		z.catchUp(j, b) // reached zero: searched once, stored
	}
	return xb
}

// PeekKeys appends Peek(j) for every j of keys (strictly increasing, in
// [0, d)) to dst and returns it: the master's keyed reply. The values,
// and the state left behind, are those of Peek key by key; the loop is
// written for the machine: one pass with no branch on the data reads each
// coordinate's line and selects its value (stored, drifted or zero), and
// lists the coordinates that reached zero in the stretch, which a second
// pass stores (Peek's catch-up). With the branches of Peek, mispredicted
// on about every other key of text-like data, the loads of the scattered
// lines, each a cache miss at d = 2^20, were taken one after the other;
// here they overlap.
func (z *Lazy) PeekKeys(keys []int32, dst []float64) []float64 {
	n0 := len(dst)
	dst = slices.Grow(dst, len(keys))[:n0+len(keys)]
	out := dst[n0:]
	b := len(z.h) - 1
	hb := z.h[b]
	b32 := int32(b)
	slow := slices.Grow(z.slow[:0], len(keys))[:len(keys)]
	n := 0
	cs := z.c
	for k, j := range keys {
		c := &cs[j]
		x, u := c.x, c.u
		drifted := math.Copysign(hb.Q*(u-hb.D), x)
		// stored: x is current (or zero, where it stays); alive: the
		// drifted value, still nonzero at b; otherwise x reached zero.
		stored := b2u(x == 0) | b2u(c.last == b32)
		alive := b2u(hb.D < u) &^ stored
		out[k] = math.Float64frombits(math.Float64bits(x)&-stored | math.Float64bits(drifted)&-alive)
		slow[n] = int32(k)
		n += int(1 - stored - alive)
	}
	slow = slow[:n]
	for _, k := range slow {
		z.catchUp(int(keys[k]), b)
		out[k] = 0
	}
	z.slow = slow[:0]
	return dst
}

// b2u is 1 for true, 0 for false (a SETcc, no branch).
func b2u(v bool) uint64 {
	var u uint64
	if v {
		u = 1
	}
	return u
}

// PeekAll writes the current iterate into dst (len d) without
// synchronising: O(d), and the rounding of later steps as it was (see
// Peek).
func (z *Lazy) PeekAll(dst []float64) {
	if len(dst) != z.d {
		panic("algo: Lazy.PeekAll len(dst) != d")
	}
	for j := range dst {
		dst[j] = z.Peek(j)
	}
}

// AppendNonzeros appends the nonzero coordinates of the current iterate to
// idx and val in increasing index order, in O(nnz(x) log nnz(x)), reading
// them with Peek (the iterate is not changed; coordinates that reached zero
// leave the nonzero list). It is the master's sparse reply.
func (z *Lazy) AppendNonzeros(idx []int32, val []float64) ([]int32, []float64) {
	z.sortNZ()
	out := z.nz[:0]
	for _, j := range z.nz {
		if v := z.Peek(int(j)); v != 0 {
			z.c[j].pos = int32(len(out))
			out = append(out, j)
			idx = append(idx, j)
			val = append(val, v)
		} else {
			z.c[j].pos = -1
		}
	}
	z.nz = out
	z.nzSorted = len(out)
	return idx, val
}

// sortNZ puts nz in increasing order: the entries added since the last
// sort are sorted and merged into the sorted prefix, O(k + m log m) for m
// new entries instead of O(k log k).
func (z *Lazy) sortNZ() {
	old, add := z.nz[:z.nzSorted], z.nz[z.nzSorted:]
	if len(add) == 0 {
		return
	}
	slices.Sort(add)
	if len(old) == 0 || old[len(old)-1] < add[0] {
		z.nzSorted = len(z.nz)
		return
	}
	m := z.nzMerge[:0]
	i, k := 0, 0
	for i < len(old) && k < len(add) {
		if old[i] < add[k] {
			m = append(m, old[i])
			i++
		} else {
			m = append(m, add[k])
			k++
		}
	}
	m = append(m, old[i:]...)
	m = append(m, add[k:]...)
	z.nzMerge, z.nz = z.nz[:0], m
	z.nzSorted = len(m)
	for p, j := range m {
		z.c[j].pos = int32(p)
	}
}

// NNZUpper is the size of the list of coordinates that may be nonzero (an
// upper bound on nnz(x), exact after Sync or AppendNonzeros).
func (z *Lazy) NNZUpper() int { return len(z.nz) }

// Average synchronises and writes the output of the averager into dst, as
// solver.Averager.Value would (the iterate itself for solver.AvgLast or before any step).
func (z *Lazy) Average(dst []float64) {
	if len(dst) != z.d {
		panic("algo: Lazy.Average len(dst) != d")
	}
	z.Sync()
	totW := z.sumW + z.prevW
	if z.noAvg || z.avg.N == 0 || totW == 0 {
		for j := range dst {
			dst[j] = z.c[j].x
		}
		return
	}
	for j := range dst {
		s := z.c[j].sum
		if z.prevSum != nil {
			s += z.prevSum[j]
		}
		dst[j] = s / totW
	}
}

// Export synchronises and returns the iterate and the averaging state as an
// solver.Averager with the same fields the eager path would have (for checkpoints
// and for switching to the eager path). The slices are fresh copies.
func (z *Lazy) Export() ([]float64, solver.Averager) {
	z.Sync()
	a := z.avg
	a.Cur, a.Prev = nil, nil
	if !z.noAvg {
		a.Cur = make([]float64, z.d)
		if z.sumW > 0 {
			for j := range a.Cur {
				a.Cur[j] = z.c[j].sum / z.sumW
			}
		}
		switch a.Kind {
		case solver.AvgWeighted:
			a.W = z.sumW
		case solver.AvgTail:
			a.CurN = int64(math.Round(z.sumW))
			if z.prevSum != nil {
				a.PrevN = int64(math.Round(z.prevW))
				a.Prev = make([]float64, z.d)
				if z.prevW > 0 {
					for j := range a.Prev {
						a.Prev[j] = z.prevSum[j] / z.prevW
					}
				}
			}
		}
	}
	x := make([]float64, z.d)
	for j := range x {
		x[j] = z.c[j].x
	}
	return x, a
}
