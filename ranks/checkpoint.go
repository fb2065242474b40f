package ranks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// Master checkpoints: the master's state (x, the averaging state, t, the
// rows used, the schedule) in solver's checkpoint format, tagged with the
// problem and the mode, written atomically to <out>/checkpoint every
// Config.CheckpointEvery and when the run is interrupted (SIGTERM, Slurm's
// warning before the wall-time limit). Config.Resume continues a run from
// such a directory: t and the rows used continue where the checkpoint
// left them (the stopping rules count from 0 of the first run), the
// trace's snapshots up to the checkpoint are copied into the new trace,
// and the workers start afresh (they hold nothing but x, which the master
// sends). Not kept: the per-worker statistics and the delay histogram of
// the earlier part (summary.json counts from the resume on), the
// generator states of the workers' samplers (they restart from the seed).

// CheckpointFile is the master checkpoint's name in the output directory.
const CheckpointFile = "checkpoint"

// checkpointTag names what a master checkpoint belongs to.
func checkpointTag(cfg *Config, hash string, d int) string {
	return "master " + cfg.Mode.String() + " " + solver.ProblemKey(hash, d, cfg.Bias, cfg.Loss, cfg.Reg)
}

// readResume reads the checkpoint of Config.Resume and checks it belongs
// to this problem.
func readResume(cfg *Config, hash string, d int) (*solver.Checkpoint, error) {
	ck, err := solver.ReadCheckpoint(filepath.Join(cfg.Resume, CheckpointFile))
	if err != nil {
		return nil, fmt.Errorf("ranks: --resume: %w", err)
	}
	if want := checkpointTag(cfg, hash, d); ck.Tag != want {
		return nil, fmt.Errorf("ranks: --resume: %s belongs to another run (%q), not %q", cfg.Resume, ck.Tag, want)
	}
	return ck, nil
}

// checkpointer writes the master's checkpoints during the loop.
type checkpointer struct {
	path  string
	tag   string
	every time.Duration
	last  time.Time
	n     int // written
}

func (r *masterRun) newCheckpointer(hash string) {
	r.ckpt = &checkpointer{path: filepath.Join(r.cfg.Out, CheckpointFile), tag: checkpointTag(r.cfg, hash, r.d),
		every: r.cfg.CheckpointEvery, last: time.Now()}
}

// maybeCheckpoint writes a checkpoint if CheckpointEvery has passed (or
// force); the loop calls it every few updates.
func (r *masterRun) maybeCheckpoint(force bool) error {
	k := r.ckpt
	if k == nil || (!force && (k.every <= 0 || time.Since(k.last) < k.every)) {
		return nil
	}
	// The trace's snapshots up to here reach the file first: a resumed
	// run continues the trace of a master that was killed.
	if err := r.tw.w.Flush(); err != nil {
		return err
	}
	ck := r.m.Export()
	ck.Tag = k.tag
	if err := solver.WriteCheckpoint(k.path, ck); err != nil {
		return err
	}
	if err := os.Chmod(k.path, OutputMode); err != nil {
		return err
	}
	k.last = time.Now()
	k.n++
	return nil
}

// copyTrace copies the snapshots of the trace at from with t < upTo into
// tw (a resumed run's trace continues the first one's).
// It returns the wall time of the last one copied.
func copyTrace(from string, upTo int64, tw *traceWriter) (int64, error) {
	tr, err := openTrace(from, tw.d)
	if err != nil {
		return 0, err
	}
	defer tr.close()
	var s Snapshot
	var wallNs int64
	for {
		err := tr.next(&s)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return wallNs, nil // the end, or a record cut off by the first run's death
		}
		if err != nil {
			return wallNs, err
		}
		if s.T >= upTo {
			return wallNs, nil // the resumed run records t = upTo itself
		}
		if err := tw.add(&s); err != nil {
			return wallNs, err
		}
		wallNs = s.WallNs
	}
}

// resumeTrace finds the trace of the run being resumed: trace.bin, or the
// trace.bin.partial of a run that died; it is moved aside first when the
// new run writes into the same directory.
func resumeTrace(cfg *Config) (string, error) {
	for _, name := range []string{"trace.bin", "trace.bin.partial"} {
		p := filepath.Join(cfg.Resume, name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if filepath.Clean(cfg.Resume) != filepath.Clean(cfg.Out) {
			return p, nil
		}
		aside := filepath.Join(cfg.Out, "trace.bin.resumed")
		if err := os.Rename(p, aside); err != nil {
			return "", err
		}
		return aside, nil
	}
	return "", nil
}

// resume prepares a resumed run (Config.Resume): the checkpoint, and the
// first run's trace moved aside if it is in the output directory.
func resume(cfg *Config, hash string, d int, mc *algo.MasterConfig) (oldTrace string, err error) {
	if cfg.Resume == "" {
		return "", nil
	}
	ck, err := readResume(cfg, hash, d)
	if err != nil {
		return "", err
	}
	mc.Resume = ck
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "asyncmb: rank 0: resumed from t=%d (%s)\n", ck.T, cfg.Resume)
	}
	return resumeTrace(cfg)
}

// continueTrace copies the first run's snapshots before t into the new
// trace, and drops a trace moved aside; it returns the wall time the new
// snapshots continue from.
func continueTrace(cfg *Config, oldTrace string, upTo int64, tw *traceWriter) (int64, error) {
	if oldTrace == "" {
		return 0, nil
	}
	wallNs, err := copyTrace(oldTrace, upTo, tw)
	if err != nil {
		return 0, fmt.Errorf("ranks: --resume: %w", err)
	}
	if filepath.Base(oldTrace) == "trace.bin.resumed" {
		return wallNs, os.Remove(oldTrace)
	}
	return wallNs, nil
}

// finalCheckpoint writes the last checkpoint when the run was interrupted
// (so that it can be resumed) or checkpoints were asked for.
func (r *masterRun) finalCheckpoint() error {
	if r.stopReason == "interrupted" || r.cfg.CheckpointEvery > 0 {
		return r.maybeCheckpoint(true)
	}
	return nil
}
