package ranks

import (
	"context"
	"math"
	"os"
	"time"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/solver"
)

// RunSerial is a training run with no workers and no network (`train --np
// 1`): the solver's serial proximal SGD, the P = 1 baseline, with the same
// stopping rules and outputs (trace.csv, summary.json, model) as Run.
// Cancelling ctx stops the training, as in Run, and the outputs are written.
func RunSerial(ctx context.Context, cfg *Config) (*Result, error) {
	if err := cfg.validate(1); err != nil {
		return nil, err
	}
	wallStart := time.Now()
	ds, err := data.Read(cfg.Data, data.Options{Features: cfg.Features})
	if err != nil {
		return nil, err
	}
	hash, err := data.FileHash(cfg.Data)
	if err != nil {
		return nil, err
	}
	f := &facts{n: int64(ds.X.Rows), nnz: int64(ds.X.NNZ()), hosts: []string{hostname()}}
	if err := f.decide(cfg, ds.MaxIndex, ds.LabelsFirstSeen()); err != nil {
		return nil, err
	}
	if err := f.resolveGroups(cfg); err != nil {
		return nil, err
	}
	p, err := loadFullFrom(cfg, f, ds)
	if err != nil {
		return nil, err
	}
	var test *heldOut
	if cfg.Test != "" {
		if test, err = loadHeldOut(cfg, f); err != nil {
			return nil, err
		}
	}
	d := f.d
	x0 := make([]float64, d)
	cfg.Reg.Init(x0)
	phiStar := cfg.PhiStar
	if math.IsNaN(phiStar) && cfg.Reference != nil {
		if phiStar, err = cfg.Reference(p, hash); err != nil {
			return nil, err
		}
	}
	if cfg.Target > 0 && math.IsNaN(phiStar) {
		return nil, errNoPhiStar
	}
	var (
		sgd   serialStepper
		sched solver.Schedule
		avg   solver.Averager
		L     float64
		sigma float64
		plan  vrPlan
	)
	if cfg.Method == solver.MethodSVRG {
		sgd, plan, avg, err = newSerialSVRG(cfg, p, x0)
		if err != nil {
			return nil, err
		}
		L = plan.L
		sched = solver.Schedule{Kind: solver.StepConst, Alpha0: plan.alpha}
	} else {
		L, sigma = cfg.Step.L, cfg.Step.Sigma
		if L == 0 && (cfg.Step.Kind == solver.StepConvex || cfg.Step.Kind == solver.StepStrong) {
			L = p.EstimateL(powerIters, cfg.Seed)
		}
		if sigma == 0 && cfg.Step.Kind == solver.StepConvex {
			sigma = p.EstimateSigma(x0, cfg.Batch, 32, cfg.Seed)
		}
		sched, avg, err = schedule(cfg, 0, d, L, sigma)
		if err != nil {
			return nil, err
		}
		s, err := solver.NewSGD(p, solver.SGDConfig{Batch: cfg.Batch, Schedule: sched, Average: avg, Seed: cfg.Seed}, x0)
		if err != nil {
			return nil, err
		}
		sgd = sgdStepper{s}
	}
	nextSnap := NextSnapshot(0, cfg.SnapshotEvery)
	samplesLimit := sampleLimit(cfg, f.n)
	thresh := phiStar + cfg.Target*math.Abs(phiStar)
	if !(cfg.Target > 0) {
		thresh = math.NaN()
	}
	tol := newTolCheck(cfg.Tol, f.n)
	var grd guard
	var div *Divergence
	bestPhi := math.NaN()

	rec, err := newRecorder(cfg, f)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	snap := Snapshot{Avg: make([]float64, d)}
	lastSnapT := int64(-1)
	record := func() error {
		snap.T, snap.Samples = sgd.Count()
		snap.WallNs = int64(time.Since(start))
		snap.X = sgd.Iterate()
		sgd.Output(snap.Avg)
		lastSnapT = snap.T
		if what := badIterate(snap.X); what != "" && div == nil {
			div = &Divergence{T: snap.T, Epochs: sgd.Epochs(), What: what}
		}
		return rec.snapshot(&snap)
	}
	if err := record(); err != nil {
		rec.closeTrace()
		return nil, err
	}
	var evals int64
	var evalNs int64
	var evalNext time.Time
	var hitX []float64
	target := &TargetInfo{Eps: cfg.Target}
	out := make([]float64, d)
	reason := ""
	for reason == "" {
		T, samples := sgd.Count()
		switch {
		case ctx.Err() != nil:
			reason = "interrupted" // outputs are still written
		case cfg.Iters > 0 && T >= cfg.Iters:
			reason = "iters"
		case div != nil:
			reason = "diverged"
		case samplesLimit > 0 && samples >= samplesLimit:
			reason = epochsReason(cfg)
		case capReached(cfg, f.n, samples, time.Since(start)):
			reason = "max-epochs"
		case cfg.Time > 0 && time.Since(start) >= cfg.Time:
			reason = "time"
		}
		if reason != "" {
			break
		}
		loss := sgd.Step()
		T++
		_, samples = sgd.Count()
		if grd.badLoss(loss, 1, 1) && div == nil {
			div = &Divergence{T: T - 1, Epochs: sgd.Epochs(), What: grd.what(loss)}
			continue
		}
		if T >= nextSnap {
			if err := record(); err != nil {
				rec.closeTrace()
				return nil, err
			}
			nextSnap = NextSnapshot(T, cfg.SnapshotEvery)
		}
		// The target is checked as the evaluator of a distributed run
		// checks it: resting evalRest times as long as an evaluation takes.
		if (cfg.Target > 0 || tol != nil) && T%8 == 0 && time.Now().After(evalNext) {
			t0 := time.Now()
			sgd.Output(out)
			phi := p.Objective(out)
			took := time.Since(t0)
			evalNs += int64(took)
			evals++
			evalNext = time.Now().Add(evalRest * took)
			if phi < bestPhi || math.IsNaN(bestPhi) {
				bestPhi = phi
			}
			if tol != nil && tol.observe(phi, samples) {
				reason = "tol"
			}
			if phi <= thresh {
				target.Reached, target.T, target.WallS, target.Phi = true, T, time.Since(start).Seconds(), phi
				hitX = append([]float64(nil), out...)
				reason = "target"
			}
		}
	}
	trainNs := int64(time.Since(start))
	finalT, finalSamples := sgd.Count()
	err = nil
	if lastSnapT != finalT {
		err = record()
	}
	if cerr := rec.closeTrace(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// The trace is evaluated as a distributed run's is, with the loss
	// sums taken on the whole data set here.
	n := float64(f.n)
	rows, model, err := rec.evaluate(phiStar, test, func(v, res []float64) error {
		res[0], res[1] = n*p.Smooth(v[:d], nil), n*p.Smooth(v[d:], nil)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if hitX != nil {
		model = hitX
	}

	sum := &Summary{
		Manifest: cfg.Manifest,
		Data:     DataInfo{Path: cfg.Data, SHA256: hash, Rows: f.n, Features: f.dRaw, Dim: d, NNZ: f.nnz},
		Ranks:    1, Workers: 0, Hosts: f.hosts, SlurmJobID: os.Getenv("SLURM_JOB_ID"),
		Mode:    "serial",
		Problem: ProblemInfo{Loss: cfg.Loss.String(), Reg: cfg.Reg.Kind.String(), Lambda: cfg.Reg.Lambda, Lambda2: cfg.Reg.Lambda2, Bias: cfg.Bias},
		Step: StepInfo{Policy: sched.Kind.String(), Alpha0: sched.Alpha0, L: L, Sigma: sigma, Tau: sched.Tau, Beta: sched.Beta,
			Mu: sched.Mu, T0: sched.T0, Tau0: sched.Tau0, Average: avg.Kind.String(), Batch: cfg.Batch,
			Method: cfg.Method.String()},
		StopReason: reason, Updates: finalT, Samples: finalSamples, Epochs: float64(finalSamples) / float64(f.n),
		TrainS: float64(trainNs) / 1e9, WallS: time.Since(wallStart).Seconds(),
		Outputs: map[string]string{},
	}
	if sum.TrainS > 0 {
		sum.UpdatesPerSec = float64(finalT) / sum.TrainS
	}
	if cfg.Method == solver.MethodSVRG {
		sum.Step.Metric = plan.metricName()
	}
	if f.labelMap != nil {
		sum.Data.LabelMap = []float64{f.labelMap.Neg, f.labelMap.Pos}
	}
	if !math.IsNaN(phiStar) {
		sum.PhiStar = &phiStar
	}
	fr := rows[len(rows)-1]
	sum.Final = &fr
	if cfg.Target > 0 {
		target.Evals, target.EvalCPUS = evals, float64(evalNs)/1e9
		sum.Target = target
	}
	if tol != nil {
		sum.Tol = &TolInfo{Tol: cfg.Tol, Reached: reason == "tol", LastChange: finitePtr(tol.last)}
	}
	markTarget(sum, rows, bestPhi)
	if div != nil {
		if L == 0 {
			L = p.EstimateL(powerIters, cfg.Seed)
		}
		div.explain(sched, L)
		sum.Diverged, model = div, nil
	} else {
		model = finishModel(cfg, sum, model, p.Smooth, L, test)
	}
	sum.Master.PeakRSSBytes = peakRSS()
	if err := rec.write(sum, rows, model); err != nil {
		return nil, err
	}
	return &Result{Summary: sum}, finalErr(cfg, sum)
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
