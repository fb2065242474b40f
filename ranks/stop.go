package ranks

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/asyncmb/asyncmb/algo"
)

// Stopping rules beside --iters, --epochs and --time: the relative change
// of phi (--tol), the epoch cap (--max-epochs), and the outcome of a
// --target run that stops without reaching its target.

// ErrTargetNotReached marks a --target run that stopped (by the epoch cap,
// --epochs, --iters or --time) before its output reached the target. The
// outputs are written all the same, with "reached": false.
var ErrTargetNotReached = errors.New("target not reached")

// tolCheck is --tol for the serial driver (algo.TolCheck; the master of
// a distributed run applies it itself).
type tolCheck struct {
	c    *algo.TolCheck
	last float64 // c.Last
}

func newTolCheck(tol float64, n int64) *tolCheck {
	c := algo.NewTolCheck(tol, n)
	if c == nil {
		return nil
	}
	return &tolCheck{c: c, last: c.Last}
}

// observe takes phi(output) after samples rows and reports whether the
// change has fallen to tol.
func (c *tolCheck) observe(phi float64, samples int64) bool {
	fire := c.c.Observe(phi, samples)
	c.last = c.c.Last
	return fire
}

// sampleLimit is the master's budget of mini-batch rows: the smaller of
// --epochs and --max-epochs (0: none).
func sampleLimit(cfg *Config, n int64) int64 {
	e := cfg.Epochs
	if cfg.MaxEpochs > 0 && cfg.MaxEpochsMinTime == 0 && (e == 0 || cfg.MaxEpochs < e) {
		e = cfg.MaxEpochs
	}
	if e == 0 {
		return 0
	}
	return int64(math.Ceil(e * float64(n)))
}

// capReached reports whether a cap with a minimum time
// (Config.MaxEpochsMinTime, which sampleLimit leaves to the driver) ends the
// run after samples rows and trained of training.
func capReached(cfg *Config, n, samples int64, trained time.Duration) bool {
	return cfg.MaxEpochsMinTime > 0 && cfg.MaxEpochs > 0 && trained >= cfg.MaxEpochsMinTime &&
		float64(samples) >= cfg.MaxEpochs*float64(n)
}

// epochsReason names the rule that ended a run at its sample budget.
func epochsReason(cfg *Config) string {
	if cfg.MaxEpochs > 0 && (cfg.Epochs == 0 || cfg.MaxEpochs < cfg.Epochs) {
		return "max-epochs"
	}
	return "epochs"
}

// bestRel is the best relative suboptimality of the output seen in the
// run: over the trace and the evaluator's evaluations (best phi).
func bestRel(rows []TraceRow, bestPhi, phiStar float64) float64 {
	best := bestPhi
	for _, r := range rows {
		if r.PhiAvg < best || math.IsNaN(best) {
			best = r.PhiAvg
		}
	}
	return (best - phiStar) / math.Abs(phiStar)
}

// markTarget records, for a --target run that did not reach its target,
// the best relative suboptimality it saw (before the outputs are written).
func markTarget(sum *Summary, rows []TraceRow, bestPhi float64) {
	if sum.Target != nil && !sum.Target.Reached && sum.PhiStar != nil {
		sum.Target.BestRel = finitePtr(bestRel(rows, bestPhi, *sum.PhiStar))
	}
}

// finalErr is the error a run ends with once its outputs are written: the
// divergence, or a target that was not reached (an interrupted run is the
// caller's to report).
func finalErr(cfg *Config, sum *Summary) error {
	if sum.Diverged != nil {
		return sum.Diverged.err()
	}
	if sum.Target == nil || sum.Target.Reached || sum.StopReason == "interrupted" {
		return nil
	}
	best := "unknown"
	if sum.Target.BestRel != nil {
		best = fmt.Sprintf("%.3g", *sum.Target.BestRel)
	}
	polished := ""
	if sum.Polish != nil && sum.Polish.Kept && sum.Model != nil && sum.Model.Rel != nil {
		// The polish is a full-data method: it may get the model there, but
		// the target is the training's.
		polished = fmt.Sprintf("; the polished model written is at %.3g", *sum.Model.Rel)
	}
	return fmt.Errorf("%w after %.4g epochs (best relative suboptimality %s, target %g; stopped by %s%s): the outputs in %s are written, marked \"reached\": false;"+
		" try a larger --max-epochs or --time, or a looser --target", ErrTargetNotReached, sum.Epochs, best, cfg.Target, sum.StopReason, polished, filepath.Clean(cfg.Out))
}
