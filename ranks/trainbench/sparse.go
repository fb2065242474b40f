package trainbench

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/asyncmb/asyncmb/data"
)

// sparseDims are the dimensions of the sparse part (issue 10): text-like
// data, 200000 rows of 100 nonzeros with popularity 1/j, at d = 1M and 16M.
var sparseDims = []int{1_000_000, 1 << 24}

const (
	sparseRows      = 200_000
	sparseNNZPerRow = 100
	sparseTime      = "15s"
)

// sparseData generates (once, into dir) the data set of dimension d.
func sparseData(dir string, d int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("asyncmb-sparse-%d", d))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cfg := data.GenConfig{Rows: sparseRows, Features: d, Density: float64(sparseNNZPerRow) / float64(d), Zipf: 1, Noise: 0.1, Seed: 1}
	if err := data.GenerateFile(cfg, path, io.Discard, io.Discard); err != nil {
		return "", err
	}
	return path, nil
}

// sparse is part (f): keyed pull against the full reply at d = 1M and 16M,
// 3 workers (--np 4), l1-logistic, the default method, --time 15s per run:
// updates/s, the master's busy fraction, bytes per update on the wire and
// raw during training, and the peak RSS of the master and of the largest
// worker, each the median of rounds runs. The data sets are generated into
// dir once and kept.
func sparse(w io.Writer, exe, dir string, rounds int) error {
	fmt.Fprintf(w, "(f) keyed pull (--pull keys) against the full reply (--pull all): %d rows x d, %d nonzeros per row (zipf 1), --np 4, l1-logistic lambda 1e-5, --time %s, median of %d\n",
		sparseRows, sparseNNZPerRow, sparseTime, rounds)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "d\tpull\tupdates/s\tmaster busy\twire B/update\traw B/update\tRSS master\tRSS worker (max)\tstatus")
	rate := map[string]float64{}
	for _, d := range sparseDims {
		path, err := sparseData(dir, d)
		if err != nil {
			return err
		}
		for _, pull := range []string{"all", "keys"} {
			var ups, busy, wire, raw, rssM, rssW []float64
			status := ""
			for range rounds {
				r, err := runTrain(exe, 1, "--np", "4", "--data", path, "--loss", "logistic", "--reg", "l1", "--lambda", "1e-5",
					"--pull", pull, "--time", sparseTime, "--reference=false", "--polish", "0", "--figures=false")
				if err != nil {
					return err
				}
				ups = append(ups, r.num("updates_per_s"))
				busy = append(busy, r.num("master", "busy_fraction"))
				wire = append(wire, r.num("comm", "train_wire_bytes_per_update"))
				raw = append(raw, r.num("comm", "train_raw_bytes_per_update"))
				rssM = append(rssM, r.num("master", "peak_rss_bytes"))
				rssW = append(rssW, maxWorkerRSS(r))
				if s, ok := r.summary["status"].(string); ok {
					status = s
				}
			}
			rate[strconv.Itoa(d)+pull] = median(ups)
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f%%\t%.0f\t%.0f\t%.0f MB\t%.0f MB\t%s\n", d, pull, median(ups), 100*median(busy),
				median(wire), median(raw), median(rssM)/1e6, median(rssW)/1e6, status)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lo, hi := strconv.Itoa(sparseDims[0]), strconv.Itoa(sparseDims[1])
	fmt.Fprintf(w, "keys/all: %.2fx at d=%s, %.2fx at d=%s; keys at d=%s / d=%s: %.2f\n", rate[lo+"keys"]/rate[lo+"all"], lo,
		rate[hi+"keys"]/rate[hi+"all"], hi, hi, lo, rate[hi+"keys"]/rate[lo+"keys"])
	return nil
}

func maxWorkerRSS(r benchRun) float64 {
	ws, _ := r.summary["per_worker"].([]any)
	m := math.NaN()
	for _, w := range ws {
		if o, ok := w.(map[string]any); ok {
			if v, ok := o["peak_rss_bytes"].(float64); ok && !(v <= m) {
				m = v
			}
		}
	}
	return m
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}
