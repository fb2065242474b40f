// Package kernelbench is `asyncmb bench kernels`: it times the loss and
// gradient kernels of package kernels on real and generated matrices against
// the streaming-read bandwidth and a scipy.sparse/numpy baseline measured in
// the same run. It imports only kernels and the standard library: the caller
// loads the LIBSVM files (package data) and passes the matrices in.
package kernelbench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
)

// Options is what Run times. Cases are the loaded real matrices (labels
// -1/+1, Path the file the baseline script reads); Run adds a random dense
// matrix of DenseRows x DenseCols.
type Options struct {
	Cases                []Case
	DenseRows, DenseCols int
	Reps, Warmup, Rounds int
	Workers              int
	Python, Script       string // Python == "": no baseline
}

// Validate names the first field out of range.
func (o Options) Validate() error {
	switch {
	case o.Reps < 1:
		return fmt.Errorf("Reps %d: want N >= 1", o.Reps)
	case o.Rounds < 1:
		return fmt.Errorf("Rounds %d: want N >= 1", o.Rounds)
	case o.Warmup < 0:
		return fmt.Errorf("Warmup %d: want N >= 0", o.Warmup)
	case o.Workers < 1:
		return fmt.Errorf("Workers %d: want N >= 1", o.Workers)
	}
	return nil
}

// ParseShape parses "ROWSxCOLS" with both in [1, 1<<16].
func ParseShape(s string) (int, int, error) {
	r, c, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return 0, 0, errors.New("want ROWSxCOLS, for example 4096x1024")
	}
	rows, err1 := strconv.Atoi(r)
	cols, err2 := strconv.Atoi(c)
	if err1 != nil || err2 != nil || rows < 1 || cols < 1 || rows > 1<<16 || cols > 1<<16 {
		return 0, 0, errors.New("want ROWSxCOLS with both between 1 and 65536")
	}
	return rows, cols, nil
}

