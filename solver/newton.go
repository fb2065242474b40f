package solver

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/asyncmb/asyncmb/kernels"
)

// newtonApplies reports whether the proximal Newton solver handles r: the
// separable regularizers, whose Psi splits into a quadratic part
// (rho/2)||x||^2 and a per-coordinate part lambda1 |x_j| + I_[lo,hi](x_j).
func newtonApplies(r Reg) bool { return r.Separable() }

// splitReg writes a separable Psi as (rho/2)||x||^2 + sum_j psi(x_j) with
// psi(v) = lambda1 |v| + I_[lo,hi](v).
func splitReg(r Reg) (rho, lambda1, lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	switch r.Kind {
	case RegL1:
		lambda1 = r.Lambda
	case RegL2:
		rho = r.Lambda
	case RegElastic:
		lambda1, rho = r.Lambda, r.Lambda2
	case RegBox:
		lo, hi = r.Lo, r.Hi
	case RegNonneg:
		lo = 0
	case RegL1Box:
		lambda1, lo, hi = r.Lambda, r.Lo, r.Hi
	}
	return
}

// columns is A in compressed sparse column form: column j holds the rows
// row[ptr[j]:ptr[j+1]] (increasing) and the values val[ptr[j]:ptr[j+1]].
// Coordinate descent needs column access; the copy doubles the matrix.
type columns struct {
	ptr []int64
	row []int32
	val []float64
}

// columnsOf builds the column form of m (a dense matrix keeps its nonzeros).
func columnsOf(m kernels.Matrix) columns {
	n, d := m.Dims()
	c := columns{ptr: make([]int64, d+1)}
	if a := m.CSR; a != nil {
		for _, j := range a.Indices {
			c.ptr[j+1]++
		}
		for j := 0; j < d; j++ {
			c.ptr[j+1] += c.ptr[j]
		}
		c.row = make([]int32, len(a.Indices))
		c.val = make([]float64, len(a.Indices))
		next := append([]int64(nil), c.ptr[:d]...)
		for i := 0; i < n; i++ {
			idx, val := a.Row(i)
			for k, j := range idx {
				c.row[next[j]], c.val[next[j]] = int32(i), val[k]
				next[j]++
			}
		}
		return c
	}
	a := m.Dense
	for j := 0; j < d; j++ {
		for i := 0; i < n; i++ {
			if v := a.Data[i*d+j]; v != 0 {
				c.row = append(c.row, int32(i))
				c.val = append(c.val, v)
			}
		}
		c.ptr[j+1] = int64(len(c.row))
	}
	return c
}

// curvature returns the second derivative of l at the margin m (the
// generalized one, 0 or 2, for the squared hinge, whose l' has a kink):
//
//	Logistic: sigma(y m) (1 - sigma(y m)) = e / (1 + e)^2, e = exp(-|m|)
//	Squared:  1
//	SqHinge:  2 if y m < 1, else 0
func curvature(l kernels.Loss, m, y float64) float64 {
	switch l {
	case kernels.Logistic:
		e := math.Exp(-math.Abs(m))
		return e / ((1 + e) * (1 + e))
	case kernels.Squared:
		return 1
	case kernels.SqHinge:
		if y*m < 1 {
			return 2
		}
		return 0
	}
	panic("solver: curvature of unknown loss")
}

// newtonNu is added to every diagonal entry of the quadratic model, as
// liblinear's newGLMNET does, so that a column without curvature (all its
// rows outside the squared hinge's margin) has a finite step.
const newtonNu = 1e-12

// newtonSigma is the Armijo constant of the line search, newtonMaxLS its
// number of halvings, newtonMaxInner the passes of coordinate descent over
// the columns per Newton step (the descent on an explicit Hessian stops
// after the cost of 64 passes over A instead).
const (
	newtonSigma    = 0.01
	newtonMaxLS    = 40
	newtonMaxInner = 200
)

// newton is the state of one proximal Newton solve: the problem, its
// column form, the regularizer's parts and the per-row and per-column
// buffers, all allocated once.
type newton struct {
	p                *Problem
	n                int
	nf               float64
	rho, lam, lo, hi float64
	cols             columns
	colParts         []int
	workers          int
	hval             []float64 // h_i a_ij / n per entry of cols
	hd               []float64 // diagonal of the model's Hessian
	r                []float64 // A delta, kept by the column descent
	pos              []int     // position of a column in the active set, -1 if not
	gram             []float64 // the active set's Hessian, row-major
	gramBufs         [][]float64
	rng              *rand.Rand
}

