package data

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Task is what a generated label is: a class or a real target.
type Task int

const (
	Classification Task = iota // labels -1/+1: the sign of the noisy planted margin
	Regression                 // labels: the planted margin plus Gaussian noise
	Multiclass                 // labels 1..K: the argmax of K noisy planted margins (GenConfig.Classes)
)

// ParseTask parses "classification" or "regression".
func ParseTask(s string) (Task, error) {
	switch s {
	case "classification":
		return Classification, nil
	case "regression":
		return Regression, nil
	case "multiclass":
		return Multiclass, nil
	}
	return 0, fmt.Errorf("data: unknown task %q (want classification, regression or multiclass)", s)
}

func (t Task) String() string {
	if t == Regression {
		return "regression"
	}
	if t == Multiclass {
		return "multiclass"
	}
	return "classification"
}

// MaxGenFeatures bounds GenConfig.Features for sparse data: the sampler
// keeps 12 bytes per feature (alias table) shared, 4 per feature per worker
// (marks), and, for skewed rows where rejection gives up, a sum tree of 16
// bytes per feature (rounded up to a power of two) per worker.
const MaxGenFeatures = 1 << 26

// GenConfig describes a synthetic data set. The zero value is not valid:
// set Rows, Features and Density at least (Validate says what is wrong).
//
// Each row has k nonzeros, k = Density*Features rounded up or down at random
// so that the expected density is exactly Density (at least 1). The k
// features are drawn without replacement with popularity proportional to
// j^-Zipf for the 1-based feature j, so low indices are common and high ones
// rare, as words in text (Zipf = 0: uniform; 1: like natural language). The
// values are N(0,1), then the row is scaled to unit Euclidean norm (like
// rcv1). A planted model w* with N(0,1) entries gives the margin m = x.w*;
// the label is sign(m + Noise*N(0,1)) (Classification, written -1/+1) or
// m + Noise*N(0,1) (Regression). Density 1 writes dense rows (every index).
//
// Output depends only on the config (not on Workers): each block of
// genBlock rows draws from its own PCG stream seeded by (Seed, block).
type GenConfig struct {
	Rows     int
	Features int
	Density  float64 // expected fraction of nonzeros per row, in (0, 1]
	Zipf     float64 // feature popularity exponent, in [0, 10]
	Task     Task
	Classes  int     // Multiclass: the number of classes K, 2..LabelCap (the planted W is Features x K)
	Noise    float64 // standard deviation of the Gaussian noise on the margin, >= 0
	Seed     uint64
	Digits   int // significant digits of values and targets; 0 means 6
	Workers  int // goroutines formatting rows; 0 means GOMAXPROCS
}

// Validate reports the first invalid field.
func (c GenConfig) Validate() error {
	switch {
	case c.Rows < 1:
		return fmt.Errorf("data: gen: rows %d, want >= 1", c.Rows)
	case c.Features < 1 || c.Features > maxIndex:
		return fmt.Errorf("data: gen: features %d, want 1..%d", c.Features, maxIndex)
	case !(c.Density > 0 && c.Density <= 1):
		return fmt.Errorf("data: gen: density %g, want 0 < density <= 1", c.Density)
	case c.Density < 1 && c.Features > MaxGenFeatures:
		return fmt.Errorf("data: gen: features %d, want <= %d for sparse data", c.Features, MaxGenFeatures)
	case c.Density == 1 && float64(c.Features)*float64(c.Rows) > 1<<40:
		return fmt.Errorf("data: gen: dense %dx%d is more than 2^40 values", c.Rows, c.Features)
	case !(c.Zipf >= 0 && c.Zipf <= 10):
		return fmt.Errorf("data: gen: zipf %g, want 0..10", c.Zipf)
	case c.Task != Classification && c.Task != Regression && c.Task != Multiclass:
		return fmt.Errorf("data: gen: unknown task %d", c.Task)
	case c.Task == Multiclass && (c.Classes < 2 || c.Classes > LabelCap):
		return fmt.Errorf("data: gen: %d classes, want 2..%d", c.Classes, LabelCap)
	case c.Task == Multiclass && float64(c.Features)*float64(c.Classes) > 1<<28:
		return fmt.Errorf("data: gen: a planted W of %d x %d is more than 2^28 weights", c.Features, c.Classes)
	case !(c.Noise >= 0) || math.IsInf(c.Noise, 0):
		return fmt.Errorf("data: gen: noise %g, want a finite value >= 0", c.Noise)
	case c.Digits < 0 || c.Digits > 17:
		return fmt.Errorf("data: gen: digits %d, want 0..17", c.Digits)
	case c.Workers < 0:
		return fmt.Errorf("data: gen: workers %d, want >= 0", c.Workers)
	}
	return nil
}

// GenStats summarizes what Generate wrote.
type GenStats struct {
	Rows, NNZ, Bytes int64
	Positive         int64 // rows labelled +1 (Classification)
}

// genBlock is the number of rows generated from one random stream.
const genBlock = 1024

