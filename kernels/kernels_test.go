package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The reference loops below are the oracle for the optimized kernels: one
// plain loop each, written straight from the definitions, using Value and
// Deriv separately (not ValueDeriv).

// Each reference writes into dst (allocated when nil) and returns it.

func refMulVec(a *CSR, x, dst []float64) []float64 {
	dst = zeroed(dst, a.Rows)
	for i := range dst {
		for k := a.Indptr[i]; k < a.Indptr[i+1]; k++ {
			dst[i] += a.Data[k] * x[a.Indices[k]]
		}
	}
	return dst
}

func refMulTransVec(a *CSR, r, dst []float64) []float64 {
	dst = zeroed(dst, a.Cols)
	for i := range r {
		for k := a.Indptr[i]; k < a.Indptr[i+1]; k++ {
			dst[a.Indices[k]] += a.Data[k] * r[i]
		}
	}
	return dst
}

// refGrad returns (1/b) sum_{i in rows} l(a_i.x, y_i) and its gradient.
func refGrad(l Loss, a *CSR, y []float64, rows []int, x, g []float64) (float64, []float64) {
	g = zeroed(g, a.Cols)
	var loss float64
	for _, i := range rows {
		var m float64
		for k := a.Indptr[i]; k < a.Indptr[i+1]; k++ {
			m += a.Data[k] * x[a.Indices[k]]
		}
		loss += l.Value(m, y[i])
		d := l.Deriv(m, y[i])
		for k := a.Indptr[i]; k < a.Indptr[i+1]; k++ {
			g[a.Indices[k]] += d * a.Data[k]
		}
	}
	if len(rows) == 0 {
		return 0, g
	}
	b := float64(len(rows))
	for j := range g {
		g[j] /= b
	}
	return loss / b, g
}

// zeroed returns dst cleared, or a new zero slice of length n if dst is nil.
func zeroed(dst []float64, n int) []float64 {
	if dst == nil {
		return make([]float64, n)
	}
	clear(dst)
	return dst
}

// refObjective is (1/b) sum_{i in rows} l(a_i.x, y_i) alone, for finite differences.
func refObjective(l Loss, a *CSR, y []float64, rows []int, x []float64) float64 {
	v, _ := refGrad(l, a, y, rows, x, nil)
	return v
}

// randCSR returns an n x d CSR with row lengths drawn from [0, maxRow]
// (including empty rows and lengths that are not multiples of 4) and its
// dense copy.
func randCSR(rng *rand.Rand, n, d, maxRow int) (*CSR, *Dense) {
	a := &CSR{Rows: n, Cols: d, Indptr: make([]int64, n+1)}
	dense := &Dense{Rows: n, Cols: d, Data: make([]float64, n*d)}
	for i := 0; i < n; i++ {
		k := rng.IntN(min(maxRow, d) + 1)
		cols := sampleCols(rng, d, k)
		for _, j := range cols {
			v := rng.NormFloat64()
			a.Indices = append(a.Indices, int32(j))
			a.Data = append(a.Data, v)
			dense.Data[i*d+j] = v
		}
		a.Indptr[i+1] = int64(len(a.Indices))
	}
	if err := a.Check(); err != nil {
		panic(err)
	}
	return a, dense
}

// sampleCols returns k distinct sorted columns of [0, d).
func sampleCols(rng *rand.Rand, d, k int) []int {
	if 4*k > d {
		cols := rng.Perm(d)[:k]
		slices.Sort(cols)
		return cols
	}
	set := make(map[int]bool, k)
	cols := make([]int, 0, k)
	for len(cols) < k {
		if j := rng.IntN(d); !set[j] {
			set[j] = true
			cols = append(cols, j)
		}
	}
	slices.Sort(cols)
	return cols
}

// denseAsCSR returns the CSR form of a dense matrix, storing every entry.
func denseAsCSR(a *Dense) *CSR {
	c := &CSR{Rows: a.Rows, Cols: a.Cols, Indptr: make([]int64, a.Rows+1)}
	for i := 0; i < a.Rows; i++ {
		for j := 0; j < a.Cols; j++ {
			c.Indices = append(c.Indices, int32(j))
			c.Data = append(c.Data, a.Data[i*a.Cols+j])
		}
		c.Indptr[i+1] = int64(len(c.Indices))
	}
	return c
}

