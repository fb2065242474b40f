package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/solver"
)

// handJob is a run whose ranks the test starts by hand (as an ssh launcher
// would), so that it can kill one of them.
type handJob struct {
	t     *testing.T
	out   string
	env   []string // the job's identity (size, id, store, secret)
	args  []string
	procs []*exec.Cmd
	errs  []*job.SyncWriter
	bufs  []*bytes.Buffer
}

// newHand prepares a job of np ranks of `asyncmb rank args...` (this test
// binary as asyncmb) with a fresh secret and a file store for the
// rendezvous; spawn starts its ranks.
func newHand(t *testing.T, np int, args ...string) *handJob {
	j := &handJob{t: t, out: t.TempDir()}
	j.env = append(os.Environ(), "ASYNCMB_TEST_MAIN=1", "GOMAXPROCS=1",
		launch.EnvSize+"="+fmt.Sprint(np), launch.EnvJobID+"=hand", launch.EnvAddr+"=127.0.0.1:0",
		launch.EnvStoreDir+"="+t.TempDir(), launch.EnvSecret+"="+launch.NewSecret())
	j.args = append([]string{"rank", "--out", j.out, "--progress", "line"}, args...)
	t.Cleanup(j.kill)
	return j
}

// spawn starts rank r with extra arguments; its index in procs is returned.
func (j *handJob) spawn(r int, extra ...string) int {
	j.t.Helper()
	cmd := exec.Command(os.Args[0], append(append([]string(nil), j.args...), extra...)...)
	cmd.Env = append(j.env, launch.EnvRank+"="+fmt.Sprint(r))
	buf := &bytes.Buffer{}
	w := &job.SyncWriter{W: buf}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		j.t.Fatal(err)
	}
	j.procs, j.errs, j.bufs = append(j.procs, cmd), append(j.errs, w), append(j.bufs, buf)
	return len(j.procs) - 1
}

// startHand starts every rank of a job of np.
func startHand(t *testing.T, np int, args ...string) *handJob {
	t.Helper()
	j := newHand(t, np, args...)
	for r := range np {
		j.spawn(r)
	}
	return j
}

func (j *handJob) output(r int) string {
	w := j.errs[r]
	var s string
	w.Locked(func() { s = j.bufs[r].String() })
	return s
}

