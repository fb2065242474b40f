package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/comm"
)

// The test binary re-executes itself as the ranks: TestMain runs the child
// behaviour named by LAUNCH_TEST_MODE instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("LAUNCH_TEST_MODE"); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child is one rank's behaviour; it writes its pid to $LAUNCH_TEST_PIDS/rank.
func child(mode string) int {
	rank, _ := strconv.Atoi(os.Getenv(EnvRank))
	if dir := os.Getenv("LAUNCH_TEST_PIDS"); dir != "" {
		os.WriteFile(filepath.Join(dir, strconv.Itoa(rank)), []byte(strconv.Itoa(os.Getpid())), 0o644)
	}
	switch mode {
	case "comm": // a real job: rendezvous and an allreduce
		cfg, err := FromEnv(nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ctx := context.Background()
		c, err := comm.New(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		defer c.Close()
		x := []float64{float64(c.Rank() + 1)}
		if err := c.Allreduce(ctx, x, comm.OpSum); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 4
		}
		fmt.Printf("rank %d of %d: sum %g\npartial line", c.Rank(), c.Size(), x[0])
		return 0
	case "vanish": // rank 2 is killed; rank 0 must notice
		signal.Ignore(syscall.SIGTERM) // so that rank 0 lives to report
		cfg, err := FromEnv(nil)
		if err != nil {
			return 1
		}
		c, err := comm.New(context.Background(), cfg)
		if err != nil {
			return 3
		}
		switch c.Rank() {
		case 2:
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case 0:
			start := time.Now()
			var m comm.Msg
			err := c.Recv(context.Background(), 2, 1, &m)
			fmt.Printf("after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
			var ec interface{ ExitCode() int }
			if errors.As(err, &ec) {
				return ec.ExitCode()
			}
			return 1
		}
		select {}
	case "fail-rank-1": // rank 1 fails; the others would run forever
		if rank == 1 {
			time.Sleep(200 * time.Millisecond)
			fmt.Fprintln(os.Stderr, "rank 1 giving up")
			return 7
		}
		select {}
	case "worker-leaves": // rank 1 is killed; rank 0 goes on, then ends with $LAUNCH_TEST_RANK0_EXIT
		switch rank {
		case 1:
			time.Sleep(100 * time.Millisecond)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		case 0:
			time.Sleep(600 * time.Millisecond)
			fmt.Println("rank 0 done")
			code, _ := strconv.Atoi(os.Getenv("LAUNCH_TEST_RANK0_EXIT"))
			return code
		}
		time.Sleep(700 * time.Millisecond)
		return 0
	case "stubborn": // ignores SIGTERM: only SIGKILL ends it
		signal.Ignore(syscall.SIGTERM)
		select {}
	case "sleep":
		select {}
	}
	return 2
}

func childSpec(t *testing.T, np int, mode string) (Spec, string, *syncBuf) {
	pids := t.TempDir()
	out := &syncBuf{}
	return Spec{
		NP:     np,
		Path:   os.Args[0],
		Env:    []string{"LAUNCH_TEST_MODE=" + mode, "LAUNCH_TEST_PIDS=" + pids},
		Stdout: out, Stderr: out,
		Prefix: true,
		Grace:  500 * time.Millisecond,
	}, pids, out
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// noneLeft checks that every pid recorded by the children is gone.
func noneLeft(t *testing.T, dir string, np int) {
	t.Helper()
	for r := range np {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(r)))
		if err != nil {
			continue // never started far enough to write it
		}
		pid, _ := strconv.Atoi(string(b))
		// Local has reaped its children, so a live pid would be a stray.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("rank %d (pid %d) is still alive: %v", r, pid, err)
		}
	}
}

func TestLocalJob(t *testing.T) {
	const np = 4
	spec, _, out := childSpec(t, np, "comm")
	if err := Local(context.Background(), spec); err != nil {
		t.Fatalf("Local: %v\n%s", err, out)
	}
	for r := range np {
		want := fmt.Sprintf("[rank %d] rank %d of %d: sum 10\n", r, r, np)
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		if !strings.Contains(out.String(), fmt.Sprintf("[rank %d] partial line\n", r)) {
			t.Errorf("unfinished last line of rank %d not flushed:\n%s", r, out)
		}
	}
}

func TestFailingRankStopsOthers(t *testing.T) {
	const np = 4
	spec, pids, out := childSpec(t, np, "fail-rank-1")
	start := time.Now()
	err := Local(context.Background(), spec)
	var re *RankError
	var ee *exec.ExitError
	if !errors.As(err, &re) || re.Rank != 1 || !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("Local: %v, want rank 1 failing with exit status 7", err)
	}
	if !strings.Contains(err.Error(), "rank 1") || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("error %q does not say which rank failed how", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to stop the job", took)
	}
	if !strings.Contains(out.String(), "[rank 1] rank 1 giving up") {
		t.Errorf("rank 1's stderr not forwarded:\n%s", out)
	}
	noneLeft(t, pids, np)
}

