package ranks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// TraceRow is one evaluated snapshot: phi of the last iterate and of the
// output average on the full data, and their suboptimality when phi* is
// known (relative: (phi - phi*)/|phi*|).
type TraceRow struct {
	T       int64   `json:"t"`
	WallS   float64 `json:"wall_s"`
	Epochs  float64 `json:"epochs"`
	PhiLast float64 `json:"phi_last"`
	PhiAvg  float64 `json:"phi_avg"`
	RelLast float64 `json:"rel_subopt_last"`
	RelAvg  float64 `json:"rel_subopt_avg"`
	NNZLast int     `json:"nnz_last"`
	NNZAvg  int     `json:"nnz_avg"`
	// Test holds the output's held-out figures (--test), nil without.
	Test *Metrics `json:"-"`
}

// evaluateTrace evaluates every snapshot of the trace on the workers'
// shards (one Bcast of x and avg, one Reduce of two loss sums each), and
// the output on the held-out set h (if not nil). It also returns the
// output (average) of the last snapshot.
func evaluateTrace(ctx context.Context, c *comm.Comm, cfg *Config, path string, f *facts, phiStar float64, h *heldOut) ([]TraceRow, []float64, error) {
	return evaluateTraceBy(cfg, path, f, phiStar, h, func(v, res []float64) error { return round(ctx, c, estEval, v, res) })
}

// evaluateTraceBy evaluates every snapshot of the trace with lossSums,
// which puts the loss sums over the whole data set at v[:d] and v[d:] into
// res[0] and res[1], and the output on the held-out set h (if not nil).
func evaluateTraceBy(cfg *Config, path string, f *facts, phiStar float64, h *heldOut, lossSums func(v, res []float64) error) ([]TraceRow, []float64, error) {
	d := f.d
	tr, err := openTrace(path, d)
	if errors.Is(err, errTraceDim) {
		return nil, nil, fmt.Errorf("ranks: %w (the problem: %d columns x %d classes)", err, f.cols, max(f.mc.K, 1))
	}
	if err != nil {
		return nil, nil, err
	}
	defer tr.close()
	var s Snapshot
	v := make([]float64, 2*d)
	res := make([]float64, 2)
	var rows []TraceRow
	inv := 1 / float64(f.n)
	for {
		err := tr.next(&s)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		copy(v, s.X)
		copy(v[d:], s.Avg)
		if err := lossSums(v, res); err != nil {
			return nil, nil, err
		}
		row := TraceRow{
			T: s.T, WallS: float64(s.WallNs) / 1e9, Epochs: float64(s.Samples) * inv,
			PhiLast: res[0]*inv + cfg.Reg.Value(s.X), PhiAvg: res[1]*inv + cfg.Reg.Value(s.Avg),
			NNZLast: solver.NNZ(s.X), NNZAvg: solver.NNZ(s.Avg),
			RelLast: math.NaN(), RelAvg: math.NaN(),
		}
		if !math.IsNaN(phiStar) {
			row.RelLast = (row.PhiLast - phiStar) / math.Abs(phiStar)
			row.RelAvg = (row.PhiAvg - phiStar) / math.Abs(phiStar)
		}
		if h != nil {
			m := h.score(s.Avg)
			row.Test = &m
		}
		rows = append(rows, row)
	}
	return rows, s.Avg, nil
}

