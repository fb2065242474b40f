// Package study runs scaling studies: sweeps of real `asyncmb train`
// processes over the number of workers, the mode, the method, the
// mini-batch size, stragglers and message delays, and turns their outputs
// (trace.csv, summary.json) into scale.csv, a Markdown table and figures.
//
// It starts processes and reads files; the algorithm is not here (it is in
// ranks, run by the processes).
package study

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spec is one sweep. Every combination of Workers x Modes x Methods x
// Batches x Slowdowns x NetDelays is run Repeat times (seeds Seed0,
// Seed0+1, ...), the repeats outermost so that a drift in the machine's
// load spreads over every configuration.
type Spec struct {
	Exe       string   // the asyncmb binary
	Data      string   // LIBSVM file (strong scaling; weak: the source of the shards)
	TrainArgs []string // flags given to every run (problem, step sizes, stopping, --phi-star, ...)
	Workers   []int    // P, the number of workers (train --np P+1)
	Modes     []string // async, sync, bounded
	Methods   []string // train's --method; "" leaves it out
	// Steps are train's --step values to sweep ("" leaves it out);
	// StepArgs[step] are more train flags for that step's runs, after
	// TrainArgs (e.g. strong: --reg=l2 and its --phi-star).
	Steps     []string
	StepArgs  map[string][]string
	Batches   []int
	Slowdowns []float64       // worker 1's compute is this many times slower (1: none)
	NetDelays []time.Duration // every message is held this long (0: none)
	Repeat    int
	Seed0     uint64
	Targets   []float64 // relative suboptimalities, e.g. 1e-1, 1e-2, 1e-3
	MaxDelay  int       // --max-delay of bounded runs; 0: P
	// Weak: the data grow with P. With WeakRows > 0 each P gets WeakRows*P
	// rows from `asyncmb gen` (GenArgs: its other flags); otherwise the
	// first ceil(n P / max P) rows of Data.
	Weak     bool
	WeakRows int
	GenArgs  []string
	Dilate   float64 // > 1: every rank stretches its busy time by Dilate; times are reported divided by it
	Launcher string  // "local" or "srun" (train --launcher srun, inside an allocation)
	Timeout  time.Duration
	Out      string
	Log      io.Writer // progress, one line per run (nil: none)
	Env      []string  // the runs' environment (nil: this process's)
}

// Run is one planned run of the sweep.
type Run struct {
	ID       string
	Workers  int
	Mode     string
	Method   string
	Step     string
	Batch    int
	Slowdown float64
	NetDelay time.Duration
	Rep      int
	Seed     uint64
	Data     string
	Dir      string
	Args     []string // after the executable
	Dilate   float64
	Launcher string
}

// Key identifies a configuration (a run without its repeat).
type Key struct {
	Mode     string
	Method   string
	Step     string
	Batch    int
	Slowdown float64
	NetDelay time.Duration
	Workers  int
}

func (r *Run) key() Key {
	return Key{r.Mode, r.Method, r.Step, r.Batch, r.Slowdown, r.NetDelay, r.Workers}
}