func randVec(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

// labels returns targets for loss l: +-1 for classification, reals otherwise.
func labels(rng *rand.Rand, l Loss, n int) []float64 {
	y := make([]float64, n)
	for i := range y {
		if l.Classification() {
			y[i] = float64(2*rng.IntN(2) - 1)
		} else {
			y[i] = 3 * rng.NormFloat64()
		}
	}
	return y
}

var losses = []Loss{Logistic, Squared, SqHinge}

// guardLen is the width of the NaN bands around a guarded vector.
const guardLen = 17

// checkGuards fails the test if a band around v (made by guarded) was written.
func checkGuards(t *testing.T, name string, v []float64) {
	t.Helper()
	full := v[:cap(v)]
	for k := len(v); k < len(full); k++ {
		if !math.IsNaN(full[k]) {
			t.Errorf("%s: write past the end at offset %d: %v", name, k-len(v), full[k])
			return
		}
	}
	// Go cannot reslice below a slice's start, so guardedVec records the
	// leading band.
	if front, ok := fronts[&v[:1][0]]; ok {
		for k, f := range front {
			if !math.IsNaN(f) {
				t.Errorf("%s: write before the start at offset %d: %v", name, k-len(front), f)
				return
			}
		}
	}
}

// fronts maps a guarded vector's first element to its leading NaN band.
var fronts = map[*float64][]float64{}

// guardedVec returns a slice of length n (initialised from init if not nil,
// else zero) that sits between two bands of NaN, in the manner of gonum's
// newGuardedVector: a kernel that reads past either end picks up NaN, and one
// that writes past them changes a band, which checkGuards reports. The
// slice's capacity reaches into the trailing band on purpose.
func guardedVec(n int, init []float64) []float64 {
	buf := make([]float64, n+2*guardLen+1)
	for i := range buf {
		buf[i] = math.NaN()
	}
	v := buf[guardLen : guardLen+n]
	if init != nil {
		copy(v, init)
	} else {
		clear(v)
	}
	if n > 0 {
		fronts[&v[0]] = buf[:guardLen]
	}
	return v
}

func near(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*(1+math.Max(math.Abs(a), math.Abs(b)))
}

func checkClose(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	for j := range got {
		if !near(got[j], want[j], tol) {
			t.Fatalf("%s[%d] = %.17g, want %.17g", name, j, got[j], want[j])
		}
	}
}

func TestLevel1MatchesPlainLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 70; n++ {
		x, y := randVec(rng, n, 1), randVec(rng, n, 1)
		var want float64
		for i := range x {
			want += x[i] * y[i]
		}
		if got := DotDense(guardedVec(n, x), guardedVec(n, y)); !near(got, want, 1e-14) {
			t.Errorf("DotDense n=%d: %v, want %v", n, got, want)
		}
		yy := guardedVec(n, y)
		AxpyDense(0.5, guardedVec(n, x), yy)
		for i := range yy {
			if w := y[i] + 0.5*x[i]; !near(yy[i], w, 1e-15) { // FMA rounds once
				t.Fatalf("AxpyDense n=%d: y[%d]=%v, want %v", n, i, yy[i], w)
			}
		}
		checkGuards(t, "AxpyDense y", yy)

		d := 40 + 2*n
		idx := make([]int32, n)
		for k, j := range rng.Perm(d)[:min(n, d)] {
			idx[k] = int32(j)
		}
		slices.Sort(idx)
		xd := randVec(rng, d, 1)
		want = 0
		for k, j := range idx {
			want += x[k] * xd[j]
		}
		if got := DotSparse(idx, guardedVec(n, x), guardedVec(d, xd)); !near(got, want, 1e-14) {
			t.Errorf("DotSparse n=%d: %v, want %v", n, got, want)
		}
		yd := guardedVec(d, xd)
		AxpySparse(-2, idx, x, yd)
		for k, j := range idx {
			if w := xd[j] - 2*x[k]; yd[j] != w {
				t.Fatalf("AxpySparse n=%d: y[%d]=%v, want %v", n, j, yd[j], w)
			}
		}
		checkGuards(t, "AxpySparse y", yd)
	}
}

func TestProductsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range []struct{ n, d, maxRow int }{{0, 5, 3}, {1, 1, 1}, {7, 3, 3}, {13, 9, 9}, {50, 37, 11}, {203, 70, 30}} {
		a, dense := randCSR(rng, sz.n, sz.d, sz.maxRow)
		x, r := randVec(rng, sz.d, 1), randVec(rng, sz.n, 1)
		wantAx, wantATr := refMulVec(a, x, nil), refMulTransVec(a, r, nil)
		name := fmt.Sprintf("%dx%d", sz.n, sz.d)

		dst := guardedVec(sz.n, nil)
		MulVecCSR(a, guardedVec(sz.d, x), dst)
		checkClose(t, name+" MulVecCSR", dst, wantAx, 1e-13)
		checkGuards(t, name+" MulVecCSR", dst)

		dst = guardedVec(sz.n, nil)
		MulVecDense(dense, guardedVec(sz.d, x), dst)
		checkClose(t, name+" MulVecDense", dst, wantAx, 1e-13)
		checkGuards(t, name+" MulVecDense", dst)

		// Transposed products start from garbage in dst: they must overwrite it.
		dstT := guardedVec(sz.d, randVec(rng, sz.d, 9))
		MulTransVecCSR(a, guardedVec(sz.n, r), dstT)
		checkClose(t, name+" MulTransVecCSR", dstT, wantATr, 1e-13)
		checkGuards(t, name+" MulTransVecCSR", dstT)

		dstT = guardedVec(sz.d, randVec(rng, sz.d, 9))
		MulTransVecDense(dense, guardedVec(sz.n, r), dstT)
		checkClose(t, name+" MulTransVecDense", dstT, wantATr, 1e-13)
		checkGuards(t, name+" MulTransVecDense", dstT)

		for workers := 1; workers <= 8; workers++ {
			for _, m := range []Matrix{{CSR: a}, {Dense: dense}} {
				p := NewParMul(m, workers)
				dst := guardedVec(sz.n, randVec(rng, sz.n, 9))
				p.MulVec(guardedVec(sz.d, x), dst)
				checkClose(t, fmt.Sprintf("%s ParMul(%d).MulVec dense=%v", name, workers, m.Dense != nil), dst, wantAx, 1e-13)
				checkGuards(t, "ParMul.MulVec", dst)
				dstT := guardedVec(sz.d, randVec(rng, sz.d, 9))
				p.MulTransVec(guardedVec(sz.n, r), dstT)
				checkClose(t, fmt.Sprintf("%s ParMul(%d).MulTransVec dense=%v", name, workers, m.Dense != nil), dstT, wantATr, 1e-13)
				checkGuards(t, "ParMul.MulTransVec", dstT)
			}
		}
	}
}

// TestParMulLargeReduction covers the column-split reduction, which only runs
// for d >= 1<<14.
func TestParMulLargeReduction(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, _ := randCSR(rng, 300, 1<<15, 200)
	r := randVec(rng, a.Rows, 1)
	want := refMulTransVec(a, r, nil)
	for workers := 1; workers <= 8; workers++ {
		dst := guardedVec(a.Cols, randVec(rng, a.Cols, 1))
		NewParMul(Matrix{CSR: a}, workers).MulTransVec(r, dst)
		checkClose(t, fmt.Sprintf("workers=%d", workers), dst, want, 1e-13)
		checkGuards(t, "dst", dst)
	}
}

func TestLogisticLargeMargins(t *testing.T) {
	for _, tc := range []struct {
		m, y      float64
		val, der  float64
		valTolAbs float64
	}{
		{m: 1000, y: 1, val: 0, der: 0},
		{m: -1000, y: 1, val: 1000, der: -1},
		{m: 1000, y: -1, val: 1000, der: 1},
		{m: -1000, y: -1, val: 0, der: 0},
		{m: 1e300, y: 1, val: 0, der: 0},
		{m: -1e300, y: 1, val: 1e300, der: -1},
		{m: 1e300, y: -1, val: 1e300, der: 1},
		{m: -1e300, y: -1, val: 0, der: 0},
		{m: 0, y: 1, val: math.Ln2, der: -0.5},
		{m: 30, y: 1, val: math.Exp(-30), der: -math.Exp(-30)},
		{m: -30, y: 1, val: 30 + math.Exp(-30), der: -1},
	} {
		v, d := Logistic.Value(tc.m, tc.y), Logistic.Deriv(tc.m, tc.y)
		v2, d2 := Logistic.ValueDeriv(tc.m, tc.y)
		for _, got := range [][2]float64{{v, d}, {v2, d2}} {
			if math.IsNaN(got[0]) || math.IsInf(got[0], 0) || math.IsNaN(got[1]) || math.IsInf(got[1], 0) {
				t.Errorf("m=%g y=%g: value %v deriv %v not finite", tc.m, tc.y, got[0], got[1])
			}
			if !near(got[0], tc.val, 1e-12) || !near(got[1], tc.der, 1e-12) {
				t.Errorf("m=%g y=%g: value %v deriv %v, want %v %v", tc.m, tc.y, got[0], got[1], tc.val, tc.der)
			}
		}
	}
}

