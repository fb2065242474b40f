package study

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// ScaleOptions is `asyncmb scale` once its flags are read.
type ScaleOptions struct {
	Spec       // the sweep's settings but its axes, which come from Axes (Exe empty: this process's binary)
	Axes       Axes
	Launcher   string   // auto, local or srun (see ResolveLauncher)
	Slow       []string // train's --slow for every run, also in TrainArgs as --slow=V (see SlowAxis)
	PhiStarSet bool     // TrainArgs hold a --phi-star
}

// UsageError is a sweep setting that cannot work (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }
func (e *UsageError) ExitCode() int { return 2 }

// Scale checks o, plans the sweep, runs it (progress on o.Log) and prints
// its table to w. A setting that cannot work is a UsageError.
func Scale(ctx context.Context, o ScaleOptions, w io.Writer) error {
	s := &o.Spec
	if s.Exe == "" {
		var err error
		if s.Exe, err = os.Executable(); err != nil {
			return err
		}
	}
	if err := s.ParseAxes(o.Axes); err != nil {
		return &UsageError{err}
	}
	if s.Data == "" {
		return &UsageError{errors.New("--data FILE is required")}
	}
	if _, err := os.Stat(s.Data); err != nil {
		return err
	}
	if err := s.ResolveLauncher(o.Launcher); err != nil {
		return &UsageError{err}
	}
	if len(o.Slow) > 0 {
		axis, err := s.SlowAxis(o.Slow)
		if err != nil {
			return &UsageError{err}
		}
		if axis { // the runs get it as the slowdown axis
			s.TrainArgs = slices.DeleteFunc(slices.Clone(s.TrainArgs), func(a string) bool { return strings.HasPrefix(a, "--slow=") })
		}
	}
	if s.Weak && o.PhiStarSet {
		return &UsageError{errors.New("--weak: every P has its own data and phi*; leave out --phi-star")}
	}
	runs, err := s.Plan()
	if err != nil {
		return &UsageError{err}
	}
	fmt.Fprintf(s.Log, "scale: %d runs into %s\n", len(runs), s.Out)
	return s.Report(ctx, w)
}