// step returns argmin_z hjj/2 (z - v)^2 + psi(z), the clamped
// soft-threshold: one coordinate's exact minimization, v being the
// coordinate's Newton point u - G/hjj.
func (nt *newton) step(v, hjj float64) float64 { return min(max(soft(v, nt.lam/hjj), nt.lo), nt.hi) }

func (nt *newton) psi(v float64) float64 { return nt.lam * math.Abs(v) }

// maxGram bounds the active set whose Hessian is formed explicitly (8 MB).
const maxGram = 1024

// gramOf forms H_AA = A_A^T diag(h) A_A / n + (rho + nu) I for the active
// set A when that is cheap next to the column descent it replaces (at most
// maxGram columns, |A|^2 below the nonzeros of the active columns, and a
// build cost sum_i (active entries of row i)^2 within 32 passes over A);
// else nil. The rows are split over the workers, each summing into its
// own buffer.
func (nt *newton) gramOf(active []int, h []float64) []float64 {
	s := len(active)
	if s > maxGram || nt.p.A.CSR == nil {
		return nil
	}
	var colNNZ int64
	for _, j := range active {
		colNNZ += nt.cols.ptr[j+1] - nt.cols.ptr[j]
	}
	if int64(s)*int64(s) > colNNZ {
		return nil
	}
	for j := range nt.pos {
		nt.pos[j] = -1
	}
	for k, j := range active {
		nt.pos[j] = k
	}
	a := nt.p.A.CSR
	var cost int64
	for i := 0; i < a.Rows; i++ {
		idx, _ := a.Row(i)
		c := int64(0)
		for _, j := range idx {
			if nt.pos[j] >= 0 {
				c++
			}
		}
		cost += c * c
	}
	if cost > 32*int64(a.NNZ()) {
		return nil
	}
	if cap(nt.gram) < s*s {
		nt.gram = make([]float64, s*s)
	}
	gm := nt.gram[:s*s]
	parts := evenRows(a.Rows, nt.workers)
	for len(nt.gramBufs) < len(parts)-1 {
		nt.gramBufs = append(nt.gramBufs, nil)
	}
	kernels.Parallel(len(parts)-1, func(w int) {
		buf := gm
		if w > 0 {
			if cap(nt.gramBufs[w]) < s*s {
				nt.gramBufs[w] = make([]float64, s*s)
			}
			buf = nt.gramBufs[w][:s*s]
		}
		clear(buf)
		ks := make([]int, 0, 64)
		vs := make([]float64, 0, 64)
		for i := parts[w]; i < parts[w+1]; i++ {
			if h[i] == 0 {
				continue
			}
			idx, val := a.Row(i)
			ks, vs = ks[:0], vs[:0]
			for q, j := range idx {
				if k := nt.pos[j]; k >= 0 {
					ks = append(ks, k)
					vs = append(vs, val[q])
				}
			}
			c := h[i] / nt.nf
			for u, ku := range ks {
				cu := c * vs[u]
				row := buf[ku*s : ku*s+s]
				for v, kv := range ks[:u+1] {
					row[kv] += cu * vs[v]
				}
			}
		}
	})
	for w := 1; w < len(parts)-1; w++ {
		for q, v := range nt.gramBufs[w][:s*s] {
			gm[q] += v
		}
	}
	// The lower triangle holds the sums (a row's entries come in
	// increasing column order only when the active set is sorted, so
	// mirror whichever half was written).
	for u := 0; u < s; u++ {
		for v := 0; v < u; v++ {
			t := gm[u*s+v] + gm[v*s+u]
			gm[u*s+v], gm[v*s+u] = t, t
		}
		gm[u*s+u] += nt.rho + newtonNu
	}
	return gm
}

