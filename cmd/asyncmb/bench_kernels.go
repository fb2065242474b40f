package main

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

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:  "kernels",
		Usage: "time the loss/gradient kernels on a9a, rcv1_small and a dense matrix against scipy.sparse and numpy",
		Description: "Loads a9a and rcv1_small from --data-dir and builds a random dense matrix (--dense), times\n" +
			"A x, A^T r (one goroutine and --workers goroutines), the logistic mini-batch gradient\n" +
			"(b = 64 and 256, dense and sparse output) and the full loss+gradient, each as the median of\n" +
			"--reps runs after --warmup runs, and prints ns per stored entry, GB/s of data the kernel must\n" +
			"move, and the ratio of that to the streaming-read bandwidth measured in the same run by\n" +
			"summing a 128 MiB array. Then it runs --script with --python (Debian's python3 with\n" +
			"scipy, numpy and scikit-learn) on the same files and shape, with OPENBLAS_CORETYPE and\n" +
			"OPENBLAS_L2_SIZE removed from its environment, and prints our time / theirs for each\n" +
			"product (below 1: we are faster). All this is repeated --rounds times and each figure is\n" +
			"the smallest median of the rounds. Without python or scipy it says so and prints our\n" +
			"figures only.",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "data-dir",
				Value:   "testdata",
				EnvVars: envs("data-dir"),
				Usage:   "read a9a and rcv1_small from `DIR`",
			},
			&cli.StringFlag{
				Name:    "dense",
				Value:   "4096x1024",
				EnvVars: envs("dense"),
				Usage:   "shape `ROWSxCOLS` of the random dense matrix",
			},
			&cli.IntFlag{
				Name:    "reps",
				Value:   200,
				EnvVars: envs("reps"),
				Usage:   "timed repetitions `N` per kernel (the median is reported)",
			},
			&cli.IntFlag{
				Name:    "rounds",
				Value:   3,
				EnvVars: envs("rounds"),
				Usage:   "rounds `N` of (all kernels, then the baseline); the smallest median of the rounds is shown",
			},
			&cli.IntFlag{
				Name:    "warmup",
				Value:   5,
				EnvVars: envs("warmup"),
				Usage:   "untimed runs `N` before the timed ones",
			},
			&cli.IntFlag{
				Name:        "workers",
				Value:       runtime.NumCPU(),
				DefaultText: "number of CPUs",
				EnvVars:     envs("workers"),
				Usage:       "goroutines `N` for the parallel products and the full gradient",
			},
			&cli.StringFlag{
				Name:    "python",
				Value:   "/usr/bin/python3",
				EnvVars: envs("python"),
				Usage:   "python interpreter `PATH` for the scipy/numpy baseline; empty: skip the baseline",
			},
			&cli.StringFlag{
				Name:        "script",
				EnvVars:     envs("script"),
				DefaultText: "bench/kernels_scipy.py, else ../bench/kernels_scipy.py next to the binary",
				Usage:       "baseline script `PATH`",
			},
		},
		Action: benchKernelsAction,
	})
}

// kernelBenchConfig is what `asyncmb bench kernels` runs, checked by the action.
type kernelBenchConfig struct {
	dataDir              string
	denseRows, denseCols int
	reps, warmup, rounds int
	workers              int
	python, script       string // python == "": no baseline
}

func benchKernelsAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("bench kernels: takes no arguments, got %q", c.Args().Slice())
	}
	cfg := kernelBenchConfig{
		dataDir: c.String("data-dir"),
		reps:    c.Int("reps"),
		warmup:  c.Int("warmup"),
		rounds:  c.Int("rounds"),
		workers: c.Int("workers"),
		python:  c.String("python"),
		script:  c.String("script"),
	}
	var err error
	cfg.denseRows, cfg.denseCols, err = parseShape(c.String("dense"))
	if err != nil {
		return usagef("bench kernels: --dense %q: %v", c.String("dense"), err)
	}
	if cfg.reps < 1 {
		return usagef("bench kernels: --reps %d: want N >= 1", cfg.reps)
	}
	if cfg.rounds < 1 {
		return usagef("bench kernels: --rounds %d: want N >= 1", cfg.rounds)
	}
	if cfg.warmup < 0 {
		return usagef("bench kernels: --warmup %d: want N >= 0", cfg.warmup)
	}
	if cfg.workers < 1 {
		return usagef("bench kernels: --workers %d: want N >= 1", cfg.workers)
	}
	if cfg.python != "" && cfg.script == "" {
		cfg.script = findBaselineScript()
	}
	return runKernelBench(cfg, c.App.Writer)
}