func TestValueDerivMatchesValueAndDeriv(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, l := range losses {
		for k := 0; k < 2000; k++ {
			m := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3))
			y := labels(rng, l, 1)[0]
			v, d := l.ValueDeriv(m, y)
			if !near(v, l.Value(m, y), 1e-14) || !near(d, l.Deriv(m, y), 1e-14) {
				t.Fatalf("%v m=%g y=%g: ValueDeriv (%v, %v), Value %v Deriv %v", l, m, y, v, d, l.Value(m, y), l.Deriv(m, y))
			}
		}
	}
}

// TestDerivFiniteDifference checks l' against the central difference of l.
func TestDerivFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, l := range losses {
		for k := 0; k < 500; k++ {
			m := 4 * rng.NormFloat64()
			y := labels(rng, l, 1)[0]
			if l == SqHinge && math.Abs(1-y*m) < 1e-3 {
				continue // l' is continuous there but l'' jumps; the difference is less accurate
			}
			h := 1e-6
			fd := (l.Value(m+h, y) - l.Value(m-h, y)) / (2 * h)
			if !near(l.Deriv(m, y), fd, 1e-6) {
				t.Fatalf("%v m=%g y=%g: Deriv %v, central difference %v", l, m, y, l.Deriv(m, y), fd)
			}
		}
	}
}

func randRows(rng *rand.Rand, n, b int) []int {
	rows := make([]int, b)
	for k := range rows {
		rows[k] = rng.IntN(n) // with replacement: repeats happen
	}
	return rows
}

func TestGradBatchMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, sz := range []struct{ n, d, maxRow, b int }{{5, 3, 3, 0}, {5, 3, 3, 1}, {40, 9, 9, 7}, {300, 61, 20, 64}, {500, 200, 40, 256}} {
		a, dense := randCSR(rng, sz.n, sz.d, sz.maxRow)
		for _, l := range losses {
			name := fmt.Sprintf("%v %dx%d b=%d", l, sz.n, sz.d, sz.b)
			y := labels(rng, l, sz.n)
			x := randVec(rng, sz.d, 0.7)
			rows := randRows(rng, sz.n, sz.b)
			wantLoss, wantG := refGrad(l, a, y, rows, x, nil)

			g := guardedVec(sz.d, randVec(rng, sz.d, 5))
			loss := GradBatchCSR(l, a, guardedVec(sz.n, y), rows, guardedVec(sz.d, x), g)
			if !near(loss, wantLoss, 1e-13) {
				t.Errorf("%s GradBatchCSR loss %v, want %v", name, loss, wantLoss)
			}
			checkClose(t, name+" GradBatchCSR", g, wantG, 1e-13)
			checkGuards(t, name+" GradBatchCSR", g)

			g = guardedVec(sz.d, randVec(rng, sz.d, 5))
			loss = GradBatchDense(l, dense, guardedVec(sz.n, y), rows, guardedVec(sz.d, x), g)
			if !near(loss, wantLoss, 1e-13) {
				t.Errorf("%s GradBatchDense loss %v, want %v", name, loss, wantLoss)
			}
			checkClose(t, name+" GradBatchDense", g, wantG, 1e-13)
			checkGuards(t, name+" GradBatchDense", g)
		}
	}
}

// TestGradBatchFiniteDifference checks the mini-batch gradient of both
// layouts against central differences of the reference objective.
func TestGradBatchFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	a, dense := randCSR(rng, 60, 11, 11)
	rows := randRows(rng, a.Rows, 25)
	for _, l := range losses {
		y := labels(rng, l, a.Rows)
		x := randVec(rng, a.Cols, 0.3)
		g := make([]float64, a.Cols)
		gd := make([]float64, a.Cols)
		GradBatchCSR(l, a, y, rows, x, g)
		GradBatchDense(l, dense, y, rows, x, gd)
		const h = 1e-6
		for j := range x {
			xp, xm := slices.Clone(x), slices.Clone(x)
			xp[j] += h
			xm[j] -= h
			fd := (refObjective(l, a, y, rows, xp) - refObjective(l, a, y, rows, xm)) / (2 * h)
			if !near(g[j], fd, 1e-6) || !near(gd[j], fd, 1e-6) {
				t.Errorf("%v: d/dx[%d]: CSR %v, dense %v, central difference %v", l, j, g[j], gd[j], fd)
			}
		}
	}
}