// solveGram minimizes the model over the active set on its explicit
// Hessian gm: by Cholesky when psi is 0 (no L1 term, no bounds), else by
// coordinate descent with w = gm delta kept up to date, until a pass moves
// the model by at most innerTol of the first pass. It reports whether it
// got there.
func (nt *newton) solveGram(ctx context.Context, gm []float64, active []int, x, g, delta []float64, innerTol float64, res *RefResult) bool {
	s := len(active)
	if nt.lam == 0 && math.IsInf(nt.lo, -1) && math.IsInf(nt.hi, 1) {
		b := make([]float64, s)
		for k, j := range active {
			b[k] = -g[j]
		}
		if z, ok := solveSPD(gm, b, s); ok {
			for k, j := range active {
				delta[j] = z[k]
			}
			res.InnerPasses++
			return true
		}
	}
	w := make([]float64, s) // gm delta over the active set
	order := make([]int, s)
	for k := range order {
		order[k] = k
	}
	pass := func() float64 {
		nt.rng.Shuffle(s, func(a, b int) { order[a], order[b] = order[b], order[a] })
		var moved float64
		for _, k := range order {
			j := active[k]
			hjj := gm[k*s+k]
			u := x[j] + delta[j]
			z := nt.step(u-(g[j]+w[k])/hjj, hjj)
			dz := z - u
			if dz == 0 {
				continue
			}
			delta[j] += dz
			row := gm[k*s : k*s+s]
			for q := range w {
				w[q] += dz * row[q]
			}
			moved += hjj * dz * dz
		}
		res.InnerPasses++
		return moved
	}
	first := pass()
	ok := first == 0
	for p := 1; !ok; p++ {
		if p%256 == 0 && ctx.Err() != nil {
			return false
		}
		if int64(p)*int64(s)*int64(s) > 64*int64(len(nt.cols.val)) {
			break // more than 64 passes over A spent here
		}
		ok = pass() <= innerTol*first
	}
	// Coordinate descent on an ill-conditioned model crawls; once it has
	// found the support and signs, the model restricted to them is a
	// smooth quadratic, solved exactly. Kept only when it keeps the signs
	// and lowers the model, and then checked by a pass of descent.
	for round := 0; round < 10 && first > 0; round++ {
		if !nt.refineGram(gm, active, x, g, delta, w) {
			break
		}
		if pass() <= 1e-3*innerTol*first {
			return true
		}
	}
	return ok
}

// refineGram replaces the model's minimizer estimate delta (with w = gm
// delta) by the exact minimizer of the model with every coordinate at a kink
// of psi (0 of the L1 term, a bound) held there and the others' signs held,
// when that solution keeps the signs and the bounds and its model value is
// not higher. It reports whether it replaced delta.
func (nt *newton) refineGram(gm []float64, active []int, x, g, delta, w []float64) bool {
	s := len(active)
	var free []int
	for k, j := range active {
		z := x[j] + delta[j]
		if z != nt.lo && z != nt.hi && !(nt.lam > 0 && z == 0) {
			free = append(free, k)
		}
	}
	f := len(free)
	if f == 0 {
		return false
	}
	sub := make([]float64, f*f)
	b := make([]float64, f)
	for u, ku := range free {
		j := active[ku]
		sg := math.Copysign(nt.lam, x[j]+delta[j])
		var gff float64
		for v, kv := range free {
			sub[u*f+v] = gm[ku*s+kv]
			gff += gm[ku*s+kv] * delta[active[kv]]
		}
		// (gm delta)_F = gm_FF delta_F + gm_FN delta_N
		b[u] = -g[j] - sg - (w[ku] - gff)
	}
	z, ok := solveSPD(sub, b, f)
	if !ok {
		return false
	}
	// Along the segment from delta to the solution the restricted model
	// decreases; stop it where the first free coordinate reaches a kink
	// (0, lo or hi) and put that coordinate on it (an active-set step).
	alpha, block := 1.0, -1
	for u, ku := range free {
		j := active[ku]
		old, v := x[j]+delta[j], x[j]+z[u]
		kink := math.NaN()
		switch {
		case v < nt.lo:
			kink = nt.lo
		case v > nt.hi:
			kink = nt.hi
		case nt.lam > 0 && (v == 0 || (v > 0) != (old > 0)):
			kink = 0
		}
		if math.IsNaN(kink) {
			continue
		}
		if a := (kink - old) / (v - old); a < alpha {
			alpha, block = a, u
		}
	}
	nd := append([]float64(nil), delta...)
	for u, ku := range free {
		j := active[ku]
		nd[j] = delta[j] + alpha*(z[u]-delta[j])
		if u == block {
			nd[j] = math.Copysign(0, 1) - x[j] // x_j + delta_j lands on the kink
			if v := x[j] + z[u]; v < nt.lo {
				nd[j] = nt.lo - x[j]
			} else if v > nt.hi {
				nd[j] = nt.hi - x[j]
			}
		}
	}
	nw := make([]float64, s)
	for k := range nw {
		var v float64
		row := gm[k*s : k*s+s]
		for q, kq := range active {
			v += row[q] * nd[kq]
		}
		nw[k] = v
	}
	model := func(d, gd []float64) float64 {
		var q float64
		for k, j := range active {
			q += g[j]*d[j] + 0.5*d[j]*gd[k] + nt.psi(x[j]+d[j])
		}
		return q
	}
	if model(nd, nw) > model(delta, w) {
		return false
	}
	copy(delta, nd)
	copy(w, nw)
	return true
}

