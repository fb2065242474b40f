// Package launch starts asyncmb ranks and tells each one who it is.
//
// Local starts N child processes on this machine; a rank process calls
// FromEnv to learn its rank, the job size, the job id and secret and where
// to meet rank 0, so that other launchers (Slurm, ssh) only have to set
// different environment variables. launch imports only comm of asyncmb.
package launch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment variables set by launchers and read by FromEnv.
const (
	EnvRank       = "ASYNCMB_RANK"        // this process's rank
	EnvSize       = "ASYNCMB_SIZE"        // number of ranks
	EnvJobID      = "ASYNCMB_JOB_ID"      // job id
	EnvAddr       = "ASYNCMB_ADDR"        // rank 0's rendezvous address host:port
	EnvStoreDir   = "ASYNCMB_STORE_DIR"   // directory of a rendezvous file store
	EnvStoreAddr  = "ASYNCMB_STORE_ADDR"  // address of a rendezvous TCP store
	EnvSecret     = "ASYNCMB_SECRET"      // job secret (hex or text)
	EnvSecretFile = "ASYNCMB_SECRET_FILE" // file holding the job secret
	EnvBind       = "ASYNCMB_BIND"        // local address or interface to use

	EnvCodec             = "ASYNCMB_CODEC"              // none, s2 or zstd
	EnvHeartbeatTimeout  = "ASYNCMB_HEARTBEAT_TIMEOUT"  // Go duration
	EnvRendezvousTimeout = "ASYNCMB_RENDEZVOUS_TIMEOUT" // Go duration
)

// identityVars are stripped from the parent's environment before the
// children get theirs, so a launcher run inside a rank does not leak its
// own identity.
var identityVars = []string{EnvRank, EnvSize, EnvJobID, EnvAddr, EnvStoreDir, EnvStoreAddr, EnvSecret, EnvSecretFile,
	EnvLauncher, EnvNodes, EnvSecretIn, EnvRendezvous}

// Spec describes a local job.
type Spec struct {
	// NP is the number of ranks (>= 1).
	NP int
	// Path is the executable; empty means this program (os.Executable).
	Path string
	// Args are the arguments of every rank (without argv[0]).
	Args []string
	// Env holds extra KEY=VALUE entries for every rank, added to this
	// process's environment.
	Env []string
	// JobID defaults to a fresh random id.
	JobID string
	// Addr is rank 0's listen address; default "127.0.0.1:0", the actual
	// port then travels through a file store in a temporary directory.
	Addr string
	// Stdout and Stderr receive the ranks' output (default os.Stdout and
	// os.Stderr). With Prefix, every line is prefixed by "[rank N] ".
	Stdout, Stderr io.Writer
	Prefix         bool
	// WorkersMayLeave: a worker (a rank other than 0) that fails while rank
	// 0 runs does not stop the job; rank 0 (asyncmb's master, which notices
	// the loss and goes on with the others) decides the outcome. Without it
	// the first failure of any rank stops all.
	WorkersMayLeave bool
	// Grace is how long ranks get between SIGTERM and SIGKILL when the job
	// is stopped (default 3 s).
	Grace time.Duration
	// ProcsPerRank sets each rank's GOMAXPROCS; 0 means max(1, CPUs/NP),
	// like an MPI launcher binding one process per core, unless GOMAXPROCS
	// is already in the environment or Env. With more runnable threads than
	// cores, the Go scheduler's idle threads spinning for work steal CPU
	// from the other ranks (an 8-byte round trip between two ranks on two
	// cores took 1.8x longer with GOMAXPROCS=2 than with 1).
	ProcsPerRank int
}

// RankError reports the rank that failed first and how.
type RankError struct {
	Rank int
	Name string // what failed when it is not one rank ("srun"); else ""
	Err  error  // usually an *exec.ExitError
}

func (e *RankError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("launch: %s failed: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("launch: rank %d failed: %v", e.Rank, e.Err)
}
func (e *RankError) Unwrap() error { return e.Err }

// ExitCode passes on a rank's "usage" (2, e.g. a batch larger than its
// shard, found only once the rank has read it), "rendezvous timeout" (3) and
// "lost peer" (4) exit codes, so that the launcher exits as the rank did;
// anything else is 1.
func (e *RankError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		if c := ee.ExitCode(); c == 2 || c == 3 || c == 4 {
			return c
		}
	}
	return 1
}

// MaxLocalPerCPU bounds a local job's ranks per CPU: more only thrash.
const MaxLocalPerCPU = 64