// waitFor waits until rank r has printed s, and returns when.
func (j *handJob) waitFor(r int, s string, within time.Duration) time.Time {
	j.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(j.output(r), s) {
		if time.Now().After(deadline) {
			j.t.Fatalf("rank %d did not print %q within %v:\n%s", r, s, within, j.output(r))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now()
}

// wait returns each rank's exit code.
func (j *handJob) wait() []int {
	codes := make([]int, len(j.procs))
	for r, p := range j.procs {
		err := p.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			codes[r] = ee.ExitCode() // -1 when killed by a signal
		default:
			codes[r] = -2
		}
	}
	return codes
}

func (j *handJob) kill() {
	for _, p := range j.procs {
		if p.Process != nil && p.ProcessState == nil {
			p.Process.Kill()
		}
	}
}

type faultSummary struct {
	trainSummary
	Final struct {
		RelAvg float64 `json:"rel_subopt_avg"`
	}
	LostWorkers []struct {
		Rank   int
		T      int64
		TrainS float64 `json:"train_s"`
		Phase  string
		Reason string
	} `json:"lost_workers"`
}

func (j *handJob) summary() faultSummary {
	j.t.Helper()
	b, err := os.ReadFile(filepath.Join(j.out, "summary.json"))
	if err != nil {
		j.t.Fatalf("%v\n%s", err, j.output(0))
	}
	var s faultSummary
	if err := json.Unmarshal(b, &s); err != nil {
		j.t.Fatal(err)
	}
	return s
}

// TestLostWorker is issue 12's first acceptance point: kill -9 of a worker
// in the middle of a run (real processes, 1 master + 3 workers on a9a
// l1-logistic 1e-4) costs the run nothing but that worker: the master
// notices within the heartbeat timeout (a killed process's sockets close at
// once: well under a second), logs it, hands the lost shard to another
// worker, goes on with the other two in async, sync and bounded mode,
// evaluates its trace without the lost worker (the master reads its
// shard), exits 0 and lists the loss in summary.json. Async still reaches
// phi*(1+1e-3) (measured: t=4176, against t=4098 without the loss; before
// the shard was handed over the run stalled at 1.9e-3 after 40 epochs).
// The other modes run for a fixed time and are checked loosely. (Every
// run lasts well past the kill: a worker lost after training is lost in
// the evaluation, another path.)
func TestLostWorker(t *testing.T) {
	phiStar := refOptimum(t, "a9a", "l1-logistic", 1e-4)
	base := []string{"--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4",
		"--tau", "0", "--average", "tail", "--phi-star", fmt.Sprint(phiStar), "--jitter", "4ms"}
	for _, tc := range []struct {
		name   string
		args   []string
		target bool    // must reach --target 1e-3
		rel    float64 // else: final relative suboptimality below this
	}{
		{"async target", []string{"--target", "1e-3", "--epochs", "60"}, true, 0},
		{"sync", []string{"--mode", "sync", "--time", "3s"}, false, 3e-2},
		{"bounded", []string{"--mode", "bounded", "--max-delay", "2", "--time", "3s"}, false, 3e-2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := startHand(t, 4, append(base, tc.args...)...)
			j.waitFor(0, "upd/s", 60*time.Second) // training runs
			killed := time.Now()
			j.procs[2].Process.Signal(syscall.SIGKILL)
			noticed := j.waitFor(0, "worker 2 left", 30*time.Second)
			t.Logf("the master noticed the loss %v after kill -9", noticed.Sub(killed).Round(time.Millisecond))
			codes := j.wait()
			if codes[0] != 0 || codes[1] != 0 || codes[3] != 0 {
				t.Fatalf("exit codes %v, want 0 for ranks 0, 1, 3\nrank 0:\n%s\nrank 1:\n%s", codes, j.output(0), j.output(1))
			}
			s := j.summary()
			if len(s.LostWorkers) != 1 || s.LostWorkers[0].Rank != 2 || s.LostWorkers[0].Phase != "training" || s.LostWorkers[0].T <= 0 {
				t.Fatalf("lost workers %+v, want rank 2 during training", s.LostWorkers)
			}
			if tc.target {
				if s.Target == nil || !s.Target.Reached {
					t.Errorf("target 1e-3 not reached after the loss: final rel. subopt %g (%+v)", s.Final.RelAvg, s.Target)
				}
			} else if !(s.Final.RelAvg < tc.rel) {
				t.Errorf("final relative suboptimality %g, want < %g", s.Final.RelAvg, tc.rel)
			}
			if !strings.Contains(j.output(0), "adopts the shards of workers [2]") {
				t.Errorf("the lost shard was not handed over:\n%s", j.output(0))
			}
			t.Logf("lost %+v; %d updates, final rel. subopt %.3g", s.LostWorkers[0], s.Updates, s.Final.RelAvg)
			j.checkOutputs("model")
		})
	}
}

// checkOutputs: the outputs of a finished (model) or unfinished
// (model.partial) run are there, all with the same mode, and no partial
// trace is left.
func (j *handJob) checkOutputs(model string) {
	j.t.Helper()
	for _, f := range []string{"summary.json", "trace.csv", "trace.bin", model} {
		st, err := os.Stat(filepath.Join(j.out, f))
		if err != nil {
			j.t.Error(err)
			continue
		}
		if st.Mode().Perm() != 0o644 {
			j.t.Errorf("%s has mode %v, want 0644 like every output", f, st.Mode().Perm())
		}
	}
	for _, f := range []string{"trace.bin.partial", map[string]string{"model": "model.partial", "model.partial": "model"}[model]} {
		if _, err := os.Stat(filepath.Join(j.out, f)); err == nil {
			j.t.Errorf("%s left next to %s", f, model)
		}
	}
}

