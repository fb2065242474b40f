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
// workers' idle time per gradient (idle = 2 latency + service when nobody
// queues, as with one worker; Calibrate refines it for more). Times are
// divided by the run's dilation factor.
func FromSummary(s *ranks.Summary, dilate float64) (Model, float64, error) {
	f := max(dilate, 1)
	var cs, idle float64
	var cn, gn int64
	for _, w := range s.PerWorker {
		if w.Grads == 0 {
			continue
		}
		idle += w.IdleS
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
// with more than one worker, fits the latency by bisection so that a short
// simulation of cfg reproduces the run's mean idle time per gradient
// (which also holds the time spent queueing at the master).
func Calibrate(cfg *Config, s *ranks.Summary, dilate float64) error {
	m, idlePer, err := FromSummary(s, dilate)
	if err != nil {
		return err
	}
	bw := cfg.Model.Bandwidth
	m.Bandwidth = bw
	cfg.Model = m
	if cfg.Workers == 1 || idlePer == 0 {
		return nil
	}
	short := *cfg
	short.PhiStar, short.Targets, short.MaxUpdates = math.NaN(), nil, 3000
	short.Train.Epochs, short.Train.Iters = 0, 3000
	lo, hi := 0.0, idlePer/2
	for range 14 {
		short.Model.LatencyS = (lo + hi) / 2
		r, err := Run(&short)
		if err != nil {
			return err
		}
		if r.IdleS > idlePer {
			hi = short.Model.LatencyS
		} else {
			lo = short.Model.LatencyS
		}
	}
	cfg.Model.LatencyS = (lo + hi) / 2
	return nil
}
