package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// MaxRanks bounds the number of ranks any launcher starts; it is checked
// before anything starts.
const MaxRanks = 4096

// supervisor runs the child processes of one job, for every launcher:
// local ranks, ssh clients (one per remote rank) or one srun. The first
// child that fails, or ctx's cancellation, stops all the others: a polite
// stop (SIGTERM to the child's process group, or closing an ssh client's
// stdin), then SIGKILL after the grace period. Children run in their own
// process groups with a parent-death signal, so none outlives the
// launcher. Not safe for concurrent use.
type supervisor struct {
	stdout, stderr io.Writer
	prefix         bool
	grace          time.Duration
	// workersMayLeave: see Spec.WorkersMayLeave.
	workersMayLeave bool

	outMu   sync.Mutex // serializes whole lines from all children
	kids    []*proc
	writers []*lineWriter
	results chan result
}

// proc is one started process.
type proc struct {
	rank int
	name string // RankError.Name for a child that is not one rank
	cmd  *exec.Cmd
	// terminate asks the child to stop; nil means SIGTERM to its group.
	terminate func()
}

func newSupervisor(stdout, stderr io.Writer, prefix bool, grace time.Duration) *supervisor {
	return &supervisor{stdout: stdout, stderr: stderr, prefix: prefix, grace: grace, results: make(chan result, MaxRanks+1)}
}

// start starts cmd as rank (name "" for a rank, else what it is) and
// watches it. terminate, if not nil, replaces SIGTERM as the polite stop.
func (sv *supervisor) start(rank int, cmd *exec.Cmd, terminate func()) error {
	return sv.startNamed(rank, "", cmd, terminate)
}

func (sv *supervisor) startNamed(rank int, name string, cmd *exec.Cmd, terminate func()) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = sv.stdout, sv.stderr
	if sv.prefix {
		prefix := fmt.Sprintf("[rank %d] ", rank)
		o := &lineWriter{mu: &sv.outMu, w: sv.stdout, prefix: prefix}
		e := &lineWriter{mu: &sv.outMu, w: sv.stderr, prefix: prefix}
		sv.writers = append(sv.writers, o, e)
		cmd.Stdout, cmd.Stderr = o, e
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	k := &proc{rank: rank, name: name, cmd: cmd, terminate: terminate}
	sv.kids = append(sv.kids, k)
	go func() { sv.results <- result{rank: rank, name: name, err: cmd.Wait()} }()
	return nil
}

// wait waits for every child; see supervisor for how a failure stops them.
// With workersMayLeave, a worker (a rank other than 0) that departs while
// rank 0 runs (killed by a signal, or exiting 4 "lost peer" or 130
// "interrupted": see departed) does not stop the job: the master notices
// the loss, goes on with the others and decides itself when too few are
// left (--min-workers), so the job's outcome is rank 0's. A worker that
// fails with an error of its own (a parse error, a usage error, an ssh
// client that cannot connect) still stops the job at once: the master
// could otherwise wait for it until the rendezvous timeout. When rank 0 then fails, the error names the first child that
// failed on its own rather than one that lost it as a peer (within
// causeWait), or is ctx's error.
func (sv *supervisor) wait(ctx context.Context) error {
	defer sv.flush()
	running := len(sv.kids)
	master := false // rank 0 runs and workers may leave
	for _, k := range sv.kids {
		master = master || (sv.workersMayLeave && k.rank == 0 && k.name == "")
	}
	var left []result // workers that failed while rank 0 ran
	for running > 0 {
		select {
		case res := <-sv.results:
			running--
			if res.err == nil {
				if res.rank == 0 && res.name == "" {
					master = false
				}
				continue
			}
			if master && res.rank != 0 && res.name == "" && departed(res.err) {
				left = append(left, res)
				continue
			}
			for _, l := range left {
				if (&RankError{Err: l.err}).ExitCode() != 4 {
					res = l
					break
				}
			}
			res, running = rootCause(res, sv.results, running)
			sv.stop(running)
			return &RankError{Rank: res.rank, Name: res.name, Err: res.err}
		case <-ctx.Done():
			if master {
				// Only the master is asked to stop: it ends the run and
				// stops the workers after its evaluation. A worker asked
				// too would leave the run, and with all of them gone
				// first the run would end as "too few workers".
				sv.stopMasterFirst(running)
			} else {
				sv.stop(running)
			}
			return fmt.Errorf("launch: job stopped: %w", ctx.Err())
		}
	}
	return nil
}

// departed reports whether a child's exit is a departure the master
// survives rather than an error the job must stop for: death by a signal
// (kill -9, the OOM killer), "lost peer" (4) or "interrupted" (130, a
// worker that was asked to stop and left). An ssh client reports a remote
// rank's death as 255, which cannot be told from a failed connection, so
// over ssh only a rank that exits 4 or 130 departs.
func departed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return true
	}
	c := ee.ExitCode()
	return c == 4 || c == 130
}

// stopAll stops every child started so far (after a failed start).
func (sv *supervisor) stopAll() {
	sv.stop(len(sv.kids))
	sv.flush()
}

// stop asks every child to stop, SIGKILLs those still running after the
// grace period, and collects the running remaining results.
func (sv *supervisor) stop(running int) { sv.stopSome(running, func(*proc) bool { return true }) }

// stopMasterFirst asks rank 0 alone to stop and gives the job the grace
// period to end on its own (the workers stop when the master tells them,
// or exit on losing it); what is still running then is SIGKILLed.
func (sv *supervisor) stopMasterFirst(running int) {
	sv.stopSome(running, func(k *proc) bool { return k.rank == 0 && k.name == "" })
}

// stopSome asks the children that ask selects to stop, waits the grace period
// for the running remaining results, SIGKILLs what still runs then, and
// finally every process left in the groups (grandchildren get no grace).
func (sv *supervisor) stopSome(running int, ask func(*proc) bool) {
	for _, k := range sv.kids {
		if !ask(k) {
			continue
		}
		if k.terminate != nil {
			k.terminate()
		} else {
			k.signal(syscall.SIGTERM)
		}
	}
	t := time.NewTimer(sv.grace)
	defer t.Stop()
	for running > 0 {
		select {
		case <-sv.results:
			running--
		case <-t.C:
			sv.signalAll(syscall.SIGKILL)
			for ; running > 0; running-- {
				<-sv.results
			}
		}
	}
	sv.signalAll(syscall.SIGKILL)
}

func (sv *supervisor) signalAll(sig syscall.Signal) {
	for _, k := range sv.kids {
		k.signal(sig)
	}
}

func (k *proc) signal(sig syscall.Signal) {
	if k.cmd.Process != nil {
		syscall.Kill(-k.cmd.Process.Pid, sig) // the whole process group
	}
}

func (sv *supervisor) flush() {
	for _, w := range sv.writers {
		w.flush()
	}
}
