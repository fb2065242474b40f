package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/asyncmb/asyncmb/ranks"
)

// rankExit applies the exit-code table to a rank's outcome, the same way
// whatever stopped it: a signal (SIGINT, SIGTERM) at any phase is 130
// (rank 0 has then written the outputs of what was trained, marked
// interrupted); a failure another rank has reported is 1 without a second
// message; otherwise the error's own code (3 rendezvous timeout, 4 lost
// peer or too few workers, 1 anything else).
func rankExit(sig context.Context, rank int, err error) error {
	if sig.Err() != nil {
		msg := "interrupted"
		if rank == 0 && err == nil {
			msg = "interrupted (the outputs of what was trained are written)"
		}
		return exitErr{code: exitInterrupt, err: errors.New(msg)}
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, ranks.ErrReported) {
		return exitErr{code: exitFailure, err: err, quiet: true}
	}
	return rankError{rank: rank, err: err}
}

// rankError names the rank in front of its error.
type rankError struct {
	rank int
	err  error
}

func (e rankError) Error() string { return fmt.Sprintf("rank %d: %v", e.rank, e.err) }
func (e rankError) Unwrap() error { return e.err }
