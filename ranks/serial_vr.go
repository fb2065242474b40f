package ranks

import (
	"github.com/asyncmb/asyncmb/solver"
)

// serialStepper is what RunSerial drives: solver.SGD or solver.SVRG.
type serialStepper interface {
	Step() float64 // the mini-batch loss
	Count() (t, samples int64)
	Epochs() float64
	Iterate() []float64 // a view of x, valid until the next Step
	Output(dst []float64)
}

type sgdStepper struct{ s *solver.SGD }

func (a sgdStepper) Step() float64         { return a.s.Step() }
func (a sgdStepper) Epochs() float64       { return a.s.Epochs() }
func (a sgdStepper) Count() (int64, int64) { return a.s.T, a.s.Samples }
func (a sgdStepper) Iterate() []float64    { return a.s.X }
func (a sgdStepper) Output(dst []float64)  { a.s.Output(dst) }

type svrgStepper struct{ s *solver.SVRG }

func (a svrgStepper) Step() float64         { return a.s.Step() }
func (a svrgStepper) Epochs() float64       { return a.s.Epochs() }
func (a svrgStepper) Count() (int64, int64) { return a.s.T, a.s.Samples }
func (a svrgStepper) Iterate() []float64    { return a.s.X }
func (a svrgStepper) Output(dst []float64)  { a.s.Output(dst) }

// newSerialSVRG plans and starts a serial svrg run on p: the metric from
// the columns, L in it by the power method, the step, the update.
func newSerialSVRG(cfg *Config, p *solver.Problem, x0 []float64) (serialStepper, vrPlan, solver.Averager, error) {
	_, d := p.Dims()
	st := p.Columns()
	curv, k := cfg.Loss.Curvature(), 1
	mc, multi := p.Multi()
	if multi {
		curv, k = mc.Curvature(), mc.K
	}
	var metric []float64
	if useMetric(cfg, st) {
		metric = st.BatchMetric(curv, cfg.Batch)
	}
	L := cfg.Step.L
	if L == 0 || metric != nil {
		L = p.EstimateLMetric(metric, powerIters, cfg.Seed)
	}
	plan, err := newVRPlan(cfg, st, metric, L, d, k)
	if err != nil {
		return nil, plan, solver.Averager{}, err
	}
	if multi {
		plan.sparse, plan.wts = false, nil // the serial support is by columns
	}
	avg, err := vrAverage(cfg)
	if err != nil {
		return nil, plan, avg, err
	}
	s, err := solver.NewSVRG(p, solver.SVRGConfig{Batch: cfg.Batch, Alpha: plan.alpha, Metric: plan.metric,
		Sparse: plan.sparse, Weights: plan.wts, Seed: cfg.Seed, Adapt: plan.adapt}, x0)
	if err != nil {
		return nil, plan, avg, err
	}
	if avg.Kind != solver.AvgLast {
		return &avgStepper{svrgStepper: svrgStepper{s}, avg: avg}, plan, avg, nil
	}
	return svrgStepper{s}, plan, avg, nil
}

// vrAverage is the output of a svrg run: the last iterate unless --average
// asks for another.
func vrAverage(cfg *Config) (solver.Averager, error) {
	if cfg.Step.Average == "" {
		return solver.Averager{Kind: solver.AvgLast}, nil
	}
	k, err := solver.ParseAvgKind(cfg.Step.Average)
	if err != nil {
		return solver.Averager{}, err
	}
	return solver.Averager{Kind: k, Horizon: cfg.Step.Horizon}, nil
}

// avgStepper is a svrg run whose output is an average of its iterates.
type avgStepper struct {
	svrgStepper
	avg solver.Averager
}

func (a *avgStepper) Step() float64 {
	loss := a.s.Step()
	a.avg.Add(a.s.X)
	return loss
}

func (a *avgStepper) Output(dst []float64) { a.avg.Value(a.s.X, dst) }