// Summary is summary.json: the run's manifest and its figures.
type Summary struct {
	Manifest   map[string]any `json:"manifest"`
	Data       DataInfo       `json:"data"`
	Ranks      int            `json:"ranks"`
	Workers    int            `json:"workers"`
	Hosts      []string       `json:"hosts"`
	SlurmJobID string         `json:"slurm_job_id,omitempty"`
	Mode       string         `json:"mode"`
	Problem    ProblemInfo    `json:"problem"`
	Step       StepInfo       `json:"step"`
	StopReason string         `json:"stop_reason"`
	// Status says whether the run finished: StatusComplete (a stopping
	// rule or the target), StatusInterrupted (a signal) or StatusFailed
	// (it gave up, e.g. too few workers left); the model of a run that did
	// not complete is written as model.partial.
	Status string `json:"status"`

	Updates       int64   `json:"updates"`
	Samples       int64   `json:"samples"`
	Epochs        float64 `json:"epochs"`
	TrainS        float64 `json:"train_s"`
	WallS         float64 `json:"wall_s"`
	UpdatesPerSec float64 `json:"updates_per_s"`

	Delay     DelayInfo    `json:"delay"`
	PerWorker []WorkerInfo `json:"per_worker"`
	Master    MasterInfo   `json:"master"`
	Comm      CommInfo     `json:"comm"`

	// LostWorkers lists the workers that left the run (died, were lost
	// or stopped by a signal), in order.
	LostWorkers []LostWorker `json:"lost_workers"`
	// JoinedWorkers lists the workers that joined the running job
	// (--join), with the gradients they contributed.
	JoinedWorkers []JoinedWorker `json:"joined_workers"`

	PhiStar *float64    `json:"phi_star,omitempty"`
	Final   *TraceRow   `json:"final,omitempty"`
	Target  *TargetInfo `json:"target,omitempty"`
	Tol     *TolInfo    `json:"tol,omitempty"`
	// Polish is the final prox-gradient polish of a sparse model.
	Polish *PolishInfo `json:"polish,omitempty"`
	// Model is phi and the nonzeros of the model written (after the
	// polish); absent when no model was written.
	Model *ModelInfo `json:"model,omitempty"`
	// Test is the model's figures on the held-out set (--test).
	Test *TestInfo `json:"test,omitempty"`
	// Diverged is set when the divergence guard stopped the run.
	Diverged *Divergence       `json:"diverged,omitempty"`
	Outputs  map[string]string `json:"outputs"`
}

// ModelInfo is the model written: phi on the training data, its relative
// suboptimality (null when phi* is unknown) and its nonzeros.
type ModelInfo struct {
	Phi float64  `json:"-"` // in JSON as phi, null when not finite
	Rel *float64 `json:"rel_subopt"`
	NNZ int      `json:"nnz"`
}

// MarshalJSON writes a non-finite phi as null.
func (m ModelInfo) MarshalJSON() ([]byte, error) {
	type plain ModelInfo
	return json.Marshal(struct {
		Phi *float64 `json:"phi"`
		plain
	}{finitePtr(m.Phi), plain(m)})
}

// TolInfo is the --tol rule's outcome: the last relative change of phi per
// epoch it measured (null before two evaluations an epoch apart).
type TolInfo struct {
	Tol        float64  `json:"tol"`
	Reached    bool     `json:"reached"`
	LastChange *float64 `json:"last_change_per_epoch"`
}

// DataInfo describes the training data.
type DataInfo struct {
	Path     string    `json:"path"`
	SHA256   string    `json:"sha256"`
	Rows     int64     `json:"rows"`
	Features int       `json:"features"`
	Dim      int       `json:"dim"`
	NNZ      int64     `json:"nnz"`
	LabelMap []float64 `json:"label_map,omitempty"` // raw labels mapped to -1, +1
}

// ProblemInfo is the objective.
type ProblemInfo struct {
	Loss    string  `json:"loss"`
	Reg     string  `json:"reg"`
	Lambda  float64 `json:"lambda"`
	Lambda2 float64 `json:"lambda2,omitempty"`
	Bias    bool    `json:"bias"`
}

// StepInfo is the step-size policy with its estimated constants.
type StepInfo struct {
	Policy  string  `json:"policy"`
	Alpha0  float64 `json:"alpha0,omitempty"`
	L       float64 `json:"L,omitempty"`
	Sigma   float64 `json:"sigma,omitempty"`
	Tau     int     `json:"tau"`
	Beta    float64 `json:"beta,omitempty"`
	Mu      float64 `json:"mu,omitempty"`
	T0      float64 `json:"t0,omitempty"`
	Tau0    float64 `json:"tau0,omitempty"`
	Average string  `json:"average"`
	Batch   int     `json:"batch"`
	Method  string  `json:"method,omitempty"`
	Metric  string  `json:"metric,omitempty"` // none or diag, as decided
}