// parseShape parses "ROWSxCOLS" with both in [1, 1<<16].
func parseShape(s string) (int, int, error) {
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

// findBaselineScript returns bench/kernels_scipy.py if it exists in the
// working directory, else the copy next to the binary (bin/../bench/...).
func findBaselineScript() string {
	const rel = "bench/kernels_scipy.py"
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

// benchCase is one input matrix of the kernel benchmark.
type benchCase struct {
	name string
	path string // the LIBSVM file, "" for the generated dense matrix
	m    kernels.Matrix
	y    []float64
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

func runKernelBench(cfg kernelBenchConfig, w io.Writer) error {
	cases, err := loadBenchCases(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "asyncmb bench kernels: %s %s/%s, %d CPUs, GOMAXPROCS %d, dense kernels: %s; %d warm-up + %d timed runs per kernel (median), best of %d rounds\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), kernels.DenseKernels(), cfg.warmup, cfg.reps, cfg.rounds)
	workerSet := []int{1}
	if cfg.workers > 1 {
		workerSet = append(workerSet, cfg.workers)
	}
	stream := map[int]float64{}
	for _, wk := range workerSet {
		stream[wk] = streamReadGBs(wk)
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
	for round := range cfg.rounds {
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

// loadBenchCases reads a9a and rcv1_small (labels mapped to -1/+1) and builds
// the random dense matrix with +-1 labels.
func loadBenchCases(cfg kernelBenchConfig) ([]*benchCase, error) {
	var cases []*benchCase
	for _, name := range []string{"a9a", "rcv1_small"} {
		path := filepath.Join(cfg.dataDir, name)
		ds, err := data.Read(path, data.Options{})
		if err != nil {
			return nil, fmt.Errorf("bench kernels: %w", err)
		}
		if _, err := ds.ToBinary(); err != nil {
			return nil, fmt.Errorf("bench kernels: %s: %w", path, err)
		}
		cases = append(cases, &benchCase{name: name, path: path, m: kernels.Matrix{CSR: &ds.X}, y: ds.Y})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	d := &kernels.Dense{Rows: cfg.denseRows, Cols: cfg.denseCols, Data: make([]float64, cfg.denseRows*cfg.denseCols)}
	for i := range d.Data {
		d.Data[i] = rng.NormFloat64()
	}
	y := make([]float64, d.Rows)
	for i := range y {
		y[i] = float64(2*rng.IntN(2) - 1)
	}
	cases = append(cases, &benchCase{name: fmt.Sprintf("dense%dx%d", d.Rows, d.Cols), m: kernels.Matrix{Dense: d}, y: y})
	return cases, nil
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

// productBytes is what A x or A^T r must move: every stored entry (value and,
// for CSR, its int32 column index), the row offsets, and both vectors.
func productBytes(m kernels.Matrix) int64 {
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
func timeProducts(cfg kernelBenchConfig, bc *benchCase, workerSet []int) []*kernelTiming {
	n, d := bc.m.Dims()
	rng := rand.New(rand.NewPCG(3, 4))
	x, r := randVector(rng, d), randVector(rng, n)
	ax, atr := make([]float64, n), make([]float64, d)
	var out []*kernelTiming
	for _, wk := range workerSet {
		p := kernels.NewParMul(bc.m, wk)
		common := kernelTiming{cases: bc.name, workers: p.Workers(), nnz: int64(bc.m.NNZ()), bytes: productBytes(bc.m)}
		t := common
		t.op = "Ax"
		t.medianNs = medianNs(cfg.warmup, cfg.reps, func() { p.MulVec(x, ax) })
		out = append(out, &t)
		t2 := common
		t2.op = "ATr"
		t2.medianNs = medianNs(cfg.warmup, cfg.reps, func() { p.MulTransVec(r, atr) })
		out = append(out, &t2)
	}
	return out
}

// timeGradients times the logistic mini-batch gradient (b = 64 and 256, a
// new batch each call, dense output and for CSR sparse output) and the full
// loss and gradient with each goroutine count.
func timeGradients(cfg kernelBenchConfig, bc *benchCase, workerSet []int) []*kernelTiming {
	const batches = 64
	n, d := bc.m.Dims()
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
				nnz += int64(bc.m.RowNNZ(i))
			}
		}
		nnz /= batches
		entryBytes := int64(8)
		if bc.m.CSR != nil {
			entryBytes = 12
		}
		k := 0
		next := func() []int { k++; return sets[k%batches] }
		t := &kernelTiming{cases: bc.name, op: fmt.Sprintf("grad b=%d dense", b), workers: 1, nnz: nnz,
			bytes: nnz*entryBytes + int64(b)*24 + int64(d)*8}
		if a := bc.m.CSR; a != nil {
			t.medianNs = medianNs(cfg.warmup, cfg.reps, func() { kernels.GradBatchCSR(l, a, bc.y, next(), x, g) })
			acc := kernels.NewSparseAcc(d)
			var sv kernels.SparseVec
			ts := &kernelTiming{cases: bc.name, op: fmt.Sprintf("grad b=%d sparse", b), workers: 1, nnz: nnz,
				bytes: nnz*entryBytes + int64(b)*24}
			ts.medianNs = medianNs(cfg.warmup, cfg.reps, func() { acc.GradBatchCSR(l, a, bc.y, next(), x, &sv) })
			out = append(out, t, ts)
		} else {
			t.medianNs = medianNs(cfg.warmup, cfg.reps, func() { kernels.GradBatchDense(l, bc.m.Dense, bc.y, next(), x, g) })
			out = append(out, t)
		}
	}
	for _, wk := range workerSet {
		f := kernels.NewFullGrad(bc.m, bc.y, wk)
		t := &kernelTiming{cases: bc.name, op: "full loss+grad", workers: f.Workers(), nnz: int64(bc.m.NNZ()),
			bytes: productBytes(bc.m) + int64(n)*8 + int64(d)*8}
		t.medianNs = medianNs(cfg.warmup, max(cfg.reps/5, 1), func() { f.Eval(l, x, g) })
		out = append(out, t)
	}
	return out
}

// streamReadGBs is the streaming-read bandwidth in GB/s: the best of five
// sums of a 128 MiB float64 array (four times this machine's L3) split across
// workers goroutines.
func streamReadGBs(workers int) float64 {
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
func runBaseline(cfg kernelBenchConfig, cases []*benchCase) (map[string]baselineTime, string) {
	if cfg.python == "" {
		return nil, "baseline: skipped (--python is empty); our figures only"
	}
	if _, err := os.Stat(cfg.python); err != nil {
		return nil, fmt.Sprintf("baseline: %s not found (install Debian's python3-scipy python3-sklearn); our figures only", cfg.python)
	}
	if _, err := os.Stat(cfg.script); err != nil {
		return nil, fmt.Sprintf("baseline: script %s not found (see --script); our figures only", cfg.script)
	}
	args := []string{cfg.script, "--reps", strconv.Itoa(cfg.reps), "--warmup", strconv.Itoa(cfg.warmup)}
	for _, bc := range cases {
		if bc.path != "" {
			args = append(args, bc.path)
		} else {
			args = append(args, "--dense", fmt.Sprintf("%dx%d", bc.m.Dense.Rows, bc.m.Dense.Cols))
		}
	}
	cmd := exec.Command(cfg.python, args...)
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
		return nil, fmt.Sprintf("baseline: %s %s failed (%v: %s); our figures only", cfg.python, cfg.script, err, msg)
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
		cfg.python, cfg.script, cfg.reps, cfg.warmup, cfg.rounds, versions)
}
