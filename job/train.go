package job

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/study"
	"golang.org/x/sys/unix"
)

// PhiStarFunc finds phi* for the problem p read from data with hash dataHash
// (from the reference cache, solving and caching it when missing); ctx
// stops the solve.
type PhiStarFunc func(ctx context.Context, p *solver.Problem, dataHash string) (float64, error)

// Train is a training job as `asyncmb train` starts it.
type Train struct {
	Config  *ranks.Config // validated, Out set
	Problem problem.Config
	Plan    *launch.Plan // resolved
	// RankArgs are every rank's arguments ("rank" and the forwarded
	// flags); Run adds --out and, when it solves for phi*, --phi-star.
	RankArgs []string
	PhiStar  PhiStarFunc    // nil: no phi* unless Config.PhiStar
	Figures  bool           // draw the run's figures into Out after it
	Manifest map[string]any // summary.json's record of the command line
	Stdout   io.Writer
	Stderr   io.Writer
}

// Run runs the job until it ends or SIGINT/SIGTERM stop it (exit 130):
// --np 1 with the local launcher in this process, else the ranks started
// by the plan, after the phi* solve with every core here rather than in
// rank 0, which the launcher gives only CPUs/N of them.
func (t *Train) Run(ctx context.Context) error {
	cfg, np := t.Config, t.Plan.NP
	for w := range cfg.Slow {
		if w >= np && np > 1 {
			return usagef("Slow names rank %d, but the workers are ranks 1..%d", w, np-1)
		}
	}
	if err := launch.CheckOutDir(cfg.Out); err != nil {
		return usagef("Out: %v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if np == 1 && t.Plan.Kind == "local" {
		cfg.Reference = reference(ctx, t.PhiStar)
		cfg.Manifest = t.Manifest
		cfg.Manifest["np"], cfg.Manifest["launcher"] = 1, "local"
		cfg.Summary = t.Stdout
		_, err := ranks.RunSerial(ctx, cfg)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		return Interrupted(ctx, t.drawFigures(err))
	}
	if _, err := os.Stat(cfg.Data); err != nil {
		return err
	}
	args := append(append([]string(nil), t.RankArgs...), "--out="+cfg.Out)
	if t.PhiStar != nil {
		lp, err := t.Problem.Load()
		if err != nil {
			return err
		}
		phi, err := t.PhiStar(ctx, lp.Problem, lp.Hash)
		if err != nil {
			return Interrupted(ctx, err)
		}
		args = append(args, "--phi-star="+strconv.FormatFloat(phi, 'g', -1, 64))
	}
	// A terminal or file is handed to the ranks as it is (the master's
	// progress line then sees a terminal); any other writer is shared by
	// the ranks' copying goroutines and must be locked.
	stdout, stderr := t.Stdout, t.Stderr
	if _, ok := stdout.(*os.File); !ok {
		stdout = &SyncWriter{W: stdout}
	}
	if _, ok := stderr.(*os.File); !ok {
		stderr = &SyncWriter{W: stderr}
	}
	return Interrupted(ctx, t.drawFigures(t.Plan.Run(ctx, args, stdout, stderr)))
}

// reference is f stopped by ctx, as ranks.Config wants it (nil for nil).
func reference(ctx context.Context, f PhiStarFunc) func(*solver.Problem, string) (float64, error) {
	if f == nil {
		return nil
	}
	return func(p *solver.Problem, hash string) (float64, error) { return f(ctx, p, hash) }
}

// drawFigures draws a finished run's figures when t.Figures is on; runErr
// is the run's error, returned unchanged (a figure that cannot be drawn is
// only a warning: the run's outputs are written).
func (t *Train) drawFigures(runErr error) error {
	if runErr != nil || !t.Figures {
		return runErr
	}
	if err := study.DrawRunDir(t.Config.Out); err != nil {
		fmt.Fprintf(t.Stderr, "asyncmb: figures: %v\n", err)
	}
	return nil
}

// SyncWriter serializes writes to W; it is safe for concurrent use.
type SyncWriter struct {
	mu sync.Mutex // guards W
	W  io.Writer
}

func (s *SyncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(b)
}

// Locked runs f holding the lock that guards W (to read what W collected).
func (s *SyncWriter) Locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// Rank is one process of a training job as `asyncmb rank` runs it.
type Rank struct {
	Config   *ranks.Config // validated, Out set
	Identity launch.Identity
	Comm     func(*comm.Config) // the network settings, applied to Identity.Config
	Join     bool               // join a running job in place of a worker that left it
	Progress string             // rank 0's progress on Stderr: auto, line or none
	PhiStar  PhiStarFunc        // rank 0's phi* when Config.PhiStar is NaN (nil: none)
	Manifest map[string]any     // rank 0's summary.json record of the command line
	// CPUProfile, when not empty, profiles the rank into CPUProfile.<rank>.
	CPUProfile string
	Stdout     io.Writer
	Stderr     io.Writer
}

// Run reads the job secret from stdin when the launcher sends it there
// (stdin's close then stops the rank, as SIGINT and SIGTERM do), meets the
// other ranks and takes part in the run; its error carries the exit code
// (RankExit).
func (r *Rank) Run(ctx context.Context) error {
	id, cfg := r.Identity, r.Config
	if id.Procs > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(id.Procs)
	}
	var stdinEOF <-chan struct{}
	if os.Getenv(launch.EnvSecretIn) == "1" {
		var err error
		if id.Config.Secret, stdinEOF, err = launch.ReadSecret(os.Stdin); err != nil {
			return err
		}
		if err := id.Config.Validate(); err != nil {
			return usagef("launch: %v", err)
		}
	}
	r.Comm(&id.Config)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := launch.StopOnEOF(ctx, stdinEOF, ExitInterrupt)
	defer cancel()
	cfg.Reference = reference(ctx, r.PhiStar)
	if err := id.Resolve(ctx); err != nil {
		if ctx.Err() != nil {
			return RankExit(ctx, id.Config.Rank, err) // a signal while waiting: 130
		}
		return err
	}
	cc := id.Config
	if r.Join {
		if cc.Rank == 0 {
			return usagef("Join: rank 0 (the master) cannot join a running job")
		}
		cc.Rejoin, cfg.Join = true, true
	}
	if len(cc.Secret) < comm.MinSecretLen && cc.Size > 1 {
		return usagef("the job secret (%s or %s) has %d bytes, want at least %d", launch.EnvSecret, launch.EnvSecretFile, len(cc.Secret), comm.MinSecretLen)
	}
	cc.Log = r.Stderr
	if cc.Rank == 0 {
		cfg.Manifest = r.Manifest
		cfg.Manifest["np"] = cc.Size
		id.AddManifest(cfg.Manifest)
		cfg.Summary, cfg.Log = r.Stdout, r.Stderr
		switch r.Progress {
		case "auto":
			cfg.Progress, cfg.ProgressTTY = r.Stderr, isTerminal(r.Stderr)
		case "line":
			cfg.Progress = r.Stderr
		}
	}
	if r.CPUProfile != "" {
		stop, err := StartCPUProfile(fmt.Sprintf("%s.%d", r.CPUProfile, cc.Rank))
		if err != nil {
			return err
		}
		defer stop()
	}
	cm, err := comm.New(ctx, cc)
	if err != nil {
		return RankExit(ctx, cc.Rank, id.Explain(err))
	}
	defer cm.Close()
	return RankExit(ctx, cc.Rank, ranks.Run(ctx, cm, cfg))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