// DelayInfo summarizes the delays tau(t) of the applied gradients.
type DelayInfo struct {
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P99  int64   `json:"p99"`
	Max  int64   `json:"max"`
	// Hist[k] counts delays of k (trimmed after the largest nonzero bucket).
	Hist []int64 `json:"hist"`
}

// WorkerInfo is one worker's share of the run.
type WorkerInfo struct {
	Rank      int     `json:"rank"`
	Host      string  `json:"host"`
	Grads     int64   `json:"grads"`
	Rows      int64   `json:"rows"`
	ComputeS  float64 `json:"compute_s"`
	IdleS     float64 `json:"idle_s"`
	MeanDelay float64 `json:"mean_delay"`
	MaxDelay  int64   `json:"max_delay"`
	Slow      float64 `json:"slow_factor,omitempty"`
	// PeakRSSBytes is the worker process's peak resident set size, as it
	// reported it at the end (0: not reported, e.g. it left the run).
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
}

// MasterInfo is the master's load.
type MasterInfo struct {
	BusyS         float64 `json:"busy_s"`
	BusyFraction  float64 `json:"busy_fraction"`
	NsPerUpdate   float64 `json:"ns_per_update"`
	Lazy          bool    `json:"lazy"`
	LazySyncs     int64   `json:"lazy_syncs,omitempty"`
	Barriers      int64   `json:"barriers,omitempty"`
	RepliesDense  int64   `json:"replies_dense"`
	RepliesSparse int64   `json:"replies_sparse"`
	RepliesDelta  int64   `json:"replies_delta"`
	RepliesKeyed  int64   `json:"replies_keyed"`
	Grads         int64   `json:"grads"`
	SparseGrads   int64   `json:"grads_sparse"`
	RefusedGrads  int64   `json:"grads_refused"` // NaN/Inf, wrong length: never applied
	LastRefusal   string  `json:"last_refusal,omitempty"`
	// PeakRSSBytes is the master process's peak resident set size (the
	// serial run's, for --np 1) at the end of the run.
	PeakRSSBytes uint64 `json:"peak_rss_bytes"`
}

// CommInfo is the traffic seen by the master.
type CommInfo struct {
	Codec              string  `json:"codec,omitempty"`
	BytesWire          uint64  `json:"bytes_wire"`
	BytesRaw           uint64  `json:"bytes_raw"`
	Ratio              float64 `json:"compression_ratio"`
	Msgs               uint64  `json:"messages"`
	WireBytesPerUpdate float64 `json:"wire_bytes_per_update"`
	RawBytesPerUpdate  float64 `json:"raw_bytes_per_update"`
	// The same during training only (the master's links from the first
	// reply to the stop; the run's totals above include the setup and the
	// trace's evaluation, O(d) per snapshot).
	TrainWireBytesPerUpdate float64 `json:"train_wire_bytes_per_update"`
	TrainRawBytesPerUpdate  float64 `json:"train_raw_bytes_per_update"`
	// Connections to the master's listener that were refused (a failed
	// handshake) or were garbage (not a handshake at all).
	RefusedConns uint64 `json:"refused_connections"`
	GarbageConns uint64 `json:"garbage_connections"`
}

// TargetInfo is the --target run's outcome. When the target is reached,
// the output that reached it (phi evaluated on the full data) is the model
// written; the run's final row is the state a few updates later, when the
// loop stopped.
type TargetInfo struct {
	Eps      float64 `json:"eps"`
	Reached  bool    `json:"reached"`
	Phi      float64 `json:"phi,omitempty"`
	T        int64   `json:"t,omitempty"`
	WallS    float64 `json:"wall_s,omitempty"`
	Evals    int64   `json:"evals"`
	EvalCPUS float64 `json:"eval_cpu_s"`
	// BestRel, for a target not reached, is the best relative
	// suboptimality of the output in the run.
	BestRel *float64 `json:"best_rel_subopt,omitempty"`
}

