package ranks

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// StepSpec is the step-size policy as the user gives it; the master turns
// it into a solver.Schedule once the data are known (L and sigma estimated
// on the workers' shards unless given).
type StepSpec struct {
	Kind   solver.StepKind
	Alpha0 float64 // const, invsqrt
	L      float64 // Lipschitz constant of grad f; 0: estimate
	Sigma  float64 // gradient noise (one sample); 0: estimate
	R      float64 // bound on ||x0 - x*|| for the convex policy; 0: sqrt(d)
	Mu     float64 // strong convexity for the strong policy; 0: the regularizer's
	Tau    int     // delay bound; < 0: the number of workers
	Tau0   float64 // > 0: delay-adaptive steps alpha(t)/(1 + tau(t)/Tau0)
	// Average is the output; "" means the policy's own (uniform for
	// convex, weighted for strong, last for const/invsqrt is uniform too).
	Average string
	// Horizon, for the tail average, averages exactly the last half of a
	// run known to stop at Horizon updates (0: doubling blocks).
	Horizon int64
	// Default: no policy was asked for; the method picks its own (sgd:
	// Kind, the convex policy; svrg: const 1/(solver.VRStepDiv L)).
	Default bool
}

// Config is everything one rank needs to take part in a training run.
// Every rank gets the same Config (from the same flags); the master's
// decisions (dimension, label map, step sizes) reach the workers in the
// setup messages.
type Config struct {
	Data      string // LIBSVM file
	Features  int    // > 0 fixes the dimension
	Bias      bool   // append a constant-1 feature (regularized like the others)
	Replicate bool   // every worker reads the whole file instead of a shard
	Loss      kernels.Loss
	Reg       solver.Reg // Groups are resolved from GroupSpec once d is known
	GroupSpec string     // group lasso: a group size "G" or boundaries "0,4,10,..."
	// OVR trains a K-class file (K > 2 labels, logistic loss) as K binary
	// one-vs-rest problems instead of one softmax model (see kernels.Multi).
	OVR bool

	Mode      algo.Mode
	MaxDelay  int
	SyncEvery int64
	Pipeline  bool
	Batch     int
	Step      StepSpec
	Method    solver.Method     // sgd (the paper's algorithm) or svrg
	Metric    solver.MetricMode // the distance of the prox step: auto, none, diag
	Update    algo.Update       // the master's update: auto, lazy or eager
	// Pull is what a reply to a gradient carries: x on the keys of the
	// worker's next mini-batch (keys), all of x (all), or auto: workers send
	// keys for sparse data with d > denseMaxDim and the master replies keyed
	// when that is smaller (algo.Pull, keyed.go).
	Pull algo.Pull
	// NoReweight turns off the correction of gradient rates for sharded
	// data (see MasterConfig.Shares).
	NoReweight bool

	// Stopping: the first rule that fires ends the run; at least one is set.
	Iters  int64
	Epochs float64
	Time   time.Duration
	Target float64 // relative suboptimality (phi - phi*)/|phi*|; needs phi*
	// Tol stops the run once the relative change of phi(output) per epoch,
	// between evaluations at least an epoch apart, is at most Tol.
	Tol float64
	// MaxEpochs caps the run (on top of the rules above); a --target run
	// that stops without reaching its target fails (ErrTargetNotReached).
	MaxEpochs float64
	// MaxEpochsMinTime > 0 makes MaxEpochs bind only once training has
	// also run this long: on small data sets epochs are cheap, and a run
	// that needs more of them still ends in reasonable time (the default
	// cap of a --target run).
	MaxEpochsMinTime time.Duration
	// Test is a held-out LIBSVM file scored at every snapshot ("": none).
	Test string
	// PolishIters > 0 polishes the model of a sparse regularizer with at
	// most this many full-data prox-gradient steps (see polish.go).
	PolishIters int

	SnapshotEvery int64 // 0: geometric spacing (NextSnapshot)
	Seed          uint64
	Slow          map[int]float64 // worker rank -> compute slow-down factor
	Jitter        time.Duration   // uniform random extra delay per gradient
	// Dilate > 1 stretches every rank's busy time by this factor: a worker
	// sleeps Dilate-1 times what each gradient took, the master what each
	// update took, so that Dilate x cores busy ranks fit on the cores with
	// their relative speeds kept (times are then Dilate times longer).
	Dilate float64

	Out string // output directory (created by the master)

	// PhiStar, when not NaN, is the optimal value phi*; otherwise the
	// master asks Reference (if set) once it has built the full problem.
	PhiStar   float64
	Reference func(p *solver.Problem, dataHash string) (float64, error)
	// NeedFull makes the master load the whole data set (for the target
	// evaluator and the reference); it is set automatically for Target.
	NeedFull bool

	// Progress receives the live progress line (nil: none); ProgressTTY
	// redraws one line with \r instead of printing periodic lines.
	Progress      io.Writer
	ProgressTTY   bool
	ProgressEvery time.Duration
	// CheckpointEvery, if > 0, makes the master write <Out>/checkpoint
	// that often (it always writes one when interrupted); Resume, if set,
	// continues the run whose checkpoint is in that directory.
	CheckpointEvery time.Duration
	Resume          string
	// Join makes this worker join a running job in place of one that
	// left (comm.Config.Rejoin must be set too).
	Join bool
	// BatchSet says the batch was given (not the default): only then is a
	// batch larger than a worker's shard an error (the default one then
	// samples rows again within a batch).
	BatchSet bool
	// MinWorkers is the fewest workers the master goes on with after
	// others left (died or were lost); below it the run fails with exit
	// code 4. 0 means 1.
	MinWorkers int
	// Log receives the master's notices (a worker left; nil: none).
	Log io.Writer
	// Summary receives the summary table at the end (nil: none).
	Summary io.Writer

	// Manifest holds what the command line knows and the ranks do not
	// (version, commit, flags); it is copied into summary.json.
	Manifest map[string]any
}