func (s *Spec) validate() error {
	switch {
	case s.Exe == "":
		return errors.New("study: no asyncmb executable")
	case s.Data == "":
		return errors.New("study: no data file (--data)")
	case len(s.Workers) == 0 || len(s.Modes) == 0 || len(s.Batches) == 0:
		return errors.New("study: empty --workers, --mode or --batch")
	case s.Repeat < 1:
		return fmt.Errorf("study: --repeat %d, want >= 1", s.Repeat)
	case len(s.Targets) == 0:
		return errors.New("study: no targets")
	case s.Out == "":
		return errors.New("study: no output directory")
	case s.Launcher != "local" && s.Launcher != "srun":
		return fmt.Errorf("study: launcher %q, want local or srun", s.Launcher)
	case s.Dilate != 0 && !(s.Dilate >= 1) || math.IsInf(s.Dilate, 0):
		return fmt.Errorf("study: --dilate %v, want F >= 1", s.Dilate)
	case s.WeakRows < 0 || (s.WeakRows > 0 && !s.Weak):
		return errors.New("study: --weak-rows N needs --weak and N >= 0")
	}
	for _, p := range s.Workers {
		if p < 1 {
			return fmt.Errorf("study: --workers %d, want P >= 1", p)
		}
	}
	for _, m := range s.Modes {
		if m != "async" && m != "sync" && m != "bounded" {
			return fmt.Errorf("study: --mode %q, want async, sync or bounded", m)
		}
	}
	for _, b := range s.Batches {
		if b < 1 {
			return fmt.Errorf("study: --batch %d, want B >= 1", b)
		}
	}
	for _, f := range s.Slowdowns {
		if !(f >= 1) || math.IsInf(f, 0) {
			return fmt.Errorf("study: --slowdown %v, want F >= 1", f)
		}
	}
	for _, d := range s.NetDelays {
		if d < 0 {
			return fmt.Errorf("study: --net-delay %v < 0", d)
		}
	}
	for _, e := range s.Targets {
		if !(e > 0) || math.IsInf(e, 0) {
			return fmt.Errorf("study: target %v, want > 0", e)
		}
	}
	return nil
}

func (s *Spec) fill() {
	if len(s.Methods) == 0 {
		s.Methods = []string{""}
	}
	if len(s.Steps) == 0 {
		s.Steps = []string{""}
	}
	if len(s.Slowdowns) == 0 {
		s.Slowdowns = []float64{1}
	}
	if len(s.NetDelays) == 0 {
		s.NetDelays = []time.Duration{0}
	}
	if s.Dilate == 0 {
		s.Dilate = 1
	}
	slices.Sort(s.Workers)
	s.Workers = slices.Compact(s.Workers)
	slices.Sort(s.Targets)
	s.Targets = slices.Compact(s.Targets)
	slices.Reverse(s.Targets) // loosest first: 1e-1, 1e-2, 1e-3
}

// Plan lists the runs of the sweep (it does not start them). Data files
// for weak scaling are named but not yet written.
func (s *Spec) Plan() ([]Run, error) {
	s.fill()
	if err := s.validate(); err != nil {
		return nil, err
	}
	var runs []Run
	tight := s.Targets[len(s.Targets)-1]
	for rep := 1; rep <= s.Repeat; rep++ {
		for _, p := range s.Workers {
			for _, mode := range s.Modes {
				for _, method := range s.Methods {
					for _, step := range s.Steps {
						for _, b := range s.Batches {
							for _, slow := range s.Slowdowns {
								for _, nd := range s.NetDelays {
									r := Run{Workers: p, Mode: mode, Method: method, Step: step, Batch: b, Slowdown: slow, NetDelay: nd,
										Rep: rep, Seed: s.Seed0 + uint64(rep-1), Data: s.Data, Dilate: s.Dilate, Launcher: s.Launcher}
									if s.Weak {
										r.Data = filepath.Join(s.Out, "data", fmt.Sprintf("weak-%d.svm", p))
									}
									r.ID = runID(&r)
									r.Dir = filepath.Join(s.Out, "runs", r.ID)
									r.Args = s.args(&r, tight)
									runs = append(runs, r)
								}
							}
						}
					}
				}
			}
		}
	}
	return runs, nil
}

func runID(r *Run) string {
	id := fmt.Sprintf("p%d-%s", r.Workers, r.Mode)
	if r.Method != "" {
		id += "-" + r.Method
	}
	if r.Step != "" {
		id += "-" + r.Step
	}
	id += fmt.Sprintf("-b%d", r.Batch)
	if r.Slowdown != 1 {
		id += "-slow" + strconv.FormatFloat(r.Slowdown, 'g', -1, 64)
	}
	if r.NetDelay > 0 {
		id += "-nd" + r.NetDelay.String()
	}
	return id + fmt.Sprintf("-r%d", r.Rep)
}

