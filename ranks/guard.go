package ranks

import (
	"errors"
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/solver"
)

// The divergence guard. A step size too large for the data makes the
// iterates grow geometrically until they overflow to Inf and NaN; without a
// guard the run would go on and write an all-NaN model. The checks are
// cheap enough for the master's hot loop: one comparison of the mini-batch
// loss each worker sends with its gradient (bad once every worker's latest
// one is bad), and a finiteness check of the iterate at the (geometrically
// spaced) snapshots.

// explodeFactor: a mini-batch loss above explodeFactor * max(first loss, 1)
// is divergence. Every loss starts at x0 (0 or the simplex's centre), where
// the first gradients are computed; a run that converges does not go a
// million times above it.
const explodeFactor = 1e6

// ErrDiverged marks a run stopped by the divergence guard.
var ErrDiverged = errors.New("the run diverged")

// guard watches the mini-batch losses. A bad loss (non-finite, or over the
// limit) is divergence once the latest loss of every worker is bad: then
// the iterate itself is bad, not one worker's gradient (a faulty worker is
// another matter, for the master's refusal of bad gradients). Not safe for
// concurrent use.
type guard struct {
	limit float64 // 0 until the first loss
	first float64
	bad   []bool // by worker: its latest loss was bad
	nBad  int
}

// badLoss takes the mini-batch loss l of worker w (of workers) and reports
// divergence; the first finite loss sets the limit.
func (g *guard) badLoss(l float64, w, workers int) bool {
	if l <= g.limit {
		if g.nBad > 0 && g.bad[w] {
			g.bad[w] = false
			g.nBad--
		}
		return false
	}
	if g.limit == 0 && l >= 0 && !math.IsInf(l, 0) {
		g.first, g.limit = l, explodeFactor*math.Max(l, 1)
		return false
	}
	if len(g.bad) != workers+1 {
		g.bad, g.nBad = make([]bool, workers+1), 0
	}
	if !g.bad[w] {
		g.bad[w] = true
		g.nBad++
	}
	return g.nBad == workers
}

// what describes the bad loss l for the message.
func (g *guard) what(l float64) string {
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return fmt.Sprintf("a mini-batch loss is %v (the first was %.4g)", l, g.first)
	}
	return fmt.Sprintf("a mini-batch loss is %.4g, over %g times the first (%.4g)", l, explodeFactor, g.first)
}

// badIterate describes a non-finite entry of x, or returns "".
func badIterate(x []float64) string {
	for j, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("coordinate %d of the iterate is %v", j, v)
		}
	}
	return ""
}

// Divergence is where the guard stopped a run (summary.json "diverged").
type Divergence struct {
	T      int64   `json:"t"`
	Epochs float64 `json:"epochs"`
	What   string  `json:"what"`
	Alpha  float64 `json:"alpha"` // the step size at T
	Hint   string  `json:"hint"`
}

// explain fills the step size and the advice, for the schedule s with the
// Lipschitz constant L of grad f (0: unknown).
func (dv *Divergence) explain(s solver.Schedule, L float64) {
	dv.Alpha = s.Alpha(dv.T, 0)
	safe := ""
	if L > 0 {
		safe = fmt.Sprintf(" (1/L = %.3g for these data)", 1/L)
	}
	switch s.Kind {
	case solver.StepConst:
		dv.Hint = fmt.Sprintf("the constant step --alpha0 %g is too large: try a smaller --alpha0%s, or leave out --step and --alpha0 for the default step, computed from the data", s.Alpha0, safe)
	case solver.StepInvSqrt:
		dv.Hint = fmt.Sprintf("the steps --alpha0 %g / sqrt(t+1) are too large: try a smaller --alpha0%s, or leave out --step and --alpha0 for the default step, computed from the data", s.Alpha0, safe)
	default:
		dv.Hint = fmt.Sprintf("the %s step size was %.3g at t=%d; it comes from L = %.4g: if --lipschitz was given, it is too small (leave it out to estimate it), else try --step const with a small --alpha0%s",
			s.Kind, dv.Alpha, dv.T, L, safe)
	}
}

func (dv *Divergence) err() error {
	return fmt.Errorf("%w at update %d (epoch %.3g): %s; step size alpha = %.4g: %s. No model was written",
		ErrDiverged, dv.T, dv.Epochs, dv.What, dv.Alpha, dv.Hint)
}
