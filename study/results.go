package study

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/ranks"
)

// Point is one row of a run's trace.csv: the output's relative
// suboptimality after T updates and WallS seconds of training (divided by
// the dilation).
type Point struct {
	T     int64
	WallS float64
	Rel   float64 // of the output (the average the run reports)
	// RelLast is the last iterate's (NaN when the file has no such column).
	RelLast float64
	// Phi and PhiLast are the objectives of the output and of the last
	// iterate (NaN when the file has no such column).
	Phi, PhiLast float64
}

// Record is one run's figures. Times are seconds of training (the
// master's loop), divided by the run's dilation factor.
type Record struct {
	Run
	Err        string
	CmdS       float64 // the whole command (start, read, rendezvous, train, evaluate, write)
	StopReason string
	TrainS     float64
	Updates    int64
	UpdPerS    float64
	Epochs     float64
	FinalRel   float64
	DelayMean  float64
	DelayP50   int64
	DelayP99   int64
	DelayMax   int64
	DelayHist  []int64
	IdleFrac   float64 // workers' idle time / (idle + compute), over all workers
	MasterBusy float64
	BytesWire  uint64
	WirePerUpd float64
	// Per target (Spec.Targets order): time and updates to reach it (NaN,
	// -1 when not reached), speedup and efficiency against P = 1.
	TimeTo     []float64
	UpdatesTo  []int64
	Speedup    []float64
	Efficiency []float64
	Trace      []Point
	// TargetMissed: the run had a --target and stopped before it.
	TargetMissed bool
	// Slope is the log-log slope of the output's suboptimality against t
	// over the trace's last RateDecades decades (see TailSlope).
	Slope float64
}

// ReadSummary reads a run's summary.json.
func ReadSummary(path string) (*ranks.Summary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := new(ranks.Summary)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("study: %s: %w", path, err)
	}
	return s, nil
}

// load reads the run's summary.json and trace.csv.
func (r *Record) load(targets []float64) error {
	s, err := ReadSummary(filepath.Join(r.Dir, "summary.json"))
	if err != nil {
		return err
	}
	f := r.Dilate
	if f < 1 {
		f = 1
	}
	r.StopReason, r.TrainS, r.Updates, r.UpdPerS, r.Epochs = s.StopReason, s.TrainS/f, s.Updates, s.UpdatesPerSec*f, s.Epochs
	r.DelayMean, r.DelayP50, r.DelayP99, r.DelayMax, r.DelayHist = s.Delay.Mean, s.Delay.P50, s.Delay.P99, s.Delay.Max, s.Delay.Hist
	var idle, busy float64
	for _, w := range s.PerWorker {
		idle += w.IdleS
		busy += w.ComputeS
	}
	if idle+busy > 0 {
		r.IdleFrac = idle / (idle + busy)
	}
	r.MasterBusy, r.BytesWire, r.WirePerUpd = s.Master.BusyFraction, s.Comm.BytesWire, s.Comm.WireBytesPerUpdate
	r.TargetMissed = s.Target != nil && !s.Target.Reached
	r.FinalRel = math.NaN()
	if s.Final != nil {
		r.FinalRel = s.Final.RelAvg
	}
	r.Trace, err = ReadTrace(filepath.Join(r.Dir, "trace.csv"), f)
	if err != nil {
		return err
	}
	r.Slope = TailSlope(r.Trace, RateDecades)
	r.TimeTo, r.UpdatesTo = make([]float64, len(targets)), make([]int64, len(targets))
	for i, eps := range targets {
		r.TimeTo[i], r.UpdatesTo[i] = math.NaN(), -1
		for _, p := range r.Trace {
			if p.Rel <= eps {
				r.TimeTo[i], r.UpdatesTo[i] = p.WallS, p.T
				break
			}
		}
	}
	return nil
}