// TestWorkerMayLeave: with WorkersMayLeave a worker that dies does not stop
// the job; rank 0's outcome is the job's, and when rank 0 fails too the
// error names the worker that died first (the root cause). A worker that
// fails with an error of its own still stops the job (see
// TestFailingRankStopsOthersMayLeave).
func TestWorkerMayLeave(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rank0    string
		wantRank int // -1: success
	}{
		{"master succeeds", "0", -1},
		{"master fails after the loss", "4", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const np = 3
			spec, pids, out := childSpec(t, np, "worker-leaves")
			spec.Env = append(spec.Env, "LAUNCH_TEST_RANK0_EXIT="+tc.rank0)
			spec.WorkersMayLeave = true
			err := Local(context.Background(), spec)
			if !strings.Contains(out.String(), "[rank 0] rank 0 done") {
				t.Errorf("rank 0 was stopped before it finished:\n%s", out)
			}
			var re *RankError
			switch {
			case tc.wantRank < 0 && err != nil:
				t.Errorf("Local: %v, want success (rank 0 succeeded)", err)
			case tc.wantRank >= 0 && (!errors.As(err, &re) || re.Rank != tc.wantRank):
				t.Errorf("Local: %v, want rank %d named", err, tc.wantRank)
			}
			noneLeft(t, pids, np)
		})
	}
}

func TestFailingRankStopsOthersMayLeave(t *testing.T) {
	spec, pids, _ := childSpec(t, 4, "fail-rank-1")
	spec.WorkersMayLeave = true
	start := time.Now()
	err := Local(context.Background(), spec)
	var re *RankError
	if !errors.As(err, &re) || re.Rank != 1 {
		t.Fatalf("Local: %v, want rank 1's failure", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to stop the job", took)
	}
	noneLeft(t, pids, 4)
}

func TestCancelKillsAll(t *testing.T) {
	const np = 3
	spec, pids, _ := childSpec(t, np, "stubborn")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Local(ctx, spec)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Local: %v, want the context's error", err)
	}
	// SIGTERM is ignored, so SIGKILL after the grace period ends them.
	if took := time.Since(start); took < spec.Grace || took > 5*time.Second {
		t.Errorf("took %v (grace %v)", took, spec.Grace)
	}
	noneLeft(t, pids, np)
}

// TestKilledRank: a rank process killed by SIGKILL makes rank 0's receive
// from it fail with a lost-peer error (exit code 4), and the launcher stops
// the job naming the first rank that failed.
func TestKilledRank(t *testing.T) {
	const np = 3
	spec, pids, out := childSpec(t, np, "vanish")
	spec.Grace = 2 * time.Second
	err := Local(context.Background(), spec)
	var re *RankError
	if !errors.As(err, &re) || re.Rank != 2 || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Local: %v, want rank 2 killed", err)
	}
	noneLeft(t, pids, np)
	t.Logf("output:\n%s", out)
	// Rank 0 ignores the launcher's SIGTERM, so it reports before the
	// grace period ends in SIGKILL.
	if o := out.String(); !strings.Contains(o, "[rank 0] after") || !strings.Contains(o, "peer lost") {
		t.Errorf("rank 0 did not report a lost peer:\n%s", o)
	}
}

