package problem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/solver"
)

// SGDOptions is a serial prox-SGD run (`asyncmb sgd`).
type SGDOptions struct {
	Config     solver.SGDConfig
	Epochs     float64
	PhiStar    float64 // NaN: unknown, unless Target
	Checkpoint string  // "": none; else written after every epoch
	Resume     bool    // continue from Checkpoint
	// Target reports phi - phi* with phi* from the reference cache in
	// CacheDir (see CacheDir; computed and cached if missing).
	Target   bool
	CacheDir string
}

// Validate checks o before the data are read; an error starts with the
// name of the field at fault.
func (o SGDOptions) Validate() error {
	if !(o.Epochs > 0) || math.IsInf(o.Epochs, 0) {
		return fmt.Errorf("Epochs %v: want E > 0", o.Epochs)
	}
	if o.Resume && o.Checkpoint == "" {
		return errors.New("Resume needs --checkpoint FILE")
	}
	return nil
}

// SGD runs serial prox-SGD on lp and prints phi of the output after every
// epoch, and its number of nonzeros at the end, to w.
func (lp *Loaded) SGD(o SGDOptions, w io.Writer) error {
	if o.Target {
		dir, err := CacheDir(o.CacheDir)
		if err != nil {
			return err
		}
		e, cached, err := lp.Optimum(context.Background(), dir, nil)
		if err != nil {
			return err
		}
		o.PhiStar = e.Phi
		fmt.Fprintf(w, "phi*    %.15g (cached=%v)\n", o.PhiStar, cached)
	}
	var s *solver.SGD
	var err error
	if o.Resume {
		ck, err := solver.ReadCheckpoint(o.Checkpoint)
		if err != nil {
			return err
		}
		if s, err = solver.RestoreSGD(lp.Problem, ck, lp.Key); err != nil {
			return fmt.Errorf("%s: %w", o.Checkpoint, err)
		}
		fmt.Fprintf(w, "resumed from %s at update %d (epoch %.3f)\n", o.Checkpoint, s.T, s.Epochs())
	} else if s, err = solver.NewSGD(lp.Problem, o.Config, nil); err != nil {
		return err
	}
	_, d := lp.Problem.Dims()
	out := make([]float64, d)
	fmt.Fprintf(w, "%8s %12s %10s %18s %12s %10s\n", "epoch", "updates", "alpha", "phi(output)", "phi-phi*", "seconds")
	start := time.Now()
	var ckErr error
	report := func(s *solver.SGD) {
		s.Output(out)
		phi := lp.Problem.Objective(out)
		fmt.Fprintf(w, "%8.3f %12d %10.4g %18.12g %12.4g %10.3f\n", s.Epochs(), s.T, s.Schedule.Alpha(s.T, 0), phi, phi-o.PhiStar, time.Since(start).Seconds())
		if o.Checkpoint != "" && ckErr == nil {
			ckErr = solver.WriteCheckpoint(o.Checkpoint, s.Checkpoint(lp.Key))
		}
	}
	for e := math.Floor(s.Epochs()) + 1; ckErr == nil; e++ {
		s.Run(math.Min(e, o.Epochs), 0, nil)
		report(s)
		if e >= o.Epochs {
			break
		}
	}
	if ckErr != nil {
		return ckErr
	}
	s.Output(out)
	fmt.Fprintf(w, "nnz     %d of %d\n", solver.NNZ(out), d)
	return nil
}

// ErrInterrupted is the error of a reference solve stopped by its context
// (errors.Is matches it).
var ErrInterrupted = errors.New("interrupted")

// interrupted is an ErrInterrupted with its own message.
type interrupted string

func (e interrupted) Error() string        { return string(e) }
func (e interrupted) Is(target error) bool { return target == ErrInterrupted }

// RefOptions is a reference solve (`asyncmb reference`). The cache in
// CacheDir is read (unless Recompute) and written only for the default
// tolerance and method.
type RefOptions struct {
	Tol       float64
	MaxIter   int
	Method    solver.RefMethod
	Recompute bool
	CacheDir  string
}

