// Package job runs a training job: the launcher's side of `asyncmb train`
// (the serial run, or the phi* solve with every core, launching the ranks
// and drawing the figures) and one rank of it (`asyncmb rank`), with the
// signals that stop them and the exit codes their outcomes map to. It sees
// no flags: cmd/asyncmb fills its plain structs, and names a UsageError's
// field as a flag.
package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/ranks"
)

// Exit codes a job's errors carry (the others come with the errors of
// launch and comm: 3 rendezvous timeout, 4 lost peer).
const (
	ExitFailure   = 1
	ExitUsage     = 2
	ExitInterrupt = 130
)

// ExitError carries an exit code; a quiet one is not printed (another
// process has reported the cause).
type ExitError struct {
	Code  int
	Err   error
	Quiet bool
}

func (e ExitError) Error() string { return e.Err.Error() }
func (e ExitError) Unwrap() error { return e.Err }
func (e ExitError) ExitCode() int { return e.Code }

// UsageError is a job's setting that cannot work (exit 2). Its message
// starts with the name of the field at fault where there is one
// ("Out: ...", "Slow names rank 5, ..."), as a Validate error does.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }
func (e *UsageError) ExitCode() int { return ExitUsage }

func usagef(format string, args ...any) error { return &UsageError{fmt.Errorf(format, args...)} }

// Interrupted turns the error of a run stopped by a signal (ctx done) into
// exit 130.
func Interrupted(ctx context.Context, err error) error {
	if errors.Is(err, problem.ErrSolveInterrupted) {
		return ExitError{Code: ExitInterrupt, Err: err}
	}
	if err != nil && ctx.Err() != nil {
		return ExitError{Code: ExitInterrupt, Err: errors.New("interrupted (the outputs of what was trained are written)")}
	}
	return err
}

// RankExit applies the exit-code table to a rank's outcome, the same way
// whatever stopped it: a signal (SIGINT, SIGTERM) at any phase is 130
// (rank 0 has then written the outputs of what was trained, marked
// interrupted); a failure another rank has reported is 1 without a second
// message; otherwise the error's own code (3 rendezvous timeout, 4 lost
// peer or too few workers, 1 anything else).
func RankExit(sig context.Context, rank int, err error) error {
	if sig.Err() != nil {
		msg := "interrupted"
		if rank == 0 && err == nil {
			msg = "interrupted (the outputs of what was trained are written)"
		}
		return ExitError{Code: ExitInterrupt, Err: errors.New(msg)}
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, ranks.ErrReported) {
		return ExitError{Code: ExitFailure, Err: err, Quiet: true}
	}
	return RankError{Rank: rank, Err: err}
}

// RankError names the rank in front of its error.
type RankError struct {
	Rank int
	Err  error
}

func (e RankError) Error() string { return fmt.Sprintf("rank %d: %v", e.Rank, e.Err) }
func (e RankError) Unwrap() error { return e.Err }

// StartCPUProfile writes a CPU profile to path until the returned stop is
// called.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// CheckBatchBound refuses, before any rank starts or allocates, a batch
// that no shard of data can hold: a LIBSVM row takes at least 2 bytes
// ("1\n"), so the file has at most size/2 rows. The exact check, against
// each worker's shard, is done at setup (ranks.BatchError, exit code 2).
func CheckBatchBound(data string, batch int) error {
	st, err := os.Stat(data)
	if err != nil || !st.Mode().IsRegular() {
		return nil // reported where the file is read
	}
	if rows := st.Size() / 2; int64(batch) > rows {
		return usagef("Batch %d: %s (%d bytes) has at most %d rows", batch, data, st.Size(), rows)
	}
	return nil
}