// ReadTrace reads a run's trace.csv (the columns t, wall_s and
// rel_subopt_avg), dividing times by dilate.
func ReadTrace(path string, dilate float64) ([]Point, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReader(f))
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("study: %s: %w", path, err)
	}
	col := func(name string) int { return slices.Index(head, name) }
	it, iw, ir, il := col("t"), col("wall_s"), col("rel_subopt_avg"), col("rel_subopt_last")
	ip, ipl := col("phi_avg"), col("phi_last")
	if it < 0 || iw < 0 || ir < 0 {
		return nil, fmt.Errorf("study: %s: want columns t, wall_s and rel_subopt_avg, have %v", path, head)
	}
	if dilate < 1 {
		dilate = 1
	}
	var pts []Point
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err != nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("study: %s: %w", path, err)
		}
		t, err1 := strconv.ParseInt(rec[it], 10, 64)
		w, err2 := strconv.ParseFloat(rec[iw], 64)
		rel, err3 := strconv.ParseFloat(rec[ir], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("study: %s:%d: bad number in %q", path, line, strings.Join(rec, ","))
		}
		opt := func(i int) float64 {
			if i < 0 {
				return math.NaN()
			}
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				return math.NaN()
			}
			return v
		}
		pts = append(pts, Point{T: t, WallS: w / dilate, Rel: rel, RelLast: opt(il), Phi: opt(ip), PhiLast: opt(ipl)})
	}
	return pts, nil
}

// Result is a finished sweep.
type Result struct {
	Spec    Spec
	Records []Record
}

