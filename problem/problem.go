// Package problem is the one problem loader: it reads a LIBSVM file
// (package data), maps its labels for the loss, appends the bias column and
// builds the solver.Problem with the cache key of its optimum phi*.
package problem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// Config is the validated content of problemFlags.
type Config struct {
	Data      string
	Loss      kernels.Loss
	Reg       solver.Reg // Groups is filled by load, once the dimension is known
	GroupSpec string
	Bias      bool
	Features  int
	OVR       bool // --multiclass ovr: a K-class file trains K binary problems
}

// FieldError is a Load error caused by a Config field (the groups, once the
// dimension is known): a usage error for the command line.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks everything the dimension does not decide (the groups
// are checked against it by Load); an error starts with the field's name.
func (pc Config) Validate() error {
	if pc.Data == "" {
		return errors.New("Data FILE is required")
	}
	if pc.Reg.Kind == solver.RegGroup {
		if pc.GroupSpec == "" {
			return errors.New("GroupSpec: reg group needs a groups SPEC")
		}
		for _, f := range strings.Split(pc.GroupSpec, ",") {
			if g, err := strconv.Atoi(strings.TrimSpace(f)); err != nil || g < 1 {
				return fmt.Errorf("GroupSpec %q: %q is not a positive integer", pc.GroupSpec, f)
			}
		}
	}
	check := pc.Reg
	if pc.Reg.Kind == solver.RegGroup {
		check.Groups = []int{0, 1}
	}
	if err := check.Validate(1); err != nil {
		return fmt.Errorf("Reg: %w", err)
	}
	if pc.Features < 0 {
		return fmt.Errorf("Features %d: want N >= 0", pc.Features)
	}
	return nil
}

// Loaded is a problem read from its file.
type Loaded struct {
	Config   Config
	Data     *data.Dataset
	Problem  *solver.Problem
	Hash     string         // SHA-256 of the data file
	Key      string         // solver.ProblemKey: the cache key of phi*
	LabelMap *data.LabelMap // the -1/+1 mapping of a binary classification loss
	Classes  *data.ClassMap // the class indices of a K-class file (K > 2)
}