// solveSPD solves M z = b for the symmetric positive definite s x s matrix
// m (row-major, only read) by Cholesky on the Jacobi-scaled matrix
// D^-1/2 M D^-1/2, D = diag(M) (the unscaled data's Hessians have diagonals
// from 1e-6 to 1e12, which unscaled Cholesky would turn into noise), and two
// steps of iterative refinement; false if M is not numerically positive
// definite.
func solveSPD(m, b []float64, s int) ([]float64, bool) {
	sc := make([]float64, s)
	for i := range sc {
		if !(m[i*s+i] > 0) {
			return nil, false
		}
		sc[i] = 1 / math.Sqrt(m[i*s+i])
	}
	l := make([]float64, s*s)
	for i := 0; i < s; i++ {
		for j := 0; j < s; j++ {
			l[i*s+j] = m[i*s+j] * sc[i] * sc[j]
		}
	}
	if !cholesky(l, s) {
		// Singular (identical or dependent columns): factor the scaled
		// matrix plus 1e-10 I; the refinement below, with the true M,
		// converges when b is in M's range (and otherwise heads along the
		// null space, which the caller's checks handle).
		for i := 0; i < s; i++ {
			for j := 0; j < s; j++ {
				l[i*s+j] = m[i*s+j] * sc[i] * sc[j]
			}
			l[i*s+i] += 1e-10
		}
		if !cholesky(l, s) {
			return nil, false
		}
	}
	z := make([]float64, s)
	res := append([]float64(nil), b...)
	corr := make([]float64, s)
	for it := 0; it < 3; it++ {
		for i := range corr {
			corr[i] = res[i] * sc[i]
		}
		choleskySubst(l, corr, s)
		for i := range z {
			z[i] += corr[i] * sc[i]
		}
		for i := 0; i < s; i++ {
			v := b[i]
			row := m[i*s : i*s+s]
			for j, mij := range row {
				v -= mij * z[j]
			}
			res[i] = v
		}
	}
	return z, true
}

// cholesky overwrites the lower triangle of the s x s matrix m with L, M =
// L L^T; false if M is not numerically positive definite.
func cholesky(m []float64, s int) bool {
	for j := 0; j < s; j++ {
		d := m[j*s+j]
		for k := 0; k < j; k++ {
			d -= m[j*s+k] * m[j*s+k]
		}
		if !(d > 1e-14) {
			return false
		}
		d = math.Sqrt(d)
		m[j*s+j] = d
		for i := j + 1; i < s; i++ {
			v := m[i*s+j]
			for k := 0; k < j; k++ {
				v -= m[i*s+k] * m[j*s+k]
			}
			m[i*s+j] = v / d
		}
	}
	return true
}

// choleskySubst overwrites b with (L L^T)^-1 b for the factor of cholesky.
func choleskySubst(m, b []float64, s int) {
	for i := 0; i < s; i++ {
		v := b[i]
		for k := 0; k < i; k++ {
			v -= m[i*s+k] * b[k]
		}
		b[i] = v / m[i*s+i]
	}
	for i := s - 1; i >= 0; i-- {
		v := b[i]
		for k := i + 1; k < s; k++ {
			v -= m[k*s+i] * b[k]
		}
		b[i] = v / m[i*s+i]
	}
}

// solveColumns minimizes the model over the active set by coordinate
// descent over the columns of A, keeping r = A delta, in a fresh random
// order every pass, until a pass moves the model by at most innerTol of the
// first pass (true) or newtonMaxInner passes are spent (false).
func (nt *newton) solveColumns(ctx context.Context, active []int, x, g, delta, r []float64, innerTol float64, res *RefResult) bool {
	clear(r)
	cols, hval, hd := nt.cols, nt.hval, nt.hd
	var first float64
	for pass := 0; pass < newtonMaxInner; pass++ {
		if pass%16 == 15 && ctx.Err() != nil {
			return false
		}
		nt.rng.Shuffle(len(active), func(a, b int) { active[a], active[b] = active[b], active[a] })
		var moved float64
		for _, j := range active {
			q0, q1 := cols.ptr[j], cols.ptr[j+1]
			rows, hv, val := cols.row[q0:q1], hval[q0:q1], cols.val[q0:q1]
			var hr float64
			for q, i := range rows {
				hr += hv[q] * r[i]
			}
			hjj := hd[j]
			u := x[j] + delta[j]
			z := nt.step(u-(g[j]+hr+(nt.rho+newtonNu)*delta[j])/hjj, hjj)
			dz := z - u
			if dz == 0 {
				continue
			}
			delta[j] += dz
			for q, i := range rows {
				r[i] += dz * val[q]
			}
			moved += hjj * dz * dz
		}
		res.InnerPasses++
		if pass == 0 {
			first = moved
		}
		if moved <= innerTol*first {
			return true
		}
	}
	return false
}