func (r *masterRun) summary(f *facts, hash string, s solver.Schedule, avg solver.Averager, L, sigma, phiStar float64, rows []TraceRow, wallStart time.Time) *Summary {
	cfg := r.cfg
	st := r.m.Stats()
	P := r.c.Size() - 1
	sum := &Summary{
		Manifest: cfg.Manifest,
		Data:     DataInfo{Path: cfg.Data, SHA256: hash, Rows: f.n, Features: f.dRaw, Dim: f.d, NNZ: f.nnz},
		Ranks:    r.c.Size(), Workers: P, Hosts: f.hosts, SlurmJobID: os.Getenv("SLURM_JOB_ID"),
		Mode:    cfg.Mode.String(),
		Problem: ProblemInfo{Loss: cfg.Loss.String(), Reg: cfg.Reg.Kind.String(), Lambda: cfg.Reg.Lambda, Lambda2: cfg.Reg.Lambda2, Bias: cfg.Bias},
		Step: StepInfo{Policy: s.Kind.String(), Alpha0: s.Alpha0, L: L, Sigma: sigma, Tau: s.Tau, Beta: s.Beta, Mu: s.Mu, T0: s.T0, Tau0: s.Tau0,
			Average: avg.Kind.String(), Batch: cfg.Batch},
		StopReason: r.stopReason,
		Updates:    st.Updates, Samples: r.m.SamplesDone(),
		Epochs: float64(r.m.SamplesDone()) / float64(f.n),
		TrainS: float64(r.trainNs) / 1e9, WallS: time.Since(wallStart).Seconds(),
		Outputs: map[string]string{},
	}
	if f.labelMap != nil {
		sum.Data.LabelMap = []float64{f.labelMap.Neg, f.labelMap.Pos}
	}
	if f.classes != nil {
		sum.Data.LabelMap = f.classes.Labels // class c's label at c
	}
	if sum.TrainS > 0 {
		sum.UpdatesPerSec = float64(st.Updates) / sum.TrainS
	}
	hist := st.DelayHist
	last := 0
	for k, v := range hist {
		if v != 0 {
			last = k
		}
	}
	sum.Delay = DelayInfo{Mean: st.MeanDelay(), P50: st.DelayQuantile(0.5), P99: st.DelayQuantile(0.99), Max: st.DelayMax, Hist: hist[:last+1]}
	for w := 1; w <= P; w++ {
		ws := st.Workers[w]
		wi := WorkerInfo{Rank: w, Host: f.hosts[w], Grads: ws.Grads, Rows: ws.Rows,
			ComputeS: float64(ws.ComputeNs) / 1e9, IdleS: float64(ws.IdleNs) / 1e9, MaxDelay: ws.DelayMax, Slow: cfg.Slow[w]}
		if ws.Grads > 0 {
			wi.MeanDelay = float64(ws.DelaySum) / float64(ws.Grads)
		}
		sum.PerWorker = append(sum.PerWorker, wi)
	}
	sum.Master = MasterInfo{BusyS: float64(r.busyNs) / 1e9, Lazy: r.m.Lazy(), LazySyncs: r.m.LazySyncs(), Barriers: st.Barriers,
		RepliesDense: st.RepliesDense, RepliesSparse: st.RepliesSparse, RepliesDelta: st.RepliesDelta,
		RepliesKeyed: st.RepliesKeyed,
		Grads:        st.Grads, SparseGrads: st.SparseGrads, RefusedGrads: st.RefusedGrads, LastRefusal: st.LastRefusal}
	if r.trainNs > 0 {
		sum.Master.BusyFraction = float64(r.busyNs) / float64(r.trainNs)
	}
	if st.Updates > 0 {
		sum.Master.NsPerUpdate = float64(r.busyNs) / float64(st.Updates)
	}
	cs := r.c.Stats()
	sum.Comm.RefusedConns, sum.Comm.GarbageConns = cs.Refused, cs.Garbage
	for _, p := range cs.Peers {
		sum.Comm.BytesWire += p.SentWire + p.RecvWire
		sum.Comm.BytesRaw += p.SentRaw + p.RecvRaw
		sum.Comm.Msgs += p.SentMsgs + p.RecvMsgs
	}
	if sum.Comm.BytesWire > 0 {
		sum.Comm.Ratio = float64(sum.Comm.BytesRaw) / float64(sum.Comm.BytesWire)
	}
	if st.Updates > 0 {
		sum.Comm.WireBytesPerUpdate = float64(sum.Comm.BytesWire) / float64(st.Updates)
		sum.Comm.RawBytesPerUpdate = float64(sum.Comm.BytesRaw) / float64(st.Updates)
		sum.Comm.TrainWireBytesPerUpdate = float64(r.trainWire) / float64(st.Updates)
		sum.Comm.TrainRawBytesPerUpdate = float64(r.trainRaw) / float64(st.Updates)
	}
	if !math.IsNaN(phiStar) {
		v := phiStar
		sum.PhiStar = &v
	}
	if len(rows) > 0 {
		fr := rows[len(rows)-1]
		sum.Final = &fr
	}
	if r.ev != nil && cfg.Target > 0 {
		sum.Target = &TargetInfo{Eps: cfg.Target, Reached: r.ev.hit.Load(), Evals: r.ev.evals.Load(),
			EvalCPUS: float64(r.ev.busyNs.Load()) / 1e9}
		if sum.Target.Reached {
			sum.Target.T = r.ev.hitT.Load()
			sum.Target.WallS = float64(r.ev.hitWall.Load()) / 1e9
			sum.Target.Phi = r.ev.hitPhi
		}
	}
	return sum
}