// Load reads the data, maps the labels for a classification loss, appends
// the bias column and builds the problem (full-data evaluation on GOMAXPROCS
// goroutines).
func (pc Config) Load() (*Loaded, error) {
	ds, err := data.Read(pc.Data, data.Options{Features: pc.Features})
	if err != nil {
		return nil, err
	}
	hash, err := data.FileHash(pc.Data)
	if err != nil {
		return nil, err
	}
	lp := &Loaded{Config: pc, Data: ds, Hash: hash}
	if pc.Loss.Classification() {
		if cm, ok, err := MulticlassLabels(ds, pc.Loss); err != nil {
			return nil, err
		} else if ok {
			lp.Classes = &cm
			return lp, pc.loadMulti(lp)
		}
		m, err := ds.ToBinary()
		if err != nil {
			return nil, err
		}
		lp.LabelMap = &m
	}
	a := &ds.X
	reg := pc.Reg
	if reg.Kind == solver.RegGroup {
		if reg.Groups, err = solver.ParseGroups(pc.GroupSpec, a.Cols); err != nil {
			return nil, &FieldError{"GroupSpec", err}
		}
		if pc.Bias {
			reg.Groups = append(reg.Groups, a.Cols+1)
		}
	}
	if pc.Bias {
		a = solver.AppendBias(a)
	}
	p, err := solver.NewProblem(kernels.Matrix{CSR: a}, ds.Y, pc.Loss, reg, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	lp.Problem = p
	lp.Key = solver.ProblemKey(hash, a.Cols, pc.Bias, pc.Loss, reg)
	return lp, nil
}

// Describe is a one-line summary of the problem for command output.
func (lp *Loaded) Describe() string {
	n, d := lp.Problem.Dims()
	r := lp.Problem.Reg
	s := fmt.Sprintf("%s: n=%d d=%d loss=%s reg=%s", filepath.Base(lp.Config.Data), n, d, lp.Config.Loss, r.Kind)
	if mc, ok := lp.Problem.Multi(); ok {
		s = fmt.Sprintf("%s: n=%d d=%d (%d features x %d classes) loss=%v reg=%s", filepath.Base(lp.Config.Data), n, d, d/mc.K, mc.K, mc, r.Kind)
	}
	switch r.Kind {
	case solver.RegL1, solver.RegL2, solver.RegGroup:
		s += fmt.Sprintf(" lambda=%g", r.Lambda)
	case solver.RegElastic:
		s += fmt.Sprintf(" lambda=%g lambda2=%g", r.Lambda, r.Lambda2)
	case solver.RegBox:
		s += fmt.Sprintf(" [%g, %g]", r.Lo, r.Hi)
	case solver.RegL1Box:
		s += fmt.Sprintf(" lambda=%g [%g, %g]", r.Lambda, r.Lo, r.Hi)
	case solver.RegBall:
		s += fmt.Sprintf(" radius=%g", r.Radius)
	}
	if lp.Config.Bias {
		s += " bias"
	}
	return s
}

// ErrSolveInterrupted is PhiStar's error when its context ends the solve.
var ErrSolveInterrupted = errors.New("interrupted while solving for phi*: nothing was trained, no outputs are written")

// PhiStar is Optimum's phi* for a training run: it says on log that it
// solves when the cache has no entry, and returns ErrSolveInterrupted when
// ctx ends the solve.
func (lp *Loaded) PhiStar(ctx context.Context, dir string, log io.Writer) (float64, error) {
	if _, ok, _ := solver.ReadRefCache(dir, lp.Key); !ok {
		fmt.Fprintf(log, "reference: solving for phi* of %s (cached in %s)\n", lp.Describe(), dir)
	}
	e, _, err := lp.Optimum(ctx, dir, log)
	if err != nil && ctx.Err() != nil {
		return math.NaN(), ErrSolveInterrupted
	}
	if err != nil {
		return math.NaN(), err
	}
	return e.Phi, nil
}

// Of is the Loaded of a problem p that was built elsewhere (by the ranks)
// from pc's data, whose file has SHA-256 hash: what Optimum needs.
func (pc Config) Of(p *solver.Problem, hash string) *Loaded {
	_, d := p.Dims()
	lp := &Loaded{Config: pc, Problem: p, Hash: hash, Key: solver.ProblemKey(hash, d, pc.Bias, pc.Loss, p.Reg)}
	if mc, ok := p.Multi(); ok {
		lp.Key = solver.MultiProblemKey(hash, d/mc.K, pc.Bias, mc, p.Reg)
	}
	return lp
}

// Optimum is "get phi* from the cache, computing it if missing": the
// optimum of lp from the cache in dir, or from a reference solve that is
// then cached (train --target and the benches use it); cached says which.
// A solve reports its progress on log every 2 s (nil: silently) and stops
// when ctx is done (returning ctx.Err()).
func (lp *Loaded) Optimum(ctx context.Context, dir string, log io.Writer) (solver.RefEntry, bool, error) {
	var opt solver.RefOptions
	if log != nil {
		start, last := time.Now(), time.Now()
		opt.Progress = func(k int, phi float64) bool {
			if time.Since(last) >= 2*time.Second {
				last = time.Now()
				fmt.Fprintf(log, "reference: iteration %d, phi %.12g, %s\n", k, phi, time.Since(start).Round(time.Second))
			}
			return true
		}
	}
	e, cached, err := solver.CachedReferenceContext(ctx, dir, lp.Key, lp.Problem, opt)
	if err != nil {
		return e, cached, err
	}
	if !e.Converged {
		return e, cached, fmt.Errorf("the reference solver (%s) did not converge for %s after %d iterations (phi %.12g);"+
			" to go on, give phi* yourself with --phi-star PHI, or train without it: drop --target (with --reference=false, the default then)",
			e.Method, lp.Describe(), e.Iters, e.Phi)
	}
	return e, cached, nil
}

// MulticlassLabels decides whether ds is a K-class file (more than two
// distinct labels) for a classification loss; if so it maps the labels to
// class indices in LIBLINEAR's order (first appearance) and returns the map.
func MulticlassLabels(ds *data.Dataset, loss kernels.Loss) (data.ClassMap, bool, error) {
	labels := ds.LabelsFirstSeen()
	if len(labels) <= 2 {
		return data.ClassMap{}, false, nil
	}
	if loss != kernels.Logistic {
		return data.ClassMap{}, false, fmt.Errorf("%s: %d distinct labels: the %v loss is binary only; train K classes with --loss logistic (softmax or --multiclass ovr), or use --loss squared for regression targets",
			ds.Path, len(labels), loss)
	}
	cm, err := data.NewClassMap(labels)
	if err != nil {
		return cm, false, fmt.Errorf("%s: %w", ds.Path, err)
	}
	return cm, true, ds.ApplyClasses(cm)
}

// multiOf is the K-class loss of a problem config for K classes.
func (pc Config) multiOf(k int) kernels.Multi { return kernels.Multi{K: k, OVR: pc.OVR} }

// loadMulti builds the K-class problem of lp (labels already mapped): W is
// features x K, flat; group lasso groups are given over features and cover
// the K weights of each of their features.
func (pc Config) loadMulti(lp *Loaded) error {
	ds := lp.Data
	a := &ds.X
	reg := pc.Reg
	mc := pc.multiOf(lp.Classes.K())
	if reg.Kind == solver.RegGroup {
		g, err := solver.ParseGroups(pc.GroupSpec, a.Cols)
		if err != nil {
			return &FieldError{"GroupSpec", err}
		}
		if pc.Bias {
			g = append(g, a.Cols+1)
		}
		reg.Groups = solver.ScaleGroups(g, mc.K)
	}
	if pc.Bias {
		a = solver.AppendBias(a)
	}
	p, err := solver.NewMultiProblem(a, ds.Y, mc, reg, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	lp.Problem = p
	lp.Key = solver.MultiProblemKey(lp.Hash, a.Cols, pc.Bias, mc, reg)
	return nil
}

// CacheDir is the directory of cached reference optima: dir (--cache-dir
// or ASYNCMB_CACHE_DIR) when given, else os.UserCacheDir()/asyncmb.
func CacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no --cache-dir and no user cache directory: %w", err)
	}
	return filepath.Join(base, "asyncmb"), nil
}