// Validate checks o; an error starts with the name of the field at fault.
func (o RefOptions) Validate() error {
	if !(o.Tol > 0) || o.Tol >= 1 {
		return fmt.Errorf("Tol %v: want 0 < TOL < 1", o.Tol)
	}
	if o.MaxIter < 0 {
		return fmt.Errorf("MaxIter %d: want N >= 0", o.MaxIter)
	}
	return nil
}

// Reference solves lp for phi* to high accuracy, or reads it from the
// cache, and prints the result to w; ctx stops the solve (ErrInterrupted).
func (lp *Loaded) Reference(ctx context.Context, o RefOptions, w io.Writer) error {
	useCache := o.Tol == 1e-10 && o.Method == solver.RefAuto
	if useCache && !o.Recompute {
		e, ok, err := solver.ReadRefCache(o.CacheDir, lp.Key)
		if err != nil {
			return err
		}
		if ok {
			return printRef(w, e, "read from "+solver.RefCachePath(o.CacheDir, lp.Key))
		}
	}
	start := time.Now()
	res, err := solver.ReferenceContext(ctx, lp.Problem, solver.RefOptions{Tol: o.Tol, MaxIter: o.MaxIter, Method: o.Method})
	if err != nil {
		return interrupted(fmt.Sprintf("reference: interrupted after %s (nothing written)", res.Stuck()))
	}
	e := solver.RefEntryOf(lp.Key, res, time.Since(start))
	if !res.Converged {
		printRef(w, e, "not written")
		return fmt.Errorf("reference: not converged after %s", res.Stuck())
	}
	where := "not written (--tol is not 1e-10 or --method is not auto)"
	if useCache {
		if err := solver.WriteRefCache(o.CacheDir, e); err != nil {
			return err
		}
		where = "written to " + solver.RefCachePath(o.CacheDir, lp.Key)
	}
	switch res.Method {
	case "newton":
		fmt.Fprintf(w, "newton     %d coordinate-descent passes, %d full-data passes, last predicted decrease %.3g relative\n", res.InnerPasses, res.Evals, res.RelDecrease)
	case "lbfgs":
		fmt.Fprintf(w, "lbfgs      %d full-data passes, gradient norm %.3g (K classes, smooth regularizer)\n", res.Evals, res.MapNorm)
	default:
		fmt.Fprintf(w, "fista      %d restarts, %d full-data passes, final L %.4g\n", res.Restarts, res.Evals, res.L)
	}
	return printRef(w, e, where)
}

// printRef prints a reference entry and where it is cached.
func printRef(w io.Writer, e solver.RefEntry, cache string) error {
	_, err := fmt.Fprintf(w, "phi*       %.15g\nnnz(x*)    %d\nmethod     %s\niterations %d\ntime       %.3fs\nmapping    %.3g\ncache      %s\n",
		e.Phi, e.NNZ, e.Method, e.Iters, e.Seconds, e.MapNorm, cache)
	return err
}

// DescribeSGD is a one-line summary of c's step policy; sigma and r are
// the convex schedule's noise and distance bound (0 otherwise).
func DescribeSGD(c solver.SGDConfig, sigma, r float64) string {
	s := c.Schedule
	var b strings.Builder
	fmt.Fprintf(&b, "step=%s batch=%d average=%s", s.Kind, c.Batch, c.Average.Kind)
	switch s.Kind {
	case solver.StepConst, solver.StepInvSqrt:
		fmt.Fprintf(&b, " alpha0=%g", s.Alpha0)
	case solver.StepConvex:
		fmt.Fprintf(&b, " L=%.4g tau=%d sigma=%.4g R=%.4g beta=%.4g", s.L, s.Tau, sigma, r, s.Beta)
	case solver.StepStrong:
		fmt.Fprintf(&b, " L=%.4g tau=%d mu=%g t0=%.4g", s.L, s.Tau, s.Mu, s.T0)
	}
	if s.Tau0 > 0 {
		fmt.Fprintf(&b, " tau0=%g", s.Tau0)
	}
	return b.String()
}