func TestRankErrorExitCode(t *testing.T) {
	for _, tc := range []struct{ code, want int }{{2, 2}, {3, 3}, {4, 4}, {7, 1}} {
		err := exec.Command("sh", "-c", "exit "+strconv.Itoa(tc.code)).Run()
		if got := (&RankError{Rank: 1, Err: err}).ExitCode(); got != tc.want {
			t.Errorf("child exit %d: ExitCode %d, want %d", tc.code, got, tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("s3cret\n"), 0o600)
	cases := []struct {
		name    string
		env     map[string]string
		wantErr bool
		check   func(c comm.Config) error
	}{
		{"launcher", map[string]string{EnvRank: "2", EnvSize: "4", EnvJobID: "j", EnvAddr: "127.0.0.1:7000", EnvSecret: "abc", EnvBind: "127.0.0.1"}, false,
			func(c comm.Config) error {
				if c.Rank != 2 || c.Size != 4 || c.JobID != "j" || c.Addr != "127.0.0.1:7000" || string(c.Secret) != "abc" || c.Bind != "127.0.0.1" {
					return fmt.Errorf("%+v", c)
				}
				return nil
			}},
		{"slurm with secret file and store", map[string]string{"SLURM_PROCID": "1", "SLURM_NTASKS": "3", "SLURM_JOB_ID": "99", "SLURM_STEP_ID": "3", EnvSecretFile: secretFile, EnvStoreDir: "/tmp"}, false,
			func(c comm.Config) error {
				if c.Rank != 1 || c.Size != 3 || c.JobID != "slurm-99.3" || string(c.Secret) != "s3cret" {
					return fmt.Errorf("%+v", c)
				}
				if _, ok := c.Store.(comm.FileStore); !ok {
					return fmt.Errorf("store %T", c.Store)
				}
				return nil
			}},
		{"ours beat slurm", map[string]string{EnvRank: "0", "SLURM_PROCID": "5", EnvSize: "2", "SLURM_NTASKS": "9", EnvSecret: "x", EnvStoreAddr: "127.0.0.1:1"}, false,
			func(c comm.Config) error {
				if c.Rank != 0 || c.Size != 2 {
					return fmt.Errorf("%+v", c)
				}
				return nil
			}},
		{"tuning", map[string]string{EnvRank: "0", EnvSize: "2", EnvSecret: "x", EnvAddr: "127.0.0.1:1", EnvCodec: "zstd", EnvHeartbeatTimeout: "3s", EnvRendezvousTimeout: "2m"}, false,
			func(c comm.Config) error {
				if c.Codec != comm.CodecZstd || c.HeartbeatTimeout != 3*time.Second || c.HeartbeatInterval != 300*time.Millisecond || c.RendezvousTimeout != 2*time.Minute {
					return fmt.Errorf("%+v", c)
				}
				return nil
			}},
		{"bad codec", map[string]string{EnvRank: "0", EnvSize: "2", EnvSecret: "x", EnvAddr: "127.0.0.1:1", EnvCodec: "lz4"}, true, nil},
		{"bad timeout", map[string]string{EnvRank: "0", EnvSize: "2", EnvSecret: "x", EnvAddr: "127.0.0.1:1", EnvHeartbeatTimeout: "soon"}, true, nil},
		{"no rank", map[string]string{EnvSize: "2", EnvSecret: "x", EnvAddr: "127.0.0.1:1"}, true, nil},
		{"bad size", map[string]string{EnvRank: "0", EnvSize: "two", EnvSecret: "x", EnvAddr: "127.0.0.1:1"}, true, nil},
		{"no secret", map[string]string{EnvRank: "0", EnvSize: "2", EnvAddr: "127.0.0.1:1"}, true, nil},
		{"missing secret file", map[string]string{EnvRank: "0", EnvSize: "2", EnvAddr: "127.0.0.1:1", EnvSecretFile: "/nonexistent"}, true, nil},
		{"rank out of range", map[string]string{EnvRank: "2", EnvSize: "2", EnvSecret: "x", EnvAddr: "127.0.0.1:1"}, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := FromEnv(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				if e := tc.check(cfg); e != nil {
					t.Fatal(e)
				}
			}
		})
	}
}

// TestImports: launch imports at most comm of asyncmb; comm imports only
// the standard library, klauspost/compress and golang.org/x/sys.
func TestImports(t *testing.T) {
	for pkg, allowed := range map[string][]string{
		"github.com/asyncmb/asyncmb/launch": {"github.com/asyncmb/asyncmb/launch", "github.com/asyncmb/asyncmb/comm", "github.com/klauspost/compress", "golang.org/x/sys"},
		"github.com/asyncmb/asyncmb/comm":   {"github.com/asyncmb/asyncmb/comm", "github.com/klauspost/compress", "golang.org/x/sys"},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
		if err != nil {
			t.Skipf("go list: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			ok := false
			for _, a := range allowed {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}

// TestRootCause: a "lost peer" failure (exit 4) that is reaped first gives
// way to the failure that caused it, if that comes within causeWait; a
// lost peer alone, or another failure, is reported as it is.
func TestRootCause(t *testing.T) {
	exit := func(script string) error { return exec.Command("sh", "-c", script).Run() }
	lost, killed, other := exit("exit 4"), exit("kill -9 $$"), exit("exit 7")
	for _, tc := range []struct {
		name     string
		first    result
		later    []result // results that come; running-len(later) ranks never end
		running  int
		wantRank int
		wantLeft int
	}{
		{"lost peer then the killed rank", result{rank: 0, err: lost}, []result{{rank: 1, err: nil}, {rank: 2, err: killed}}, 2, 2, 0},
		{"lost peer alone", result{rank: 0, err: lost}, []result{{rank: 1, err: lost}}, 2, 0, 1},
		{"a failure of its own", result{rank: 1, err: other}, []result{{rank: 2, err: killed}}, 2, 1, 2},
	} {
		results := make(chan result, len(tc.later))
		for _, r := range tc.later {
			results <- r
		}
		start := time.Now()
		got, left := rootCause(tc.first, results, tc.running)
		if got.rank != tc.wantRank || left != tc.wantLeft {
			t.Errorf("%s: rank %d with %d running, want rank %d with %d", tc.name, got.rank, left, tc.wantRank, tc.wantLeft)
		}
		if took := time.Since(start); took > causeWait+time.Second {
			t.Errorf("%s: took %v", tc.name, took)
		}
	}
}
