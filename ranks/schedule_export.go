package ranks

import (
	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// Schedule is the step-size policy and output average a run of cfg with
// the given number of workers uses once d, L and sigma are known (what
// the master computes after its setup), for drivers other than Run such
// as the simulator.
func Schedule(cfg *Config, workers, d int, L, sigma float64) (solver.Schedule, solver.Averager, error) {
	return schedule(cfg, workers, d, L, sigma)
}

// NextSnapshot is algo.NextSnapshot, the snapshot spacing the serial
// driver shares with the master.
func NextSnapshot(t, every int64) int64 { return algo.NextSnapshot(t, every) }
