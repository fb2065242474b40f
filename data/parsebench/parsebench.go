// Package parsebench is `asyncmb bench parse`: it times data.Read against
// scikit-learn's load_svmlight_file on the same files in the same run, and
// checks that both read the same data.
package parsebench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/data"
)

// sklearnParse is one file's line of bench/svmlight_sklearn.py output.
type sklearnParse struct {
	File      string  `json:"file"`
	Bytes     int64   `json:"bytes"`
	BestNs    float64 `json:"best_ns"`
	MedianNs  float64 `json:"median_ns"`
	Rows      int     `json:"rows"`
	MaxIndex  int     `json:"max_index"`
	NNZ       int     `json:"nnz"`
	SumValues float64 `json:"sum_values"`
	SumLabels float64 `json:"sum_labels"`
}

// parseTiming is our reader's best time on one file with some workers.
type parseTiming struct {
	workers int
	best    time.Duration
	d       *data.Dataset
}

// Options is what Run times: each of Files with one goroutine and with
// GOMAXPROCS, against Script (bench/svmlight_sklearn.py) run by Python.
type Options struct {
	Files          []string
	Reps           int
	Python, Script string
}

// Validate names the first field out of range.
func (o Options) Validate() error {
	if o.Reps < 1 {
		return fmt.Errorf("Reps %d: want >= 1", o.Reps)
	}
	return nil
}

// Run times both parsers on every file, prints the table to w and returns
// an error if the two parsers read different data.
func Run(o Options, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	files, reps, script := o.Files, o.Reps, o.Script
	ours := make([][]parseTiming, len(files))
	for i, f := range files {
		for _, workers := range slices.Compact([]int{1, runtime.GOMAXPROCS(0)}) {
			t, err := timeRead(f, workers, reps)
			if err != nil {
				return err
			}
			ours[i] = append(ours[i], t)
		}
	}
	args := append([]string{script, "--reps", fmt.Sprint(reps), "--warmup", "1"}, files...)
	cmd := exec.Command(o.Python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("bench parse: %s %s: %v: %s", o.Python, script, err, strings.TrimSpace(stderr.String()))
	}
	theirs, versions, err := decodeSklearn(out, len(files))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "parse: best of %d reads from the page cache after a warm-up; MB/s = file bytes / time (10^6 B/s)\n", reps)
	fmt.Fprintf(w, "baseline: %s\n", versions)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tbytes\tnnz\tasyncmb 1 thread\tasyncmb all threads\tsklearn\tratio 1 thread\tratio all threads\t")
	var errs []error
	for i, f := range files {
		s := theirs[i]
		one, all := ours[i][0], ours[i][len(ours[i])-1]
		if err := sameParse(f, one.d, s); err != nil {
			errs = append(errs, err)
		}
		sk := time.Duration(s.BestNs)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s (%d)\t%s\t%.2fx\t%.2fx\t\n", f, s.Bytes, s.NNZ,
			rate(s.Bytes, one.best), rate(s.Bytes, all.best), all.workers, rate(s.Bytes, sk),
			sk.Seconds()/one.best.Seconds(), sk.Seconds()/all.best.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// timeRead reads path once to warm up, then reps times, and returns the best.
func timeRead(path string, workers, reps int) (parseTiming, error) {
	t := parseTiming{workers: workers, best: time.Duration(math.MaxInt64)}
	opt := data.Options{Workers: workers}
	for r := -1; r < reps; r++ {
		t.d = nil
		runtime.GC() // each read starts without the previous one's garbage
		start := time.Now()
		d, err := data.Read(path, opt)
		el := time.Since(start)
		if err != nil {
			return t, err
		}
		t.d = d
		if r >= 0 {
			t.best = min(t.best, el)
		}
	}
	return t, nil
}

func rate(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.1f MB/s", float64(bytes)/d.Seconds()/1e6)
}

// decodeSklearn decodes the script's output: a versions line, then one line
// per file.
func decodeSklearn(out []byte, nfiles int) ([]sklearnParse, string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	var versions string
	var res []sklearnParse
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte(`{"versions"`)) {
			var v struct{ Versions map[string]string }
			if err := json.Unmarshal(line, &v); err != nil {
				return nil, "", fmt.Errorf("bench parse: baseline output %q: %v", line, err)
			}
			keys := []string{"python", "numpy", "scipy", "sklearn"}
			parts := make([]string, 0, len(keys))
			for _, k := range keys {
				parts = append(parts, k+" "+v.Versions[k])
			}
			versions = "sklearn.datasets.load_svmlight_file (" + strings.Join(parts, ", ") + ")"
			continue
		}
		var p sklearnParse
		if err := json.Unmarshal(line, &p); err != nil {
			return nil, "", fmt.Errorf("bench parse: baseline output %q: %v", line, err)
		}
		res = append(res, p)
	}
	if len(res) != nfiles {
		return nil, "", fmt.Errorf("bench parse: baseline reported %d files, want %d", len(res), nfiles)
	}
	return res, versions, nil
}

// sameParse checks that our reader and sklearn read the same data.
func sameParse(path string, d *data.Dataset, s sklearnParse) error {
	var sumV, sumY float64
	for _, v := range d.X.Data {
		sumV += v
	}
	for _, y := range d.Y {
		sumY += y
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b)) }
	if d.X.Rows != s.Rows || d.X.NNZ() != s.NNZ || d.MaxIndex != s.MaxIndex || !near(sumV, s.SumValues) || !near(sumY, s.SumLabels) {
		return fmt.Errorf("bench parse: %s: asyncmb read %d rows, %d nnz, max index %d, sums %g/%g; sklearn %d, %d, %d, %g/%g",
			path, d.X.Rows, d.X.NNZ(), d.MaxIndex, sumV, sumY, s.Rows, s.NNZ, s.MaxIndex, s.SumValues, s.SumLabels)
	}
	return nil
}