// CheckLocalNP checks the number of ranks of a local job before anything
// starts: 1 <= np <= min(MaxRanks, MaxLocalPerCPU * CPUs).
func CheckLocalNP(np int) error {
	limit := min(MaxRanks, MaxLocalPerCPU*runtime.NumCPU())
	if np < 1 || np > limit {
		return fmt.Errorf("launch: %d ranks: want 1 to %d on this machine (%d per CPU); use --launcher ssh or srun for more", np, limit, MaxLocalPerCPU)
	}
	return nil
}

// NewSecret returns a fresh random job secret (hex text).
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Local runs spec.NP copies of the executable as child processes and waits
// for them. Each child learns its identity from the environment (see
// FromEnv) and gets a fresh job secret. The first rank that fails, or the
// cancellation of ctx, stops all the others: SIGTERM to each child's
// process group, then SIGKILL after the grace period. Children run in
// their own process groups with a parent-death signal, so none outlives
// the launcher. The error names the first rank that failed and its exit
// status (a rank that failed on its own rather than one that lost it as a
// peer, when both come within causeWait), or is ctx's error.
func Local(ctx context.Context, spec Spec) error {
	if err := CheckLocalNP(spec.NP); err != nil {
		return err
	}
	if spec.JobID == "" {
		spec.JobID = "local-" + NewSecret()[:12]
	}
	if spec.Addr == "" {
		spec.Addr = "127.0.0.1:0"
	}
	if err := spec.defaults(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "asyncmb-job-")
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	defer os.RemoveAll(dir)

	base := WithoutEnv(os.Environ(), identityVars)
	base = append(base, spec.Env...)
	if !hasVar(base, "GOMAXPROCS") {
		procs := spec.ProcsPerRank
		if procs <= 0 {
			procs = max(1, runtime.NumCPU()/spec.NP)
		}
		base = append(base, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	base = append(base,
		EnvSize+"="+strconv.Itoa(spec.NP),
		EnvJobID+"="+spec.JobID,
		EnvAddr+"="+spec.Addr,
		EnvStoreDir+"="+dir,
		EnvSecret+"="+NewSecret(),
		EnvLauncher+"=local",
	)

	sv := newSupervisor(spec.Stdout, spec.Stderr, spec.Prefix, spec.Grace)
	sv.workersMayLeave = spec.WorkersMayLeave
	for r := range spec.NP {
		cmd := exec.Command(spec.Path, spec.Args...)
		cmd.Env = append(append([]string(nil), base...), EnvRank+"="+strconv.Itoa(r))
		if err := sv.start(r, cmd, nil); err != nil {
			sv.stopAll()
			return fmt.Errorf("launch: starting rank %d: %w", r, err)
		}
	}
	return sv.wait(ctx)
}

// result is how a rank process ended.
type result struct {
	rank int
	name string
	err  error
}

// causeWait is how long a "lost peer" failure waits for the failure that
// caused it.
const causeWait = 250 * time.Millisecond

// rootCause: a rank that exits with "lost peer" (4) is usually reporting
// another rank's death, and may be reaped first (a killed rank's sockets
// close before its parent collects it). So for a first failure with exit
// code 4, it waits up to causeWait for another rank's failure that is not
// a lost peer and returns that one instead. It returns the failure to
// report and how many ranks are still running.
func rootCause(first result, results <-chan result, running int) (result, int) {
	if (&RankError{Err: first.err}).ExitCode() != 4 {
		return first, running
	}
	t := time.NewTimer(causeWait)
	defer t.Stop()
	for running > 0 {
		select {
		case res := <-results:
			running--
			if res.err != nil && (&RankError{Err: res.err}).ExitCode() != 4 {
				return res, running
			}
		case <-t.C:
			return first, running
		}
	}
	return first, running
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			return true
		}
	}
	return false
}

// WithoutEnv is env (NAME=VALUE entries) without the variables named in
// drop; env is not modified.
func WithoutEnv(env, drop []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if k == d {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// lineWriter prefixes every line written to it and writes whole lines to w
// under mu, so that ranks' lines do not interleave.
type lineWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	part   []byte // an unfinished line
}

func (lw *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lw.part = append(lw.part, b...)
			break
		}
		line := append(append([]byte(lw.prefix), lw.part...), b[:i+1]...)
		lw.part = lw.part[:0]
		lw.mu.Lock()
		_, err := lw.w.Write(line)
		lw.mu.Unlock()
		if err != nil {
			return n - len(b), err
		}
		b = b[i+1:]
	}
	return n, nil
}

func (lw *lineWriter) flush() {
	if len(lw.part) > 0 {
		lw.Write([]byte("\n"))
	}
}
