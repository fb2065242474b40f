package study

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Axes are the sweep's lists as `asyncmb scale` takes them (comma-separated
// flag values).
type Axes struct {
	Workers, Modes, Methods, Steps, Batches, Targets, Slowdowns, NetDelays string
}

// ParseAxes fills s's axes from a. An error names the flag at fault.
func (s *Spec) ParseAxes(a Axes) error {
	var err error
	if s.Workers, err = ParseInts("workers", a.Workers); err != nil {
		return err
	}
	s.Modes, s.Methods = SplitList(a.Modes), SplitList(a.Methods)
	if s.Steps, s.StepArgs, err = ParseStepAxis(a.Steps); err != nil {
		return err
	}
	if s.Batches, err = ParseInts("batch", a.Batches); err != nil {
		return err
	}
	if s.Targets, err = ParseFloats("targets", a.Targets); err != nil {
		return err
	}
	if s.Slowdowns, err = ParseFloats("slowdown", a.Slowdowns); err != nil {
		return err
	}
	for _, v := range SplitList(a.NetDelays) {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return fmt.Errorf("--net-delay %q: want durations >= 0 such as 0,200us,1ms", v)
		}
		s.NetDelays = append(s.NetDelays, d)
	}
	return nil
}

// ResolveLauncher sets s.Launcher from scale's --launcher: auto (srun when
// SLURM_JOB_ID is set, else local), local or srun.
func (s *Spec) ResolveLauncher(l string) error {
	switch l {
	case "auto":
		s.Launcher = "local"
		if os.Getenv("SLURM_JOB_ID") != "" {
			s.Launcher = "srun"
		}
	case "local", "srun":
		s.Launcher = l
	default:
		return fmt.Errorf("--launcher %q: want auto, local or srun", l)
	}
	return nil
}

// SlowAxis reconciles train's --slow, given to every run, with the
// slowdown axis: both may not vary, and --slow 1=F alone becomes the
// axis with one value, so that the table's column shows it (then axis is
// true and --slow is not to be passed on to the runs).
func (s *Spec) SlowAxis(slow []string) (axis bool, err error) {
	if slices.ContainsFunc(s.Slowdowns, func(f float64) bool { return f != 1 }) {
		return false, fmt.Errorf("give either --slow (every run) or --slowdown (a sweep of worker 1's factor), not both")
	}
	if len(slow) != 1 || !strings.HasPrefix(slow[0], "1=") {
		return false, nil
	}
	f, err := strconv.ParseFloat(slow[0][2:], 64)
	if err != nil || !(f >= 1) {
		return false, fmt.Errorf("--slow %q: want RANK=FACTOR with FACTOR >= 1", slow[0])
	}
	s.Slowdowns = []float64{f}
	return true, nil
}

// ParseInts parses flag's comma-separated list of integers >= 1.
func ParseInts(flag, v string) ([]int, error) {
	var out []int
	for _, f := range SplitList(v) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--%s %q: want a comma-separated list of integers >= 1", flag, v)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: empty list", flag)
	}
	return out, nil
}

// ParseFloats parses flag's comma-separated list of finite numbers > 0.
func ParseFloats(flag, v string) ([]float64, error) {
	var out []float64
	for _, f := range SplitList(v) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("--%s %q: want a comma-separated list of positive numbers", flag, v)
		}
		out = append(out, x)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: empty list", flag)
	}
	return out, nil
}
