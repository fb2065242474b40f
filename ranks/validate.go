package ranks

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// Validate checks a training configuration as a command line gives it,
// once, before anything starts; an error starts with the name of the field
// at fault (the command maps it to its flag). What depends on the number of
// workers or on the data is checked by the drivers at setup.
func (c *Config) Validate() error {
	finite := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
	switch {
	case c.MaxDelay < 0 || (c.MaxDelay != 0 && c.Mode != algo.ModeBounded):
		return errors.New("MaxDelay K needs --mode bounded and K >= 0")
	case c.SyncEvery < 0:
		return fmt.Errorf("SyncEvery %d: want K >= 0", c.SyncEvery)
	case c.Batch < 1:
		return fmt.Errorf("Batch %d: want B >= 1", c.Batch)
	case c.Method == solver.MethodSVRG && !c.Step.Default && c.Step.Kind != solver.StepConst:
		return fmt.Errorf("Method svrg takes --step const --alpha0 A, or no --step for its adaptive step, not --step %s", c.Step.Kind)
	case c.Method == solver.MethodSVRG && c.Mode == algo.ModeSync:
		return errors.New("Method svrg runs in --mode async or bounded")
	case c.Method != solver.MethodSVRG && c.Metric == solver.MetricDiag:
		return errors.New("Metric diag needs --method svrg")
	case c.Iters < 0 || !finite(c.Epochs) || c.Time < 0 || !finite(c.Target):
		return errors.New("Iters: --iters, --epochs, --time and --target must be >= 0")
	case !finite(c.Tol) || !finite(c.MaxEpochs):
		return errors.New("Tol: --tol and --max-epochs must be finite and >= 0")
	case c.PolishIters < 0:
		return fmt.Errorf("PolishIters %d: want N >= 0", c.PolishIters)
	case c.SnapshotEvery < 0:
		return fmt.Errorf("SnapshotEvery %d: want K >= 0", c.SnapshotEvery)
	case c.Jitter < 0:
		return fmt.Errorf("Jitter %v: want D >= 0", c.Jitter)
	case c.CheckpointEvery < 0:
		return fmt.Errorf("CheckpointEvery %v: want D >= 0", c.CheckpointEvery)
	case c.MinWorkers < 1:
		return fmt.Errorf("MinWorkers %d: want K >= 1", c.MinWorkers)
	case c.Mode == algo.ModeSync && (c.Pipeline || c.SyncEvery > 0):
		return errors.New("Mode sync takes neither --pipeline nor --sync-every")
	case !(c.Dilate >= 1) || math.IsInf(c.Dilate, 0):
		return fmt.Errorf("Dilate %v: want F >= 1", c.Dilate)
	}
	return nil
}

// ParseSlow parses RANK=FACTOR values (a worker RANK >= 1 whose compute
// takes FACTOR >= 1 times longer) into Config.Slow's map.
func ParseSlow(vals []string) (map[int]float64, error) {
	m := map[int]float64{}
	for _, v := range vals {
		r, f, ok := strings.Cut(v, "=")
		rank, err1 := strconv.Atoi(r)
		factor, err2 := strconv.ParseFloat(f, 64)
		if !ok || err1 != nil || err2 != nil || rank < 1 || !(factor >= 1) || math.IsInf(factor, 0) {
			return nil, fmt.Errorf("Slow %q: want RANK=FACTOR with RANK >= 1 (a worker) and FACTOR >= 1", v)
		}
		m[rank] = factor
	}
	return m, nil
}