// writeOutputs writes trace.csv, summary.json and the model (the weights w)
// into cfg.Out.
func writeOutputs(cfg *Config, f *facts, sum *Summary, rows []TraceRow, w []float64) error {
	csvPath := filepath.Join(cfg.Out, "trace.csv")
	if err := writeFileAtomic(csvPath, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		test := len(rows) > 0 && rows[0].Test != nil
		hdr := "t,wall_s,epochs,phi_last,phi_avg,rel_subopt_last,rel_subopt_avg,nnz_last,nnz_avg"
		if test {
			hdr += testCSVHeader(cfg.Loss)
		}
		fmt.Fprintln(bw, hdr)
		for _, row := range rows {
			fmt.Fprintf(bw, "%d,%.6f,%.6g,%.15g,%.15g,%.6g,%.6g,%d,%d", row.T, row.WallS, row.Epochs,
				row.PhiLast, row.PhiAvg, row.RelLast, row.RelAvg, row.NNZLast, row.NNZAvg)
			if test && row.Test != nil {
				fmt.Fprint(bw, testCSVFields(cfg.Loss, row.Test))
			}
			fmt.Fprintln(bw)
		}
		return bw.Flush()
	}); err != nil {
		return err
	}
	sum.Outputs["trace_csv"] = csvPath
	sum.Outputs["trace_bin"] = filepath.Join(cfg.Out, "trace.bin")
	modelName := sum.finish()
	if w == nil {
		// No model (the run diverged): none from an earlier run either.
		for _, name := range []string{"model", "model.partial"} {
			if err := os.Remove(filepath.Join(cfg.Out, name)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	if w != nil {
		modelPath := filepath.Join(cfg.Out, modelName)
		m := &Model{Weights: w, Loss: cfg.Loss, Reg: cfg.Reg.Kind, Features: f.dRaw, Bias: cfg.Bias}
		if f.labelMap != nil {
			m.Labels = []float64{f.labelMap.Pos, f.labelMap.Neg}
		}
		if f.classes != nil {
			m.Labels, m.Classes = f.classes.Labels, f.mc.K
		}
		if err := writeFileAtomic(modelPath, m.WriteLiblinear); err != nil {
			return err
		}
		sum.Outputs["model"] = modelPath
		// No stale model of another status next to this one.
		for _, other := range []string{"model", "model.partial"} {
			if other != modelName {
				os.Remove(filepath.Join(cfg.Out, other))
			}
		}
	}
	sumPath := filepath.Join(cfg.Out, "summary.json")
	sum.Outputs["summary"] = sumPath
	return writeFileAtomic(sumPath, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	})
}

// MarshalJSON writes NaN and infinite figures (phi* unknown) as null,
// which JSON can hold.
func (r TraceRow) MarshalJSON() ([]byte, error) {
	num := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	m := map[string]any{
		"t": r.T, "wall_s": r.WallS, "epochs": r.Epochs,
		"phi_last": num(r.PhiLast), "phi_avg": num(r.PhiAvg),
		"rel_subopt_last": num(r.RelLast), "rel_subopt_avg": num(r.RelAvg),
		"nnz_last": r.NNZLast, "nnz_avg": r.NNZAvg,
	}
	if r.Test != nil {
		m["test_loss"], m["test_accuracy"], m["test_auc"], m["test_rmse"] = num(r.Test.Loss), num(r.Test.Accuracy), num(r.Test.AUC), num(r.Test.RMSE)
	}
	return json.Marshal(m)
}

// writeFileAtomic writes path through a temporary file in the same
// directory, synced and renamed into place.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Chmod(OutputMode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Table prints the summary as a human-readable table.
func (s *Summary) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	p("run", "%s, %d workers, batch %d, stopped by %s", s.Mode, s.Workers, s.Step.Batch, s.StopReason)
	p("problem", "%s + %s (lambda %g) on %s: %d rows, d=%d", s.Problem.Loss, s.Problem.Reg, s.Problem.Lambda, filepath.Base(s.Data.Path), s.Data.Rows, s.Data.Dim)
	step := s.Step.Policy
	switch s.Step.Policy {
	case "convex":
		step += fmt.Sprintf(" (L=%.4g sigma=%.4g tau=%d beta=%.4g)", s.Step.L, s.Step.Sigma, s.Step.Tau, s.Step.Beta)
	case "strong":
		step += fmt.Sprintf(" (L=%.4g mu=%.4g tau=%d t0=%.4g)", s.Step.L, s.Step.Mu, s.Step.Tau, s.Step.T0)
	default:
		step += fmt.Sprintf(" (alpha0=%.4g)", s.Step.Alpha0)
	}
	if s.Step.Method == "svrg" {
		step = fmt.Sprintf("svrg, metric %s, L=%.4g, first step %.4g", s.Step.Metric, s.Step.L, s.Step.Alpha0)
	}
	p("step size", "%s, output %s", step, s.Step.Average)
	p("updates", "%d in %.3f s: %.0f updates/s, %.2f epochs", s.Updates, s.TrainS, s.UpdatesPerSec, s.Epochs)
	if s.Workers > 0 {
		p("delay tau", "mean %.2f, p50 %d, p99 %d, max %d", s.Delay.Mean, s.Delay.P50, s.Delay.P99, s.Delay.Max)
		p("master", "busy %.1f%%, %.0f ns/update, lazy=%v, gradients sparse %d/%d, replies dense/sparse/delta/keyed %d/%d/%d/%d",
			100*s.Master.BusyFraction, s.Master.NsPerUpdate, s.Master.Lazy, s.Master.SparseGrads, s.Master.Grads,
			s.Master.RepliesDense, s.Master.RepliesSparse, s.Master.RepliesDelta, s.Master.RepliesKeyed)
		p("traffic", "%.1f MB on the wire (%.1f MB raw, ratio %.2f), %.0f B/update; training %.0f B/update (%.0f raw)",
			float64(s.Comm.BytesWire)/1e6, float64(s.Comm.BytesRaw)/1e6, s.Comm.Ratio, s.Comm.WireBytesPerUpdate,
			s.Comm.TrainWireBytesPerUpdate, s.Comm.TrainRawBytesPerUpdate)
		var ws []string
		for _, w := range s.PerWorker {
			util := 0.0
			if w.ComputeS+w.IdleS > 0 {
				util = 100 * w.ComputeS / (w.ComputeS + w.IdleS)
			}
			extra := ""
			if w.Slow > 1 {
				extra = fmt.Sprintf(" slow x%g", w.Slow)
			}
			ws = append(ws, fmt.Sprintf("r%d %d grads %.0f%% busy tau %.1f%s", w.Rank, w.Grads, util, w.MeanDelay, extra))
		}
		p("workers", "%s", strings.Join(ws, "; "))
	}
	if s.Final != nil {
		if s.PhiStar != nil {
			p("objective", "phi(output)=%.10g phi(last)=%.10g phi*=%.10g rel. subopt %.3g (output), %.3g (last)",
				s.Final.PhiAvg, s.Final.PhiLast, *s.PhiStar, s.Final.RelAvg, s.Final.RelLast)
		} else {
			p("objective", "phi(output)=%.10g phi(last)=%.10g (phi* unknown)", s.Final.PhiAvg, s.Final.PhiLast)
		}
		if s.Model == nil {
			p("model", "none written")
		}
	}
	if s.Polish != nil {
		kept := "kept"
		if !s.Polish.Kept {
			kept = "not kept: it raised phi"
		}
		p("polish", "%d prox-gradient steps on the full data in %.3f s: nnz %d -> %d, phi %.10g -> %.10g (%s)",
			s.Polish.Iters, s.Polish.TimeS, s.Polish.NNZBefore, s.Polish.NNZAfter, s.Polish.PhiBefore, s.Polish.PhiAfter, kept)
	}
	if s.Model != nil {
		rel := ""
		if s.Model.Rel != nil {
			rel = fmt.Sprintf(", rel. subopt %.3g", *s.Model.Rel)
		}
		p("model", "nnz %d of %d, phi %.10g%s", s.Model.NNZ, s.Data.Dim, s.Model.Phi, rel)
	}
	if s.Test != nil {
		t := s.Test
		var fs []string
		add := func(name string, v *float64) {
			if v != nil {
				fs = append(fs, fmt.Sprintf("%s %.4g", name, *v))
			}
		}
		add("loss", t.Loss)
		add("accuracy", t.Accuracy)
		add("AUC", t.AUC)
		add("RMSE", t.RMSE)
		p("test", "%s (%d rows): %s", filepath.Base(t.Path), t.Rows, strings.Join(fs, ", "))
	}
	if s.Tol != nil {
		ch := "not measured"
		if s.Tol.LastChange != nil {
			ch = fmt.Sprintf("%.3g", *s.Tol.LastChange)
		}
		p("tol", "relative change of phi per epoch %s (tol %g, reached %v)", ch, s.Tol.Tol, s.Tol.Reached)
	}
	if s.Diverged != nil {
		p("DIVERGED", "at t=%d (epoch %.3g): %s; alpha %.4g", s.Diverged.T, s.Diverged.Epochs, s.Diverged.What, s.Diverged.Alpha)
	}
	if s.Target != nil {
		if s.Target.Reached {
			p("target", "rel. subopt %g reached at t=%d after %.3f s: phi(output)=%.10g, the model written (%d evaluations, %.3f s CPU)",
				s.Target.Eps, s.Target.T, s.Target.WallS, s.Target.Phi, s.Target.Evals, s.Target.EvalCPUS)
		} else {
			best := ""
			if s.Target.BestRel != nil {
				best = fmt.Sprintf(", best %.3g", *s.Target.BestRel)
			}
			p("target", "rel. subopt %g NOT reached%s (%d evaluations, %.3f s CPU)", s.Target.Eps, best, s.Target.Evals, s.Target.EvalCPUS)
		}
	}
	if mem := s.memoryLine(); mem != "" {
		p("memory", "%s", mem)
	}
	s.faultsTable(p)
	p("outputs", "%s", filepath.Dir(s.Outputs["summary"]))
	tw.Flush()
}

// memoryLine is the summary's peak RSS per rank ("" when unknown).
func (s *Summary) memoryLine() string {
	if s.Master.PeakRSSBytes == 0 {
		return ""
	}
	mb := func(b uint64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }
	line := "peak RSS r0 " + mb(s.Master.PeakRSSBytes)
	for _, w := range s.PerWorker {
		if w.PeakRSSBytes > 0 {
			line += fmt.Sprintf(", r%d %s", w.Rank, mb(w.PeakRSSBytes))
		}
	}
	return line
}

func matrixOf(a *kernels.CSR) kernels.Matrix { return kernels.Matrix{CSR: a} }