// FindScript returns rel if it exists in the
// working directory, else the copy next to the binary (bin/../bench/...).
func FindScript(rel string) string {
	if _, err := os.Stat(rel); err == nil {
		return rel
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "..", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return rel
}

// Case is one input matrix of the kernel benchmark.
type Case struct {
	Name string
	Path string // the LIBSVM file, "" for the generated dense matrix
	M    kernels.Matrix
	Y    []float64
}

// kernelTiming is one timed kernel: op names the kernel, workers its goroutines.
type kernelTiming struct {
	cases    string
	op       string
	workers  int
	medianNs float64
	nnz      int64 // stored entries touched per call
	bytes    int64 // bytes the kernel must move per call
	theirNs  float64
	theirHow string
}

// Run times every kernel on cfg.Cases and the dense matrix and prints the table to w.
func Run(cfg Options, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cases := make([]*Case, 0, len(cfg.Cases)+1)
	for i := range cfg.Cases {
		cases = append(cases, &cfg.Cases[i])
	}
	cases = append(cases, DenseCase(cfg.DenseRows, cfg.DenseCols))
	fmt.Fprintf(w, "asyncmb bench kernels: %s %s/%s, %d CPUs, GOMAXPROCS %d, dense kernels: %s; %d warm-up + %d timed runs per kernel (median), best of %d rounds\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), kernels.DenseKernels(), cfg.Warmup, cfg.Reps, cfg.Rounds)
	workerSet := []int{1}
	if cfg.Workers > 1 {
		workerSet = append(workerSet, cfg.Workers)
	}
	stream := map[int]float64{}
	for _, wk := range workerSet {
		stream[wk] = StreamReadGBs(wk)
	}
	fmt.Fprintf(w, "streaming read (sum of a 128 MiB float64 array, best of 5):")
	for _, wk := range workerSet {
		fmt.Fprintf(w, " %d goroutine(s) %.1f GB/s;", wk, stream[wk])
	}
	fmt.Fprintln(w)

	// Each round times every kernel and then runs the baseline script; the
	// table shows, per kernel and side, the smallest of the rounds' medians,
	// so a burst of load from other processes hits both sides alike.
	var timings []*kernelTiming
	var baseline map[string]baselineTime
	var note string
	for round := range cfg.Rounds {
		var ts []*kernelTiming
		for _, bc := range cases {
			ts = append(ts, timeProducts(cfg, bc, workerSet)...)
		}
		for _, bc := range cases {
			ts = append(ts, timeGradients(cfg, bc, workerSet)...)
		}
		if round == 0 {
			timings = ts
		} else {
			for i, t := range ts {
				timings[i].medianNs = min(timings[i].medianNs, t.medianNs)
			}
		}
		var b map[string]baselineTime
		b, note = runBaseline(cfg, cases)
		if b == nil {
			continue
		}
		if baseline == nil {
			baseline = b
		}
		for k, v := range b {
			if v.ns < baseline[k].ns {
				baseline[k] = v
			}
		}
	}
	for _, t := range timings {
		if b, ok := baseline[t.cases+"/"+t.op]; ok {
			t.theirNs, t.theirHow = b.ns, b.form
		}
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tkernel\tgoroutines\tmedian us\tns/nnz\tGB/s\tx stream\tbaseline us\tours/theirs\tbaseline form\t")
	for _, t := range timings {
		gbs := float64(t.bytes) / t.medianNs
		base, ratio := "-", "-"
		if t.theirNs > 0 {
			base = fmt.Sprintf("%.1f", t.theirNs/1e3)
			ratio = fmt.Sprintf("%.2f", t.medianNs/t.theirNs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.3f\t%.2f\t%.2f\t%s\t%s\t%s\t\n",
			t.cases, t.op, t.workers, t.medianNs/1e3, t.medianNs/float64(t.nnz), gbs, gbs/stream[t.workers],
			base, ratio, orDash(t.theirHow))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, note)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DenseCase is a random rows x cols matrix of standard normal entries with
// +-1 labels (seeded: the same matrix in every run).
func DenseCase(rows, cols int) *Case {
	rng := rand.New(rand.NewPCG(1, 2))
	d := &kernels.Dense{Rows: rows, Cols: cols, Data: make([]float64, rows*cols)}
	for i := range d.Data {
		d.Data[i] = rng.NormFloat64()
	}
	y := make([]float64, d.Rows)
	for i := range y {
		y[i] = float64(2*rng.IntN(2) - 1)
	}
	return &Case{Name: fmt.Sprintf("dense%dx%d", d.Rows, d.Cols), M: kernels.Matrix{Dense: d}, Y: y}
}

// medianNs runs f warmup times untimed, then reps times timed, and returns
// the median time in nanoseconds. It collects garbage first so that a
// background GC cycle (which takes one of two cores) does not run during
// the timed calls; the kernels themselves do not allocate.
func medianNs(warmup, reps int, f func()) float64 {
	runtime.GC()
	for range warmup {
		f()
	}
	ts := make([]float64, reps)
	for i := range ts {
		t0 := time.Now()
		f()
		ts[i] = float64(time.Since(t0).Nanoseconds())
	}
	slices.Sort(ts)
	return ts[len(ts)/2]
}

// ProductBytes is what A x or A^T r must move: every stored entry (value and,
// for CSR, its int32 column index), the row offsets, and both vectors.
func ProductBytes(m kernels.Matrix) int64 {
	n, d := m.Dims()
	nnz := int64(m.NNZ())
	if m.CSR != nil {
		return nnz*12 + int64(n+1)*8 + int64(n)*8 + int64(d)*8
	}
	return nnz*8 + int64(n)*8 + int64(d)*8
}

func randVector(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// timeProducts times A x and A^T r with each goroutine count.
func timeProducts(cfg Options, bc *Case, workerSet []int) []*kernelTiming {
	n, d := bc.M.Dims()
	rng := rand.New(rand.NewPCG(3, 4))
	x, r := randVector(rng, d), randVector(rng, n)
	ax, atr := make([]float64, n), make([]float64, d)
	var out []*kernelTiming
	for _, wk := range workerSet {
		p := kernels.NewParMul(bc.M, wk)
		common := kernelTiming{cases: bc.Name, workers: p.Workers(), nnz: int64(bc.M.NNZ()), bytes: ProductBytes(bc.M)}
		t := common
		t.op = "Ax"
		t.medianNs = medianNs(cfg.Warmup, cfg.Reps, func() { p.MulVec(x, ax) })
		out = append(out, &t)
		t2 := common
		t2.op = "ATr"
		t2.medianNs = medianNs(cfg.Warmup, cfg.Reps, func() { p.MulTransVec(r, atr) })
		out = append(out, &t2)
	}
	return out
}

// timeGradients times the logistic mini-batch gradient (b = 64 and 256, a
// new batch each call, dense output and for CSR sparse output) and the full
// loss and gradient with each goroutine count.
func timeGradients(cfg Options, bc *Case, workerSet []int) []*kernelTiming {
	const batches = 64
	n, d := bc.M.Dims()
	rng := rand.New(rand.NewPCG(5, 6))
	x := randVector(rng, d)
	for j := range x {
		x[j] *= 0.1
	}
	g := make([]float64, d)
	l := kernels.Logistic
	var out []*kernelTiming
	for _, b := range []int{64, 256} {
		sets := make([][]int, batches)
		var nnz int64
		for k := range sets {
			sets[k] = make([]int, b)
			for j := range sets[k] {
				i := rng.IntN(n)
				sets[k][j] = i
				nnz += int64(bc.M.RowNNZ(i))
			}
		}
		nnz /= batches
		entryBytes := int64(8)
		if bc.M.CSR != nil {
			entryBytes = 12
		}
		k := 0
		next := func() []int { k++; return sets[k%batches] }
		t := &kernelTiming{cases: bc.Name, op: fmt.Sprintf("grad b=%d dense", b), workers: 1, nnz: nnz,
			bytes: nnz*entryBytes + int64(b)*24 + int64(d)*8}
		if a := bc.M.CSR; a != nil {
			t.medianNs = medianNs(cfg.Warmup, cfg.Reps, func() { kernels.GradBatchCSR(l, a, bc.Y, next(), x, g) })
			acc := kernels.NewSparseAcc(d)
			var sv kernels.SparseVec
			ts := &kernelTiming{cases: bc.Name, op: fmt.Sprintf("grad b=%d sparse", b), workers: 1, nnz: nnz,
				bytes: nnz*entryBytes + int64(b)*24}
			ts.medianNs = medianNs(cfg.Warmup, cfg.Reps, func() { acc.GradBatchCSR(l, a, bc.Y, next(), x, &sv) })
			out = append(out, t, ts)
		} else {
			t.medianNs = medianNs(cfg.Warmup, cfg.Reps, func() { kernels.GradBatchDense(l, bc.M.Dense, bc.Y, next(), x, g) })
			out = append(out, t)
		}
	}
	for _, wk := range workerSet {
		f := kernels.NewFullGrad(bc.M, bc.Y, wk)
		t := &kernelTiming{cases: bc.Name, op: "full loss+grad", workers: f.Workers(), nnz: int64(bc.M.NNZ()),
			bytes: ProductBytes(bc.M) + int64(n)*8 + int64(d)*8}
		t.medianNs = medianNs(cfg.Warmup, max(cfg.Reps/5, 1), func() { f.Eval(l, x, g) })
		out = append(out, t)
	}
	return out
}

// StreamReadGBs is the streaming-read bandwidth in GB/s: the best of five
// sums of a 128 MiB float64 array (four times this machine's L3) split across
// workers goroutines.
func StreamReadGBs(workers int) float64 {
	buf := make([]float64, 16<<20)
	for i := range buf {
		buf[i] = 1
	}
	return kernels.StreamBandwidth(buf, workers, 5)
}

// baselineRow is one line of the baseline script's output.
type baselineRow struct {
	Case string  `json:"case"`
	Op   string  `json:"op"`
	NS   float64 `json:"ns"`
	Form string  `json:"form"`
	NNZ  int64   `json:"nnz"`
}

type baselineTime struct {
	ns   float64
	form string
}

// runBaseline runs the scipy/numpy script and returns its medians keyed by
// "case/op", and a line saying what ran (or why nothing did).
func runBaseline(cfg Options, cases []*Case) (map[string]baselineTime, string) {
	if cfg.Python == "" {
		return nil, "baseline: skipped (--python is empty); our figures only"
	}
	if _, err := os.Stat(cfg.Python); err != nil {
		return nil, fmt.Sprintf("baseline: %s not found (install Debian's python3-scipy python3-sklearn); our figures only", cfg.Python)
	}
	if _, err := os.Stat(cfg.Script); err != nil {
		return nil, fmt.Sprintf("baseline: script %s not found (see --script); our figures only", cfg.Script)
	}
	args := []string{cfg.Script, "--reps", strconv.Itoa(cfg.Reps), "--warmup", strconv.Itoa(cfg.Warmup)}
	for _, bc := range cases {
		if bc.Path != "" {
			args = append(args, bc.Path)
		} else {
			args = append(args, "--dense", fmt.Sprintf("%dx%d", bc.M.Dense.Rows, bc.M.Dense.Cols))
		}
	}
	cmd := exec.Command(cfg.Python, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") || strings.HasPrefix(kv, "OPENBLAS_L2_SIZE=")
	})
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:] // the exception line, e.g. ModuleNotFoundError: No module named 'scipy'
		}
		return nil, fmt.Sprintf("baseline: %s %s failed (%v: %s); our figures only", cfg.Python, cfg.Script, err, msg)
	}
	out := map[string]baselineTime{}
	var versions string
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"versions"`)) {
			versions = strings.TrimSpace(string(line))
			continue
		}
		var row baselineRow
		if err := json.Unmarshal(line, &row); err != nil || row.Case == "" || row.NS <= 0 {
			return nil, fmt.Sprintf("baseline: unexpected output line %q; our figures only", line)
		}
		out[row.Case+"/"+row.Op] = baselineTime{ns: row.NS, form: row.Form}
	}
	return out, fmt.Sprintf("baseline: %s %s (median of %d after %d warm-up, best of %d rounds; scipy.sparse is single-threaded, numpy/OpenBLAS uses its own threads) %s",
		cfg.Python, cfg.Script, cfg.Reps, cfg.Warmup, cfg.Rounds, versions)
}