// TestSparseAccMatchesDense checks that the sparse gradient lists exactly the
// touched entries of the dense gradient, in order, and leaves its scratch
// zero; both the bitmap sweep (small d) and the sort (huge d) paths run.
func TestSparseAccMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, sz := range []struct{ n, d, maxRow, b int }{{30, 7, 7, 5}, {200, 300, 30, 64}, {100, 1 << 20, 50, 3}, {100, 1 << 16, 80, 256}} {
		a, _ := randCSR(rng, sz.n, sz.d, sz.maxRow)
		acc := NewSparseAcc(sz.d)
		var out SparseVec
		for _, l := range losses {
			for rep := 0; rep < 3; rep++ { // reuse: scratch must come back clean
				name := fmt.Sprintf("%v %dx%d b=%d rep %d", l, sz.n, sz.d, sz.b, rep)
				y := labels(rng, l, sz.n)
				x := randVec(rng, sz.d, 0.5)
				rows := randRows(rng, sz.n, sz.b)
				g := make([]float64, sz.d)
				want := GradBatchCSR(l, a, y, rows, x, g)
				got := acc.GradBatchCSR(l, a, y, rows, x, &out)
				if got != want {
					t.Fatalf("%s: loss %v, dense path %v", name, got, want)
				}
				touched := make([]bool, sz.d)
				for _, i := range rows {
					idx, _ := a.Row(i)
					for _, j := range idx {
						touched[j] = true
					}
				}
				if len(out.Val) != out.Len() {
					t.Fatalf("%s: len(Idx)=%d len(Val)=%d", name, out.Len(), len(out.Val))
				}
				k := 0
				for j := range g {
					if !touched[j] {
						continue
					}
					if k >= out.Len() || out.Idx[k] != int32(j) {
						t.Fatalf("%s: entry %d should be index %d, got %v", name, k, j, out.Idx[k:min(k+3, out.Len())])
					}
					if out.Val[k] != g[j] {
						t.Fatalf("%s: value at %d = %v, dense %v", name, j, out.Val[k], g[j])
					}
					k++
				}
				if k != out.Len() {
					t.Fatalf("%s: %d entries listed, %d touched", name, out.Len(), k)
				}
				for j, v := range acc.scratch {
					if v != 0 {
						t.Fatalf("%s: scratch[%d] = %v after the call", name, j, v)
					}
				}
				for w, word := range acc.seen {
					if word != 0 {
						t.Fatalf("%s: seen word %d = %x after the call", name, w, word)
					}
				}
			}
		}
	}
}

func TestFullGradWorkersMatchSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	a, dense := randCSR(rng, 157, 40, 25)
	all := make([]int, a.Rows)
	for i := range all {
		all[i] = i
	}
	for _, l := range losses {
		y := labels(rng, l, a.Rows)
		x := randVec(rng, a.Cols, 0.4)
		wantLoss, wantG := refGrad(l, a, y, all, x, nil)
		for workers := 1; workers <= 8; workers++ {
			for _, m := range []Matrix{{CSR: a}, {Dense: dense}} {
				name := fmt.Sprintf("%v workers=%d dense=%v", l, workers, m.Dense != nil)
				f := NewFullGrad(m, y, workers)
				g := guardedVec(a.Cols, randVec(rng, a.Cols, 3))
				loss := f.Eval(l, guardedVec(a.Cols, x), g)
				if !near(loss, wantLoss, 1e-13) {
					t.Errorf("%s: loss %v, serial %v", name, loss, wantLoss)
				}
				checkClose(t, name, g, wantG, 1e-13)
				checkGuards(t, name, g)
				if loss2 := f.Eval(l, x, nil); !near(loss2, wantLoss, 1e-13) {
					t.Errorf("%s: loss without gradient %v, serial %v", name, loss2, wantLoss)
				}
				margins := guardedVec(a.Rows, nil)
				f.Margins(x, margins)
				checkClose(t, name+" Margins", margins, refMulVec(a, x, nil), 1e-13)
				checkGuards(t, name+" Margins", margins)
			}
		}
	}
}