// derive fills speedup and efficiency against the median time of P = 1 of
// the same configuration (weak scaling: the scaled speedup P T(1)/T(P)).
func (res *Result) derive() {
	nt := len(res.Spec.Targets)
	for i := range res.Records {
		r := &res.Records[i]
		r.Speedup, r.Efficiency = nanSlice(nt), nanSlice(nt)
		if r.Err != "" || r.TimeTo == nil {
			continue
		}
		k := r.key()
		k.Workers = 1
		for j := range nt {
			t1 := res.median(k, j)
			if math.IsNaN(t1) || math.IsNaN(r.TimeTo[j]) || r.TimeTo[j] <= 0 {
				continue
			}
			s := t1 / r.TimeTo[j]
			if res.Spec.Weak {
				s *= float64(r.Workers)
			}
			r.Speedup[j], r.Efficiency[j] = s, s/float64(r.Workers)
		}
	}
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// group returns the successful records of a configuration.
func (res *Result) group(k Key) []*Record {
	var out []*Record
	for i := range res.Records {
		r := &res.Records[i]
		if r.Err == "" && r.TimeTo != nil && r.key() == k {
			out = append(out, r)
		}
	}
	return out
}

// median is the median time to target j of a configuration over its
// repeats; a repeat that did not reach the target counts as +Inf, so the
// median is NaN when fewer than half reached it.
func (res *Result) median(k Key, j int) float64 {
	return medianOf(res.group(k), func(r *Record) float64 { return r.TimeTo[j] })
}

func medianOf(rs []*Record, f func(*Record) float64) float64 {
	if len(rs) == 0 {
		return math.NaN()
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
		if math.IsNaN(v[i]) {
			v[i] = math.Inf(1)
		}
	}
	m := Median(v)
	if math.IsInf(m, 1) {
		return math.NaN()
	}
	return m
}

// Median is the median of v (the mean of the middle two for even len); v
// is sorted in place. NaN for an empty v.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// keys returns the configurations of the sweep in plan order.
func (res *Result) keys() []Key {
	var ks []Key
	for i := range res.Records {
		k := res.Records[i].key()
		if !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.SortStableFunc(ks, func(a, b Key) int {
		if c := strings.Compare(a.Mode+a.Method+a.Step, b.Mode+b.Method+b.Step); c != 0 {
			return c
		}
		for _, d := range []float64{float64(a.Batch - b.Batch), a.Slowdown - b.Slowdown, float64(a.NetDelay - b.NetDelay), float64(a.Workers - b.Workers)} {
			if d != 0 {
				if d < 0 {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	return ks
}

// TargetLabel names a target in column names: 1e-2, 0.05.
func TargetLabel(eps float64) string {
	e := math.Log10(eps)
	if math.Abs(e-math.Round(e)) < 1e-9 {
		return fmt.Sprintf("1e%d", int(math.Round(e)))
	}
	return strconv.FormatFloat(eps, 'g', -1, 64)
}

// CSVColumns are scale.csv's columns; per target T they end with time_T,
// updates_T, speedup_T and efficiency_T.
func CSVColumns(targets []float64) []string {
	cols := []string{"id", "workers", "mode", "method", "batch", "slowdown", "net_delay_s", "dilate", "rep", "seed", "data",
		"status", "error", "stop_reason", "cmd_s", "train_s", "updates", "updates_per_s", "epochs", "final_rel_subopt",
		"delay_mean", "delay_p50", "delay_p99", "delay_max", "idle_frac", "master_busy", "bytes_wire", "wire_bytes_per_update", "step", "slope"}
	for _, e := range targets {
		l := TargetLabel(e)
		cols = append(cols, "time_"+l, "updates_"+l, "speedup_"+l, "efficiency_"+l)
	}
	return cols
}

func fmtF(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func (r *Record) csvRow() []string {
	status := "ok"
	if r.Err != "" {
		status = "failed"
	}
	row := []string{r.ID, strconv.Itoa(r.Workers), r.Mode, r.Method, strconv.Itoa(r.Batch), fmtF(r.Slowdown),
		fmtF(r.NetDelay.Seconds()), fmtF(r.Dilate), strconv.Itoa(r.Rep), strconv.FormatUint(r.Seed, 10), r.Data,
		status, r.Err, r.StopReason, fmtF(r.CmdS), fmtF(r.TrainS), strconv.FormatInt(r.Updates, 10), fmtF(r.UpdPerS), fmtF(r.Epochs),
		fmtF(r.FinalRel), fmtF(r.DelayMean), strconv.FormatInt(r.DelayP50, 10), strconv.FormatInt(r.DelayP99, 10),
		strconv.FormatInt(r.DelayMax, 10), fmtF(r.IdleFrac), fmtF(r.MasterBusy), strconv.FormatUint(r.BytesWire, 10), fmtF(r.WirePerUpd), r.Step, ""}
	if r.Err == "" {
		row[len(row)-1] = fmtF(r.Slope)
	}
	for j := range r.TimeTo {
		u := ""
		if r.UpdatesTo[j] >= 0 {
			u = strconv.FormatInt(r.UpdatesTo[j], 10)
		}
		row = append(row, fmtF(r.TimeTo[j]), u, fmtF(r.Speedup[j]), fmtF(r.Efficiency[j]))
	}
	return row
}

// line is the progress line of a finished run.
func (r *Record) line(targets []float64) string {
	if r.Err != "" {
		return r.ID + ": FAILED: " + r.Err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s after %d updates in %.3g s", r.ID, r.StopReason, r.Updates, r.TrainS)
	for j, e := range targets {
		if math.IsNaN(r.TimeTo[j]) {
			fmt.Fprintf(&b, "; %s not reached", TargetLabel(e))
		} else {
			fmt.Fprintf(&b, "; %s at %.3g s (%d updates)", TargetLabel(e), r.TimeTo[j], r.UpdatesTo[j])
		}
	}
	return b.String()
}

// Write writes scale.csv, scale.md and the figures into dir.
func (res *Result) Write(dir string) error {
	if err := writeAtomic(filepath.Join(dir, "scale.csv"), func(f *os.File) error {
		w := csv.NewWriter(f)
		_ = w.Write(CSVColumns(res.Spec.Targets))
		for i := range res.Records {
			r := &res.Records[i]
			if r.Speedup == nil {
				r.Speedup, r.Efficiency = nanSlice(len(res.Spec.Targets)), nanSlice(len(res.Spec.Targets))
			}
			if r.TimeTo == nil {
				r.TimeTo, r.UpdatesTo = nanSlice(len(res.Spec.Targets)), make([]int64, len(res.Spec.Targets))
				for j := range r.UpdatesTo {
					r.UpdatesTo[j] = -1
				}
			}
			_ = w.Write(r.csvRow())
		}
		w.Flush()
		return w.Error()
	}); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "scale.md"), func(f *os.File) error {
		_, err := f.WriteString(res.Markdown())
		return err
	}); err != nil {
		return err
	}
	return res.Figures(dir)
}

func writeAtomic(path string, fill func(*os.File) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// Markdown renders the sweep's table: per configuration, medians over the
// repeats.
func (res *Result) Markdown() string {
	sp := &res.Spec
	var b strings.Builder
	fmt.Fprintf(&b, "# Scaling sweep\n\n")
	fmt.Fprintf(&b, "data `%s`, %d repeat(s), times in seconds of training", sp.Data, sp.Repeat)
	if sp.Dilate > 1 {
		fmt.Fprintf(&b, " divided by the dilation factor %g", sp.Dilate)
	}
	if sp.Weak {
		b.WriteString(", weak scaling (data grow with P; speedup is the scaled speedup P T(1)/T(P))")
	}
	fmt.Fprintf(&b, "; medians over the repeats (a repeat that missed a target counts as infinitely slow).\n\nFlags of every run: `%s`\n\n", strings.Join(sp.TrainArgs, " "))
	b.WriteString("| mode | method | batch | slow | net delay | P | reached |")
	for _, e := range sp.Targets {
		l := TargetLabel(e)
		fmt.Fprintf(&b, " time to %s | updates to %s | upd. vs P=1 | speedup %s | eff. |", l, l, l)
	}
	b.WriteString(" upd/s | mean delay | p99 delay | idle | master busy | wire B/upd |\n|")
	for range 7 + 5*len(sp.Targets) + 6 {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, k := range res.keys() {
		g := res.group(k)
		total := 0
		for i := range res.Records {
			if res.Records[i].key() == k {
				total++
			}
		}
		method := k.Method
		if method == "" {
			method = "-"
		}
		if k.Step != "" {
			method += " " + k.Step
		}
		reached := 0
		for _, r := range g {
			if !math.IsNaN(r.TimeTo[len(sp.Targets)-1]) {
				reached++
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %g | %s | %d | %d/%d |", k.Mode, method, k.Batch, k.Slowdown, fmtDelay(k.NetDelay), k.Workers, reached, total)
		k1 := k
		k1.Workers = 1
		for j := range sp.Targets {
			t := res.median(k, j)
			u := medianOf(g, func(r *Record) float64 { return nanIfNeg(r.UpdatesTo[j]) })
			u1 := medianOf(res.group(k1), func(r *Record) float64 { return nanIfNeg(r.UpdatesTo[j]) })
			t1 := res.median(k1, j)
			s := t1 / t
			if sp.Weak {
				s *= float64(k.Workers)
			}
			fmt.Fprintf(&b, " %s | %s | %s | %s | %s |", cell(t, "%.3g"), cell(u, "%.0f"), cell(u/u1, "%.2fx"), cell(s, "%.2f"), cell(s/float64(k.Workers), "%.2f"))
		}
		fmt.Fprintf(&b, " %s | %s | %s | %s | %s | %s |\n",
			cell(medianOf(g, func(r *Record) float64 { return r.UpdPerS }), "%.0f"),
			cell(medianOf(g, func(r *Record) float64 { return r.DelayMean }), "%.2f"),
			cell(medianOf(g, func(r *Record) float64 { return float64(r.DelayP99) }), "%.0f"),
			cell(medianOf(g, func(r *Record) float64 { return r.IdleFrac }), "%.2f"),
			cell(medianOf(g, func(r *Record) float64 { return r.MasterBusy }), "%.2f"),
			cell(medianOf(g, func(r *Record) float64 { return r.WirePerUpd }), "%.0f"))
	}
	res.markdownAsyncSync(&b)
	res.markdownRates(&b)
	var failed []string
	for i := range res.Records {
		if r := &res.Records[i]; r.Err != "" {
			failed = append(failed, fmt.Sprintf("- `%s`: %s", r.ID, r.Err))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "\n%d run(s) failed:\n\n%s\n", len(failed), strings.Join(failed, "\n"))
	}
	return b.String()
}

// markdownAsyncSync adds, when the sweep has both, the ratio of sync's
// median time to async's per target.
func (res *Result) markdownAsyncSync(b *strings.Builder) {
	sp := &res.Spec
	if !slices.Contains(sp.Modes, "async") || !slices.Contains(sp.Modes, "sync") {
		return
	}
	b.WriteString("\n## async against sync\n\nMedian time to target of sync divided by async's (above 1: async is faster).\n\n| method | batch | slow | net delay | P |")
	for _, e := range sp.Targets {
		fmt.Fprintf(b, " async %s | sync %s | sync/async |", TargetLabel(e), TargetLabel(e))
	}
	b.WriteString("\n|")
	for range 5 + 3*len(sp.Targets) {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, k := range res.keys() {
		if k.Mode != "async" {
			continue
		}
		ks := k
		ks.Mode = "sync"
		method := k.Method
		if method == "" {
			method = "-"
		}
		fmt.Fprintf(b, "| %s | %d | %g | %s | %d |", method, k.Batch, k.Slowdown, fmtDelay(k.NetDelay), k.Workers)
		for j := range sp.Targets {
			ta, ts := res.median(k, j), res.median(ks, j)
			ratio := "-"
			switch {
			case !math.IsNaN(ta) && !math.IsNaN(ts):
				ratio = fmt.Sprintf("**%.2f**", ts/ta)
			case !math.IsNaN(ta):
				ratio = "sync missed it"
			}
			fmt.Fprintf(b, " %s | %s | %s |", cell(ta, "%.3g"), cell(ts, "%.3g"), ratio)
		}
		b.WriteString("\n")
	}
}

func nanIfNeg(v int64) float64 {
	if v < 0 {
		return math.NaN()
	}
	return float64(v)
}

func cell(v float64, format string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func fmtDelay(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

// ReadCSV reads a sweep's scale.csv back (for `asyncmb plot`): the records
// with their figures, the traces read again from the run directories
// named in it when they still exist.
func ReadCSV(dir string) (*Result, error) {
	path := filepath.Join(dir, "scale.csv")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("study: %s: %w", path, err)
	}
	if len(rows) < 1 {
		return nil, fmt.Errorf("study: %s is empty", path)
	}
	head := rows[0]
	idx := map[string]int{}
	for i, h := range head {
		idx[h] = i
	}
	for _, c := range CSVColumns(nil) {
		if _, ok := idx[c]; !ok && c != "step" && c != "slope" { // older sweeps have neither
			return nil, fmt.Errorf("study: %s: no column %q", path, c)
		}
	}
	res := &Result{}
	for _, h := range head {
		if l, ok := strings.CutPrefix(h, "time_"); ok {
			e, err := strconv.ParseFloat(l, 64)
			if err != nil {
				return nil, fmt.Errorf("study: %s: bad target column %q", path, h)
			}
			res.Spec.Targets = append(res.Spec.Targets, e)
		}
	}
	num := func(row []string, col string) float64 {
		v, err := strconv.ParseFloat(row[idx[col]], 64)
		if err != nil {
			return math.NaN()
		}
		return v
	}
	for _, row := range rows[1:] {
		if len(row) != len(head) {
			return nil, fmt.Errorf("study: %s: a row of %d fields under %d columns", path, len(row), len(head))
		}
		var r Record
		r.ID, r.Mode, r.Method, r.Data, r.Err, r.StopReason = row[idx["id"]], row[idx["mode"]], row[idx["method"]], row[idx["data"]], row[idx["error"]], row[idx["stop_reason"]]
		r.Slope = math.NaN()
		if i, ok := idx["step"]; ok {
			r.Step, r.Slope = row[i], num(row, "slope")
		}
		r.Workers, r.Batch, r.Rep = int(num(row, "workers")), int(num(row, "batch")), int(num(row, "rep"))
		r.Slowdown, r.Dilate = num(row, "slowdown"), num(row, "dilate")
		r.NetDelay = time.Duration(num(row, "net_delay_s") * 1e9)
		r.Dir = filepath.Join(dir, "runs", r.ID)
		if row[idx["status"]] == "ok" {
			if err := r.load(res.Spec.Targets); err != nil {
				// The run's directory is gone: keep the table's figures.
				r.Trace = nil
				r.TimeTo, r.UpdatesTo = make([]float64, len(res.Spec.Targets)), make([]int64, len(res.Spec.Targets))
				for j, e := range res.Spec.Targets {
					l := TargetLabel(e)
					r.TimeTo[j], r.UpdatesTo[j] = num(row, "time_"+l), int64(num(row, "updates_"+l))
					if math.IsNaN(num(row, "updates_"+l)) {
						r.UpdatesTo[j] = -1
					}
				}
				r.UpdPerS, r.DelayMean = num(row, "updates_per_s"), num(row, "delay_mean")
			}
		}
		res.Records = append(res.Records, r)
		if !slices.Contains(res.Spec.Workers, r.Workers) {
			res.Spec.Workers = append(res.Spec.Workers, r.Workers)
		}
		if !slices.Contains(res.Spec.Modes, r.Mode) {
			res.Spec.Modes = append(res.Spec.Modes, r.Mode)
		}
		if r.Rep > res.Spec.Repeat {
			res.Spec.Repeat = r.Rep
		}
		res.Spec.Data = r.Data
	}
	slices.Sort(res.Spec.Workers)
	res.derive()
	return res, nil
}