func (c *Config) validate(workers int) error {
	switch {
	case c.Data == "":
		return errors.New("ranks: no data file")
	case c.Batch < 1:
		return fmt.Errorf("ranks: batch size %d < 1", c.Batch)
	case c.Iters < 0 || c.Epochs < 0 || c.Time < 0 || c.Target < 0 || math.IsNaN(c.Epochs) || math.IsNaN(c.Target) ||
		!(c.Tol >= 0) || !(c.MaxEpochs >= 0) || c.PolishIters < 0:
		return errors.New("ranks: negative stopping rule")
	case c.Iters == 0 && c.Epochs == 0 && c.Time == 0 && c.Target == 0 && c.Tol == 0 && c.MaxEpochs == 0:
		return errors.New("ranks: no stopping rule (set iters, epochs, time, target, tol or max-epochs)")
	case c.Mode == algo.ModeSync && (c.Pipeline || c.SyncEvery > 0):
		return errors.New("ranks: sync mode takes neither --pipeline nor --sync-every")
	case c.Mode != algo.ModeBounded && c.MaxDelay != 0:
		return errors.New("ranks: --max-delay needs --mode bounded")
	case c.Jitter < 0:
		return errors.New("ranks: negative jitter")
	case c.Dilate != 0 && !(c.Dilate >= 1) || math.IsInf(c.Dilate, 0):
		return fmt.Errorf("ranks: dilation factor %v, want >= 1", c.Dilate)
	case workers < 1:
		return errors.New("ranks: a run needs at least one worker (2 ranks)")
	}
	if err := c.validateVR(); err != nil {
		return err
	}
	for r, f := range c.Slow {
		if r < 1 || r > workers {
			return fmt.Errorf("ranks: --slow names rank %d, workers are ranks 1..%d", r, workers)
		}
		if !(f >= 1) || math.IsInf(f, 0) {
			return fmt.Errorf("ranks: --slow factor for rank %d is %v, want >= 1", r, f)
		}
	}
	return nil
}