// TestSignals: SIGTERM is honoured by every rank at every phase, with exit
// code 130: rank 0 in training writes the outputs of what was trained
// (status interrupted, model.partial); rank 0 or a worker waiting in the
// rendezvous stops at once; a worker in training leaves the run at once
// (the master goes on without it).
func TestSignals(t *testing.T) {
	base := []string{"--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4",
		"--reference=false", "--time", "1m", "--jitter", "1ms"}
	exitWithin := func(t *testing.T, j *handJob, r int, within time.Duration) int {
		t.Helper()
		done := make(chan int, 1)
		go func() { done <- j.wait()[r] }()
		select {
		case code := <-done:
			return code
		case <-time.After(within):
			t.Fatalf("rank %d still running %v after SIGTERM:\n%s", r, within, j.output(r))
		}
		return 0
	}
	t.Run("rank 0 in training", func(t *testing.T) {
		j := startHand(t, 3, base...)
		j.waitFor(0, "upd/s", 60*time.Second)
		j.procs[0].Process.Signal(syscall.SIGTERM)
		codes := j.wait()
		if codes[0] != exitInterrupt || codes[1] != 0 || codes[2] != 0 {
			t.Fatalf("exit codes %v, want 130 0 0\n%s", codes, j.output(0))
		}
		s := j.summary()
		if s.StopReason != "interrupted" || s.Updates == 0 {
			t.Errorf("stop reason %q after %d updates", s.StopReason, s.Updates)
		}
		j.checkOutputs("model.partial")
		// SIGTERM (Slurm's warning before the wall-time limit) leaves a
		// checkpoint of the last state, to --resume from.
		ck, err := solver.ReadCheckpoint(filepath.Join(j.out, "checkpoint"))
		if err != nil || ck.T != s.Updates {
			t.Errorf("checkpoint after SIGTERM: %v, t=%v; want t=%d", err, ck, s.Updates)
		}
	})
	t.Run("a worker in training", func(t *testing.T) {
		j := startHand(t, 4, append(base[:len(base)-4], "--time", "3s", "--jitter", "1ms")...)
		j.waitFor(0, "upd/s", 60*time.Second)
		sent := time.Now()
		j.procs[2].Process.Signal(syscall.SIGTERM)
		j.waitFor(0, "worker 2 left", 10*time.Second)
		t.Logf("the worker left %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
		codes := j.wait()
		if codes[2] != exitInterrupt || codes[0] != 0 || codes[1] != 0 || codes[3] != 0 {
			t.Fatalf("exit codes %v, want 0 0 130 0\n%s\n%s", codes, j.output(0), j.output(2))
		}
		s := j.summary()
		if len(s.LostWorkers) != 1 || !strings.Contains(s.LostWorkers[0].Reason, "signal") {
			t.Errorf("lost workers %+v, want rank 2 stopped by a signal", s.LostWorkers)
		}
		j.checkOutputs("model")
	})
	for _, r := range []int{0, 1} {
		t.Run(fmt.Sprintf("rank %d in the rendezvous", r), func(t *testing.T) {
			// A job of 3 of which only this rank runs: it waits.
			j := startHandAs(t, r, 3, base...)
			time.Sleep(300 * time.Millisecond)
			j.procs[0].Process.Signal(syscall.SIGTERM)
			if code := exitWithin(t, j, 0, 2*time.Second); code != exitInterrupt {
				t.Fatalf("exit %d, want 130\n%s", code, j.output(0))
			}
		})
	}
}

// startHandAs starts only rank r of a job of size np.
func startHandAs(t *testing.T, r, np int, args ...string) *handJob {
	t.Helper()
	j := newHand(t, np, args...)
	j.spawn(r)
	return j
}

// TestLateJoin: a worker killed mid-run and started again with --join
// gets the current x and contributes updates until the end (counted in
// summary.json's joined_workers); the run completes.
func TestLateJoin(t *testing.T) {
	lateJoin(t, "--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4",
		"--tau", "0", "--average", "tail", "--phi-star", fmt.Sprint(refOptimum(t, "a9a", "l1-logistic", 1e-4)),
		"--jitter", "2ms", "--time", "5s")
}

// TestLateJoinKeyed is TestLateJoin with keyed pull on sparse data of d =
// 47k, svrg and --pipeline: the joiner (a new process) numbers its key
// lists afresh and the master, which reset the link's history on the
// join, takes its references and gets its replies paired right; the run
// is keyed throughout and completes.
func TestLateJoinKeyed(t *testing.T) {
	s := lateJoin(t, "--data", "../../testdata/rcv1_small", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-3",
		"--pull", "keys", "--pipeline", "--average", "tail", "--phi-star", fmt.Sprint(refOptimum(t, "rcv1_small", "l1-logistic", 1e-3)),
		"--jitter", "2ms", "--time", "5s")
	if s.Master.RepliesKeyed < s.Updates/2 {
		t.Errorf("%d keyed replies in %d updates, want most", s.Master.RepliesKeyed, s.Updates)
	}
}

// lateJoinSummary is what lateJoin reads of summary.json.
type lateJoinSummary struct {
	Status string
	Joined []struct {
		Rank  int
		T     int64
		Grads int64
	} `json:"joined_workers"`
	Final struct {
		RelAvg float64 `json:"rel_subopt_avg"`
	}
	Updates int64
	Master  struct {
		RepliesKeyed int64 `json:"replies_keyed"`
	}
}

// lateJoin runs a job of 4 ranks with args, kills worker 2 once it trains,
// starts it again with --join, and checks the run completes with the
// joiner's gradients.
func lateJoin(t *testing.T, args ...string) *lateJoinSummary {
	j := startHand(t, 4, args...)
	j.waitFor(0, "upd/s", 60*time.Second)
	j.procs[2].Process.Signal(syscall.SIGKILL)
	j.waitFor(0, "worker 2 left", 30*time.Second)
	joiner := j.spawn(2, "--join")
	j.waitFor(0, "worker 2 joined", 30*time.Second)
	codes := j.wait()
	if codes[0] != 0 || codes[1] != 0 || codes[3] != 0 || codes[joiner] != 0 {
		t.Fatalf("exit codes %v, want 0 for ranks 0, 1, 3 and the joiner\n%s\n%s", codes, j.output(0), j.output(joiner))
	}
	var s lateJoinSummary
	b, err := os.ReadFile(filepath.Join(j.out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Status != "complete" || len(s.Joined) != 1 || s.Joined[0].Rank != 2 || s.Joined[0].Grads < 100 {
		t.Fatalf("status %q, joined %+v; want rank 2 joined with >= 100 gradients", s.Status, s.Joined)
	}
	if !(s.Final.RelAvg < 1e-2) {
		t.Errorf("final relative suboptimality %g", s.Final.RelAvg)
	}
	t.Logf("joined %+v; final rel. subopt %.3g; %d keyed replies in %d updates", s.Joined[0], s.Final.RelAvg, s.Master.RepliesKeyed, s.Updates)
	return &s
}

// TestMinWorkers: below --min-workers the run stops, still writes what was
// trained (status failed, model.partial) and exits 4.
func TestMinWorkers(t *testing.T) {
	j := startHand(t, 3, "--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4",
		"--reference=false", "--jitter", "2ms", "--min-workers", "2")
	j.waitFor(0, "upd/s", 60*time.Second)
	j.procs[1].Process.Signal(syscall.SIGKILL)
	codes := j.wait()
	if codes[0] != exitLostPeer {
		t.Fatalf("rank 0 exit %d, want %d\n%s", codes[0], exitLostPeer, j.output(0))
	}
	var s struct {
		Status     string
		StopReason string `json:"stop_reason"`
	}
	b, err := os.ReadFile(filepath.Join(j.out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Status != "failed" || s.StopReason != "too few workers" {
		t.Errorf("status %q, stop reason %q; want failed, too few workers", s.Status, s.StopReason)
	}
	j.checkOutputs("model.partial")
}

// TestBatchTooLarge: a batch larger than a worker's shard is a usage error
// at setup (exit 2, naming the shard's rows) that stops every rank; an
// absurd one is refused before any rank starts.
func TestBatchTooLarge(t *testing.T) {
	j := startHand(t, 3, "--data", "../../testdata/a9a", "--lambda", "1e-4", "--reference=false", "--batch", "100000")
	codes := j.wait()
	if codes[0] != exitUsage || codes[1] == 0 || codes[2] == 0 {
		t.Fatalf("exit codes %v, want 2 for rank 0 and failures for the workers", codes)
	}
	if !strings.Contains(j.output(0), "shard of 16282 rows") {
		t.Errorf("the error does not name the shard's size:\n%s", j.output(0))
	}
	start := time.Now()
	var so, se bytes.Buffer
	if code := run([]string{"asyncmb", "train", "--np", "3", "--data", "../../testdata/a9a", "--lambda", "1e-4", "--batch", "1000000000",
		"--reference=false", "--out", t.TempDir()}, &so, &se); code != exitUsage || !strings.Contains(se.String(), "at most") {
		t.Fatalf("--batch 1e9: exit %d, want 2\n%s", code, se.String())
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("--batch 1e9 took %v to refuse", el)
	}
}

// TestFrozenWorker: a worker that stops answering (SIGSTOP) is lost after
// --heartbeat-timeout of silence and leaves the run like a dead one; when
// it wakes up it finds itself cut off and exits 4.
func TestFrozenWorker(t *testing.T) {
	j := startHand(t, 4, "--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4",
		"--reference=false", "--jitter", "2ms", "--time", "4s", "--heartbeat-timeout", "1500ms")
	j.waitFor(0, "upd/s", 60*time.Second)
	frozen := time.Now()
	j.procs[2].Process.Signal(syscall.SIGSTOP)
	j.waitFor(0, "worker 2 left", 30*time.Second)
	noticed := time.Since(frozen)
	t.Logf("the master noticed the frozen worker after %v (heartbeat timeout 1.5s)", noticed.Round(time.Millisecond))
	if noticed < 1500*time.Millisecond {
		t.Errorf("noticed after %v, before the heartbeat timeout", noticed)
	}
	j.procs[2].Process.Signal(syscall.SIGCONT)
	codes := j.wait()
	if codes[0] != 0 || codes[1] != 0 || codes[3] != 0 || codes[2] != exitLostPeer {
		t.Fatalf("exit codes %v, want 0 0 4 0\n%s\n%s\n%s", codes, j.output(0), j.output(1), j.output(2))
	}
	if s := j.summary(); len(s.LostWorkers) != 1 || !strings.Contains(s.LostWorkers[0].Reason, "heartbeat") || s.LostWorkers[0].Phase != "training" {
		t.Errorf("lost workers %+v, want rank 2 by heartbeat during training", s.LostWorkers)
	}
}

// TestResume: kill -9 of the master mid-run loses only what came after its
// last checkpoint (--checkpoint-every): the run started again with
// --resume (new workers) prints "resumed from t=N", continues t from N (it
// does not restart at 0), continues the trace, and reaches the target.
func TestResume(t *testing.T) {
	args := []string{"--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4",
		"--tau", "0", "--average", "tail", "--phi-star", fmt.Sprint(refOptimum(t, "a9a", "l1-logistic", 1e-4)),
		"--jitter", "4ms", "--target", "1e-3", "--epochs", "40"}
	j := startHand(t, 4, append(args, "--checkpoint-every", "200ms")...)
	j.waitFor(0, "upd/s", 60*time.Second)
	time.Sleep(300 * time.Millisecond)
	j.procs[0].Process.Signal(syscall.SIGKILL)
	j.wait()
	ck, err := solver.ReadCheckpoint(filepath.Join(j.out, "checkpoint"))
	if err != nil || ck.T == 0 {
		t.Fatalf("no checkpoint after 1.3 s of training: %v", err)
	}
	k := newHand(t, 4, append(args, "--resume", j.out)...)
	k.out = j.out
	k.args = append(k.args, "--out", j.out)
	for r := range 4 {
		k.spawn(r)
	}
	codes := k.wait()
	if codes[0] != 0 {
		t.Fatalf("resumed master exit %d\n%s", codes[0], k.output(0))
	}
	if want := fmt.Sprintf("resumed from t=%d", ck.T); !strings.Contains(k.output(0), want) {
		t.Errorf("the resumed master did not print %q:\n%s", want, k.output(0))
	}
	s := k.summary()
	if s.Target == nil || !s.Target.Reached || s.Target.T <= ck.T {
		t.Fatalf("target %+v after resuming from t=%d", s.Target, ck.T)
	}
	csv, err := os.ReadFile(filepath.Join(j.out, "trace.csv"))
	if err != nil {
		t.Fatal(err)
	}
	prev, before := int64(-1), 0
	for _, line := range strings.Split(strings.TrimSpace(string(csv)), "\n")[1:] {
		var tt int64
		fmt.Sscanf(line, "%d,", &tt)
		if tt <= prev {
			t.Fatalf("trace.csv goes back from t=%d to t=%d", prev, tt)
		}
		if tt < ck.T {
			before++
		}
		prev = tt
	}
	if before == 0 {
		t.Errorf("the trace does not continue the first run's (no snapshot before t=%d)", ck.T)
	}
	t.Logf("resumed from t=%d; target reached at t=%d; %d snapshots from the first run", ck.T, s.Target.T, before)
}