// TestFullGradLargeD runs the parallel column reduction of FullGrad (d >= 1<<14).
func TestFullGradLargeD(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	a, _ := randCSR(rng, 120, 1<<15, 300)
	all := make([]int, a.Rows)
	for i := range all {
		all[i] = i
	}
	y := labels(rng, Logistic, a.Rows)
	x := randVec(rng, a.Cols, 0.1)
	wantLoss, wantG := refGrad(Logistic, a, y, all, x, nil)
	for workers := 1; workers <= 4; workers++ {
		g := guardedVec(a.Cols, nil)
		loss := NewFullGrad(Matrix{CSR: a}, y, workers).Eval(Logistic, x, g)
		if !near(loss, wantLoss, 1e-13) {
			t.Errorf("workers=%d: loss %v, serial %v", workers, loss, wantLoss)
		}
		checkClose(t, fmt.Sprintf("workers=%d", workers), g, wantG, 1e-13)
		checkGuards(t, "g", g)
	}
}

// TestDenseMatchesCSRForm checks the dense kernels against the CSR kernels on
// a fully stored matrix with shapes that are not multiples of the unrolling.
func TestDenseMatchesCSRForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, sz := range [][2]int{{1, 1}, {3, 5}, {4, 4}, {9, 7}, {17, 33}} {
		dense := &Dense{Rows: sz[0], Cols: sz[1], Data: randVec(rng, sz[0]*sz[1], 1)}
		c := denseAsCSR(dense)
		x, r := randVec(rng, sz[1], 1), randVec(rng, sz[0], 1)
		got, want := make([]float64, sz[0]), refMulVec(c, x, nil)
		MulVecDense(dense, x, got)
		checkClose(t, fmt.Sprint(sz, " A x"), got, want, 1e-13)
		gotT := make([]float64, sz[1])
		MulTransVecDense(dense, r, gotT)
		checkClose(t, fmt.Sprint(sz, " A^T r"), gotT, refMulTransVec(c, r, nil), 1e-13)
	}
}

func TestShapeMismatchPanics(t *testing.T) {
	a := &CSR{Rows: 2, Cols: 3, Indptr: []int64{0, 1, 2}, Indices: []int32{0, 2}, Data: []float64{1, 2}}
	d := &Dense{Rows: 2, Cols: 3, Data: make([]float64, 6)}
	v2, v3, v4 := make([]float64, 2), make([]float64, 3), make([]float64, 4)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"MulVecCSR x", func() { MulVecCSR(a, v2, v2) }},
		{"MulVecCSR dst", func() { MulVecCSR(a, v3, v3) }},
		{"MulTransVecCSR", func() { MulTransVecCSR(a, v3, v3) }},
		{"MulVecDense", func() { MulVecDense(d, v4, v2) }},
		{"MulTransVecDense", func() { MulTransVecDense(d, v2, v2) }},
		{"GradBatchCSR g", func() { GradBatchCSR(Logistic, a, v2, []int{0}, v3, v4) }},
		{"GradBatchDense y", func() { GradBatchDense(Logistic, d, v3, []int{0}, v3, v3) }},
		{"SparseAcc d", func() { NewSparseAcc(4).GradBatchCSR(Logistic, a, v2, []int{0}, v3, &SparseVec{}) }},
		{"FullGrad x", func() { NewFullGrad(Matrix{CSR: a}, v2, 2).Eval(Logistic, v2, nil) }},
		{"NewFullGrad y", func() { NewFullGrad(Matrix{CSR: a}, v3, 2) }},
		{"ParMul.MulVec", func() { NewParMul(Matrix{CSR: a}, 2).MulVec(v3, v3) }},
		{"ParMul.MulTransVec", func() { NewParMul(Matrix{Dense: d}, 2).MulTransVec(v3, v3) }},
		{"DotDense", func() { DotDense(v2, v3) }},
		{"AxpySparse", func() { AxpySparse(1, []int32{0}, v2, v3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || len(s) < 9 || s[:9] != "kernels: " {
					t.Errorf("panic %v, want a \"kernels: \" message", r)
				}
			}()
			tc.f()
		})
	}
}