// args builds a run's command line after the executable.
func (s *Spec) args(r *Run, tight float64) []string {
	a := []string{"train", fmt.Sprintf("--np=%d", r.Workers+1), "--figures=false"}
	if r.Launcher == "srun" {
		// train's own srun launcher: srun asyncmb rank ... inside the
		// allocation, the ranks meeting through Slurm's variables.
		a = append(a, "--launcher=srun")
	}
	a = append(a, "--data="+r.Data, "--mode="+r.Mode, fmt.Sprintf("--batch=%d", r.Batch),
		fmt.Sprintf("--seed=%d", r.Seed), "--out="+r.Dir, "--progress=none")
	if r.Method != "" {
		a = append(a, "--method="+r.Method)
	}
	if r.Step != "" {
		a = append(a, "--step="+r.Step)
	}
	if r.Mode == "bounded" && !hasFlag(s.TrainArgs, "max-delay") {
		k := s.MaxDelay
		if k == 0 {
			k = r.Workers
		}
		a = append(a, fmt.Sprintf("--max-delay=%d", k))
	}
	if r.Slowdown != 1 {
		a = append(a, "--slow=1="+strconv.FormatFloat(r.Slowdown, 'g', -1, 64))
	}
	if r.NetDelay > 0 {
		a = append(a, "--net-delay="+r.NetDelay.String())
	}
	if r.Dilate != 1 {
		a = append(a, "--dilate="+strconv.FormatFloat(r.Dilate, 'g', -1, 64))
	}
	if !hasFlag(s.TrainArgs, "target") && r.Step == "" {
		// (A run of a step axis runs all its epochs: its rate is fitted
		// over the end of its trace, which a target would cut.)
		a = append(a, "--target="+strconv.FormatFloat(tight, 'g', -1, 64))
	}
	if !hasFlag(s.TrainArgs, "epochs") && !hasFlag(s.TrainArgs, "iters") && !hasFlag(s.TrainArgs, "time") && !hasFlag(s.TrainArgs, "max-epochs") {
		a = append(a, "--epochs=20")
	}
	if !hasFlag(s.TrainArgs, "polish") {
		// The polish refines the model written after training; the
		// sweep times the training, so it would only lengthen each run.
		a = append(a, "--polish=0")
	}
	a = append(a, s.TrainArgs...)
	return append(a, s.StepArgs[r.Step]...)
}

// hasFlag reports whether args set --name (as --name=V or --name V).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// Execute runs the sweep: every run of Plan, one at a time (they must not
// share the machine with each other), then the outputs. A run that fails
// is recorded with its error and the sweep goes on; Execute fails only
// when it cannot write its outputs or ctx is cancelled.
func (s *Spec) Execute(ctx context.Context) (*Result, error) {
	runs, err := s.Plan()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.Out, "runs"), 0o755); err != nil {
		return nil, err
	}
	if s.Weak {
		if err := s.writeWeakData(ctx); err != nil {
			return nil, err
		}
	}
	res := &Result{Spec: *s}
	start := time.Now()
	for i := range runs {
		r := &runs[i]
		rec, code := s.execute(ctx, r)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if code == 2 {
			// Every run would fail the same way: a flag train refuses.
			return nil, fmt.Errorf("study: run %s: usage error: %s", r.ID, rec.Err)
		}
		res.Records = append(res.Records, rec)
		if s.Log != nil {
			fmt.Fprintf(s.Log, "[%d/%d %s] %s\n", i+1, len(runs), time.Since(start).Round(time.Second), rec.line(s.Targets))
		}
	}
	res.derive()
	if err := res.Write(s.Out); err != nil {
		return nil, err
	}
	return res, nil
}

