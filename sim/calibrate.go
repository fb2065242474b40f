package sim

import (
	"errors"
	"math"

	"github.com/asyncmb/asyncmb/ranks"
)

// DefaultComputeCV is the spread of compute times assumed when a real run
// calibrates the model (summary.json has each worker's mean, not its
// distribution).
const DefaultComputeCV = 0.2

// FromSummary calibrates a model from a real run's summary.json: the mean
// compute time per gradient of the workers that were not slowed, the
// master's busy time per gradient, and the one-way latency from the
// workers' time per gradient not spent computing (the training time less
// their compute time: idle = 2 latency + service when nobody queues, as
// with one worker; Calibrate refines it for more). Times are divided by
// the run's dilation factor.
func FromSummary(s *ranks.Summary, dilate float64) (Model, float64, error) {
	f := max(dilate, 1)
	var cs, idle float64
	var cn, gn int64
	for _, w := range s.PerWorker {
		if w.Grads == 0 {
			continue
		}
		// Everything but computing counts as waiting: the idle time the
		// worker measured, and what it does not time (encoding and sending
		// its gradient, the operating system's scheduling).
		idle += math.Max(w.IdleS, s.TrainS-w.ComputeS)
		gn += w.Grads
		if w.Slow > 1 {
			continue
		}
		cs += w.ComputeS
		cn += w.Grads
	}
	if cn == 0 || s.Master.Grads == 0 {
		return Model{}, 0, errors.New("sim: the summary has no gradients to calibrate from")
	}
	m := Model{ComputeS: cs / float64(cn) / f, ComputeCV: DefaultComputeCV, ServiceS: s.Master.BusyS / float64(s.Master.Grads) / f}
	idlePer := idle / float64(gn) / f
	m.LatencyS = math.Max(0, (idlePer-m.ServiceS)/2)
	return m, idlePer, nil
}

// Calibrate sets cfg.Model from a real run's summary (FromSummary) and,
// when that run had more than one worker, fits two figures by bisection on
// short simulations of that run (its P and stragglers, cfg's problem and
// settings): the latency, so that the workers' mean idle time per
// gradient (which also holds the time spent queueing at the master) is
// the run's, and the compute times' coefficient of variation, so that the
// standard deviation of the delays is the run's (on a shared machine the
// operating system's scheduling spreads the delays far more than the
// gradients' own work varies, and a constant delay of P-1 converges much
// worse than spread delays of the same mean).
func Calibrate(cfg *Config, s *ranks.Summary, dilate float64) error {
	m, idlePer, err := FromSummary(s, dilate)
	if err != nil {
		return err
	}
	bw := cfg.Model.Bandwidth
	m.Bandwidth = bw
	cfg.Model = m
	// The fit simulates the calibration run: its workers and stragglers.
	p := len(s.PerWorker)
	if p <= 1 || idlePer == 0 {
		return nil
	}
	short := *cfg
	short.Workers = p
	short.PhiStar, short.Targets, short.MaxUpdates = math.NaN(), nil, 3000
	short.Train.Epochs, short.Train.Iters = 0, 3000
	short.Train.Slow = map[int]float64{}
	for _, w := range s.PerWorker {
		if w.Slow > 1 {
			short.Train.Slow[w.Rank] = w.Slow
		}
	}
	fit := func(set func(float64), lo, hi, want float64, got func(*Result) float64) error {
		for range 12 {
			mid := (lo + hi) / 2
			set(mid)
			r, err := Run(&short)
			if err != nil {
				return err
			}
			if got(r) > want {
				hi = mid
			} else {
				lo = mid
			}
		}
		set((lo + hi) / 2)
		return nil
	}
	setL := func(v float64) { short.Model.LatencyS = v }
	idle := func(r *Result) float64 { return r.IdleS }
	if err := fit(setL, 0, idlePer/2, idlePer, idle); err != nil {
		return err
	}
	if sd := HistStd(s.Delay.Hist); sd > 0 {
		setCV := func(v float64) { short.Model.ComputeCV = v }
		if err := fit(setCV, 0, 8, sd, func(r *Result) float64 { return HistStd(r.DelayHist) }); err != nil {
			return err
		}
		if err := fit(setL, 0, idlePer/2, idlePer, idle); err != nil {
			return err
		}
	}
	cfg.Model.LatencyS, cfg.Model.ComputeCV = short.Model.LatencyS, short.Model.ComputeCV
	return nil
}

// HistStd is the standard deviation of the delays of a histogram
// (hist[k] counts delays of k).
func HistStd(hist []int64) float64 {
	var n, s, s2 float64
	for k, c := range hist {
		n += float64(c)
		s += float64(c) * float64(k)
		s2 += float64(c) * float64(k) * float64(k)
	}
	if n == 0 {
		return 0
	}
	m := s / n
	return math.Sqrt(math.Max(0, s2/n-m*m))
}