// proxNewton is Reference's proximal Newton method (see ReferenceContext).
func proxNewton(ctx context.Context, p *Problem, opt RefOptions) (RefResult, error) {
	tol, maxIter := opt.limits(1000)
	n, d := p.Dims()
	nt := &newton{p: p, n: n, nf: float64(n), cols: columnsOf(p.A), workers: p.fg.Workers(),
		pos: make([]int, d), rng: rand.New(rand.NewPCG(1, 0x6e))}
	nt.rho, nt.lam, nt.lo, nt.hi = splitReg(p.Reg)
	nt.colParts = nnzParts(nt.cols.ptr, nt.workers)
	nt.hval = make([]float64, len(nt.cols.val))
	nt.hd = make([]float64, d)
	nt.r = make([]float64, n)
	nf, rho, lam, lo, hi := nt.nf, nt.rho, nt.lam, nt.lo, nt.hi
	cols, hval, hd, r := nt.cols, nt.hval, nt.hd, nt.r
	pm := kernels.NewParMul(p.A, nt.workers)

	x := make([]float64, d)
	if opt.X0 != nil {
		for j, v := range opt.X0 {
			x[j] = min(max(v, lo), hi)
		}
	} else {
		p.Reg.Init(x)
	}
	m := make([]float64, n)     // margins A x
	lv := make([]float64, n)    // l(m_i, y_i)
	dv := make([]float64, n)    // l'(m_i, y_i)
	h := make([]float64, n)     // l''(m_i, y_i)
	g := make([]float64, d)     // grad f(x) + rho x
	delta := make([]float64, d) // the Newton direction
	active := make([]int, 0, d)

	res := RefResult{Method: "newton"}
	pm.MulVec(x, m)
	res.Evals++
	innerTol := 0.1
	var phi float64
	for k := 1; k <= maxIter; k++ {
		if ctx.Err() != nil {
			break
		}
		res.Iters = k
		// The loss, its derivative and curvature per row; the gradient.
		var loss float64
		for i, mi := range m {
			lv[i], dv[i] = p.Loss.ValueDeriv(mi, p.Y[i])
			h[i] = curvature(p.Loss, mi, p.Y[i])
			loss += lv[i]
		}
		pm.MulTransVec(dv, g)
		res.Evals++
		var xsq, reg1 float64
		for j := range g {
			g[j] = g[j]/nf + rho*x[j]
			xsq += x[j] * x[j]
			reg1 += nt.psi(x[j])
		}
		phi = loss/nf + 0.5*rho*xsq + reg1
		if math.IsNaN(phi) || math.IsInf(phi, 0) {
			break
		}
		scaleTo := math.Max(math.Abs(phi), 1e-300)
		// The model's diagonal and h_i a_ij / n per entry, by column blocks.
		kernels.Parallel(len(nt.colParts)-1, func(w int) {
			for j := nt.colParts[w]; j < nt.colParts[w+1]; j++ {
				var s float64
				for q := cols.ptr[j]; q < cols.ptr[j+1]; q++ {
					hv := h[cols.row[q]] * cols.val[q] / nf
					hval[q] = hv
					s += hv * cols.val[q]
				}
				hd[j] = s + rho + newtonNu
			}
		})
		// The coordinate-wise optimality measure K = sum_j H_jj s_j^2 of
		// the one-coordinate steps s_j from x, and the active set: every
		// coordinate but those at a kink (0 of the L1 term, a bound) whose
		// step stays 0 even with the gradient moved by a margin.
		var kkt float64
		active = active[:0]
		for j := range x {
			xj, hjj := x[j], hd[j]
			s := nt.step(xj-g[j]/hjj, hjj) - xj
			kkt += hjj * s * s
			if s == 0 && (xj == lo || xj == hi || (lam > 0 && xj == 0)) {
				mg := 1e-3 * lam
				if nt.step(xj-(g[j]+mg)/hjj, hjj) == xj && nt.step(xj-(g[j]-mg)/hjj, hjj) == xj {
					continue
				}
			}
			active = append(active, j)
		}
		res.MapNorm = math.Sqrt(kkt)
		if kkt == 0 {
			res.Converged = true
			break
		}
		// Minimize the model
		//   q(delta) = g.delta + 1/2 delta^T (A^T diag(h) A / n + (rho + nu) I) delta + sum_j psi(x_j + delta_j)
		// over the active set: on its explicit Hessian when that is small
		// (exactly by Cholesky when psi is 0), else by coordinate descent
		// over the columns.
		clear(delta)
		var innerOK bool
		if gm := nt.gramOf(active, h); gm != nil {
			innerOK = nt.solveGram(ctx, gm, active, x, g, delta, max(1e-12, min(innerTol, innerTol*innerTol)), &res)
			pm.MulVec(delta, r)
			res.Evals++
		} else {
			innerOK = nt.solveColumns(ctx, active, x, g, delta, r, innerTol, &res)
		}
		if ctx.Err() != nil {
			break
		}
		// The model's decrease Delta = g.delta + Psi1(x + delta) - Psi1(x)
		// (the quadratic term left out, as in newGLMNET's line search).
		var dec, dsq, xd float64
		for _, j := range active {
			dj := delta[j]
			dec += g[j]*dj + nt.psi(x[j]+dj) - nt.psi(x[j])
			dsq += dj * dj
			xd += x[j] * dj
		}
		res.RelDecrease = -dec / scaleTo
		if !(dec < 0) {
			// No descent direction: x minimizes the model up to rounding.
			res.Converged = innerOK && kkt <= tol*scaleTo
			break
		}
		done := -dec <= tol*scaleTo && kkt <= tol*scaleTo
		// Armijo line search along delta: phi(x + t delta) - phi(x) <= sigma t Delta,
		// t = 1, 1/2, ..., the loss part summed as per-row differences.
		t, accepted := 1.0, false
		var newLoss float64
		for ls := 0; ls < newtonMaxLS; ls++ {
			var dl, d1 float64
			newLoss = 0
			for i := range m {
				li := p.Loss.Value(m[i]+t*r[i], p.Y[i])
				newLoss += li
				dl += li - lv[i]
			}
			for _, j := range active {
				d1 += nt.psi(x[j]+t*delta[j]) - nt.psi(x[j])
			}
			diff := dl/nf + rho*(t*xd+0.5*t*t*dsq) + d1
			if diff <= newtonSigma*t*dec {
				accepted = true
				break
			}
			t /= 2
		}
		if !accepted {
			// No decrease along a descent direction: rounding dominates,
			// which is convergence when the step's promise was that small.
			res.Converged = -dec <= 1e3*tol*scaleTo && kkt <= 1e3*tol*scaleTo
			break
		}
		for _, j := range active {
			x[j] = min(max(x[j]+t*delta[j], lo), hi)
		}
		pm.MulVec(x, m) // exact margins: no drift from the updates of r
		res.Evals++
		if opt.Progress != nil && !opt.Progress(k, newLoss/nf+p.Reg.Value(x)) {
			break
		}
		if done {
			res.Converged = true
			break
		}
		innerTol = max(1e-6, min(0.1, res.RelDecrease))
	}
	res.X, res.Phi, res.NNZ = x, p.Objective(x), NNZ(x)
	res.Evals++
	return res, ctx.Err()
}

// evenRows splits [0, n) into at most workers blocks.
func evenRows(n, workers int) []int {
	workers = max(1, min(workers, n))
	parts := make([]int, workers+1)
	for w := range parts {
		parts[w] = n * w / workers
	}
	return parts
}

// nnzParts splits the columns of ptr into at most workers blocks with about
// equal numbers of entries; it returns the boundaries.
func nnzParts(ptr []int64, workers int) []int {
	d := len(ptr) - 1
	if workers < 1 || d < 4*workers {
		workers = 1
	}
	parts := make([]int, 1, workers+1)
	total := ptr[d]
	j := 0
	for w := 1; w < workers; w++ {
		target := total * int64(w) / int64(workers)
		for j < d && ptr[j] < target {
			j++
		}
		parts = append(parts, j)
	}
	return append(parts, d)
}