// execute runs one process and reads its outputs; it also returns the
// process's exit code (-1 when it did not start or was killed).
func (s *Spec) execute(ctx context.Context, r *Run) (Record, int) {
	rec := Record{Run: *r}
	if err := os.RemoveAll(r.Dir); err != nil {
		rec.Err = err.Error()
		return rec, -1
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		rec.Err = err.Error()
		return rec, -1
	}
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	name, args := s.Exe, r.Args
	cmd := exec.CommandContext(ctx, name, args...)
	base := s.Env
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = base
	logf, err := os.Create(filepath.Join(r.Dir, "log.txt"))
	if err != nil {
		rec.Err = err.Error()
		return rec, -1
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s %s\n", name, strings.Join(args, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	err = cmd.Run()
	rec.CmdS = time.Since(t0).Seconds()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		// A run that stopped before its --target exits 1 with every
		// output written: that is a result (the target not reached).
		if lerr := rec.load(s.Targets); lerr == nil && rec.TargetMissed {
			return rec, 0
		}
		rec = Record{Run: *r, CmdS: rec.CmdS}
	}
	if err != nil {
		rec.Err = fmt.Sprintf("%v (see %s)", err, logf.Name())
		if msg := lastLine(logf.Name()); msg != "" {
			rec.Err = fmt.Sprintf("%v: %s (see %s)", err, msg, logf.Name())
		}
		code := -1
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return rec, code
	}
	if err := rec.load(s.Targets); err != nil {
		rec.Err = err.Error()
	}
	return rec, 0
}

// lastLine returns the last non-empty line of a file (a failed run's error).
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	last := ""
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	return last
}

// writeWeakData writes the data of every P of a weak-scaling sweep.
func (s *Spec) writeWeakData(ctx context.Context) error {
	dir := filepath.Join(s.Out, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	maxP := s.Workers[len(s.Workers)-1]
	var lines []string
	if s.WeakRows == 0 {
		var err error
		if lines, err = dataLines(s.Data); err != nil {
			return err
		}
	}
	for _, p := range s.Workers {
		path := filepath.Join(dir, fmt.Sprintf("weak-%d.svm", p))
		if s.WeakRows > 0 {
			args := append([]string{"gen", fmt.Sprintf("--rows=%d", s.WeakRows*p), "--out=" + path}, s.GenArgs...)
			cmd := exec.CommandContext(ctx, s.Exe, args...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("study: asyncmb %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			continue
		}
		n := (len(lines)*p + maxP - 1) / maxP
		if err := os.WriteFile(path, []byte(strings.Join(lines[:n], "")), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// dataLines returns the data lines of a LIBSVM file (each with its newline;
// blank and comment lines left out).
func dataLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("study: %s has no data lines", path)
	}
	return out, nil
}

// ParseStepAxis parses scale's --step: S[:FLAGS],... into the steps and
// each one's extra train flags.
func ParseStepAxis(v string) ([]string, map[string][]string, error) {
	var steps []string
	args := map[string][]string{}
	for _, item := range SplitList(v) {
		name, flags, _ := strings.Cut(item, ":")
		name = strings.TrimSpace(name)
		if name == "" || slices.Contains(steps, name) {
			return nil, nil, fmt.Errorf("--step %q: want distinct S[:FLAGS] items such as convex or strong:--reg=l2", v)
		}
		for _, f := range strings.Fields(flags) {
			if !strings.HasPrefix(f, "-") && len(args[name]) == 0 {
				return nil, nil, fmt.Errorf("--step %q: the flags of %s must start with a flag, not %q", v, name, f)
			}
			args[name] = append(args[name], f)
		}
		steps = append(steps, name)
	}
	return steps, args, nil
}

func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Report executes the sweep (Execute) and prints its table and where the
// outputs went to w.
func (s *Spec) Report(ctx context.Context, w io.Writer) error {
	res, err := s.Execute(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(w, res.Markdown())
	fmt.Fprintf(w, "\nwrote %s, %s and figures in %s\n", filepath.Join(s.Out, "scale.csv"), filepath.Join(s.Out, "scale.md"), s.Out)
	return nil
}