// Generate writes the data set described by c to w in LIBSVM format. If
// progress is not nil it is called from Generate's goroutine after each
// block of rows with the totals so far. It stops at the first write error.
func Generate(w io.Writer, c GenConfig, progress func(GenStats)) (GenStats, error) {
	var st GenStats
	if err := c.Validate(); err != nil {
		return st, err
	}
	if c.Digits == 0 {
		c.Digits = 6
	}
	model := make([]float64, c.Features*c.classes())
	mr := rand.New(rand.NewPCG(c.Seed, 0))
	for j := range model {
		model[j] = mr.NormFloat64()
	}
	var table *aliasTable
	if c.Density < 1 {
		weights := make([]float64, c.Features)
		for j := range weights {
			weights[j] = math.Pow(float64(j+1), -c.Zipf)
		}
		table = newAliasTable(weights)
	}
	workers := c.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if table != nil {
		// Keep the workers' marks and (possible) fallback trees within about 1 GiB.
		perWorker := 4*int64(c.Features) + 16*int64(nextPow2(c.Features))
		workers = int(max(1, min(int64(workers), (1<<30)/perWorker)))
	}
	nblocks := (c.Rows + genBlock - 1) / genBlock

	// A producer hands out blocks in order and queues each block's result
	// channel on order in the same order; workers fill the channels; this
	// goroutine writes the results in order. After a write error, workers
	// skip the remaining blocks and the queue is drained.
	var stop atomic.Bool
	jobs := make(chan genJob, workers)
	order := make(chan chan genResult, 2*workers)
	go func() {
		defer close(order)
		defer close(jobs)
		for b := 0; b < nblocks && !stop.Load(); b++ {
			ch := make(chan genResult, 1)
			order <- ch
			jobs <- genJob{b, ch}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			g := newRowGen(c, model, table)
			for j := range jobs {
				if stop.Load() {
					j.out <- genResult{}
					continue
				}
				j.out <- g.block(j.b)
			}
		})
	}
	var err error
	for ch := range order {
		r := <-ch
		if err != nil {
			continue
		}
		if r.err != nil {
			err = r.err
			stop.Store(true)
			continue
		}
		n, werr := w.Write(r.buf)
		st.Bytes += int64(n)
		if werr != nil {
			err = fmt.Errorf("data: gen: %w", werr)
			stop.Store(true)
			continue
		}
		st.Rows += int64(r.rows)
		st.NNZ += r.nnz
		st.Positive += r.pos
		if progress != nil {
			progress(st)
		}
	}
	wg.Wait()
	return st, err
}

type genJob struct {
	b   int
	out chan genResult
}

type genResult struct {
	buf      []byte
	rows     int
	nnz, pos int64
	err      error
}

// rowGen generates blocks of rows; each worker owns one.
type rowGen struct {
	c       GenConfig
	model   []float64        // planted w*, shared read-only
	s       *distinctSampler // nil for dense rows
	idx     []int32
	val     []float64
	lastLen int // bytes of the previous block, to size the next buffer
	margins []float64
}

func newRowGen(c GenConfig, model []float64, a *aliasTable) *rowGen {
	g := &rowGen{c: c, model: model}
	if a != nil {
		g.s = newDistinctSampler(a)
	}
	return g
}

// block generates block b: rows [b*genBlock, min((b+1)*genBlock, Rows)).
func (g *rowGen) block(b int) genResult {
	c := g.c
	r := rand.New(rand.NewPCG(c.Seed, uint64(b)+1))
	lo, hi := b*genBlock, min((b+1)*genBlock, c.Rows)
	res := genResult{buf: make([]byte, 0, g.lastLen+g.lastLen/8), rows: hi - lo}
	d := c.Features
	for range hi - lo {
		g.idx = g.idx[:0]
		if g.s == nil {
			for j := range d {
				g.idx = append(g.idx, int32(j))
			}
		} else {
			kf := c.Density * float64(d)
			k := int(kf)
			if r.Float64() < kf-float64(k) {
				k++
			}
			g.idx = g.s.draw(r, min(max(k, 1), d), g.idx)
			slices.Sort(g.idx)
		}
		g.val = g.val[:0]
		var norm2 float64
		for range g.idx {
			v := r.NormFloat64()
			norm2 += v * v
			g.val = append(g.val, v)
		}
		if norm2 == 0 {
			g.val[0], norm2 = 1, 1
		}
		scale := 1 / math.Sqrt(norm2)
		if c.Task == Multiclass {
			for k := range g.val {
				g.val[k] *= scale
			}
			var err error
			res.buf, err = AppendRow(res.buf, float64(g.argmaxClass(r)+1), g.idx, g.val, c.Digits)
			if err != nil {
				res.err = err
				return res
			}
			res.nnz += int64(len(g.idx))
			continue
		}
		var m float64
		for k, j := range g.idx {
			g.val[k] *= scale
			m += g.val[k] * g.model[j]
		}
		y := m + c.Noise*r.NormFloat64()
		if c.Task == Classification {
			if y >= 0 {
				y = 1
				res.pos++
			} else {
				y = -1
			}
		}
		var err error
		res.buf, err = AppendRow(res.buf, y, g.idx, g.val, c.Digits)
		if err != nil {
			res.err = err
			return res
		}
		res.nnz += int64(len(g.idx))
	}
	g.lastLen = len(res.buf)
	return res
}

// classes is the number of columns of the planted model: K for Multiclass,
// else 1.
func (c GenConfig) classes() int {
	if c.Task == Multiclass {
		return c.Classes
	}
	return 1
}

// argmaxClass returns the class (0-based) of the current row: the argmax
// over c of x.W[:,c] + noise*N(0,1), W the planted model (row-major by
// feature, Features x K).
func (g *rowGen) argmaxClass(r *rand.Rand) int {
	k := g.c.Classes
	if cap(g.margins) < k {
		g.margins = make([]float64, k)
	}
	m := g.margins[:k]
	clear(m)
	for t, j := range g.idx {
		w := g.model[int(j)*k : int(j)*k+k]
		for c := range m {
			m[c] += g.val[t] * w[c]
		}
	}
	best := 0
	for c := range m {
		m[c] += g.c.Noise * r.NormFloat64()
		if m[c] > m[best] {
			best = c
		}
	}
	return best
}
