package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/launch"
)

// rankCmd is `asyncmb rank` (this test binary, see TestMain) with env.
func rankCmd(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	full := append([]string{"rank", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--reference=false",
		"--iters", "100", "--progress", "none", "--out", t.TempDir()}, args...)
	cmd := exec.Command(os.Args[0], full...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.Env = append(append(cleanEnv(), "ASYNCMB_TEST_MAIN=1"), env...)
	return cmd, &b
}

// cleanEnv is this process's environment without launcher or Slurm
// variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASYNCMB_") && !strings.HasPrefix(kv, "SLURM_") {
			out = append(out, kv)
		}
	}
	return out
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func exitOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestRankWrongSecret: a rank started with another secret than rank 0's is
// refused (exit 1, saying so), and rank 0 reports it as missing (exit 3).
func TestRankWrongSecret(t *testing.T) {
	addr := "127.0.0.1:" + freePort(t)
	common := []string{"ASYNCMB_SIZE=2", "ASYNCMB_JOB_ID=wrong-secret", "ASYNCMB_ADDR=" + addr, "ASYNCMB_RENDEZVOUS_TIMEOUT=3s"}
	r0, out0 := rankCmd(t, append(common, "ASYNCMB_RANK=0", "ASYNCMB_SECRET=the right secret, 16+ bytes"))
	r1, out1 := rankCmd(t, append(common, "ASYNCMB_RANK=1", "ASYNCMB_SECRET=the wrong secret, 16+ bytes"))
	if err := r0.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := r1.Run(); exitOf(err) != 1 {
		t.Errorf("rank 1: %v, want exit 1\n%s", err, out1)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("rank 1 took %v to be refused", took)
	}
	if s := out1.String(); !strings.Contains(s, "secret") && !strings.Contains(s, "auth") {
		t.Errorf("rank 1 does not say why:\n%s", s)
	}
	if err := r0.Wait(); exitOf(err) != 3 {
		t.Errorf("rank 0: %v, want exit 3\n%s", err, out0)
	}
	if !strings.Contains(out0.String(), "[1]") {
		t.Errorf("rank 0 does not name rank 1 as missing:\n%s", out0)
	}
}

// TestRankUnreachableMaster: a rank whose master never comes fails within
// the rendezvous timeout (exit 3), naming the address it tried and how it
// found it: Slurm's variables, a flag, or the rendezvous file.
func TestRankUnreachableMaster(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	slurm := []string{"SLURM_PROCID=1", "SLURM_NTASKS=2", "SLURM_JOB_ID=31337", "SLURM_STEP_ID=2", "SLURM_STEP_NODELIST=localhost,n[2-9]",
		"ASYNCMB_SECRET=xxxxxxxxxxxxxxxx", "ASYNCMB_RENDEZVOUS_TIMEOUT=1500ms"}
	lo, hi, _ := launch.ParsePortRange(launch.DefaultPortRange)
	derived := "localhost:" + strconv.Itoa(launch.SlurmPort(31337, 2, lo, hi))
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"slurm", slurm, nil, []string{derived, "SLURM_STEP_NODELIST=localhost,n[2-9]", "derived from SLURM_JOB_ID=31337 and SLURM_STEP_ID=2"}},
		{"port flag", slurm, []string{"--port", port}, []string{"localhost:" + port, "--port " + port}},
		{"addr flag", []string{"ASYNCMB_RANK=1", "ASYNCMB_SIZE=2", "ASYNCMB_SECRET=xxxxxxxxxxxxxxxx", "ASYNCMB_RENDEZVOUS_TIMEOUT=1500ms"},
			[]string{"--addr", "127.0.0.1:" + port}, []string{"127.0.0.1:" + port, "--addr"}},
		{"file", slurm, []string{"--rendezvous", "file://" + dir}, []string{filepath.Join(dir, "slurm-31337.2", "rank0-addr"), "--rendezvous file://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, out := rankCmd(t, tc.env, tc.args...)
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start)
			if exitOf(err) != 3 {
				t.Fatalf("%v, want exit 3\n%s", err, out)
			}
			if took > 8*time.Second {
				t.Errorf("took %v with a 1.5 s rendezvous timeout", took)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("the error does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// fakeSSH writes an ssh stand-in that runs the remote command here: it
// records the secret it receives on stdin in dir/secrets and passes stdin
// on, so that closing it stops the rank as with a real ssh. With failRank
// >= 0, the "connection" of that rank fails.
func fakeSSH(t *testing.T, dir string, failRank int) string {
	p := filepath.Join(dir, "fake-ssh")
	script := `#!/bin/sh
for last; do :; done
case "$last" in *"ASYNCMB_RANK=` + strconv.Itoa(failRank) + ` "*) sleep 1; echo "ssh: connect to host: Connection refused" >&2; exit 255;; esac
IFS= read -r secret
printf '%s\n' "$secret" >>"` + dir + `/secrets"
# Pass the secret and the rest of stdin on through a fifo, so that this
# script ends with the rank (as ssh does) while stdin stays open.
fifo=$(mktemp -u "` + dir + `/fifo.XXXXXX") && mkfifo "$fifo"
exec 3<&0
{ printf '%s\n' "$secret"; exec cat <&3; } >"$fifo" &
feeder=$!
sh -c "$last" <"$fifo"
rc=$?
kill $feeder 2>/dev/null
rm -f "$fifo"
exit $rc
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTrainSSHLauncher: `train --launcher ssh` starts the hostfile's ranks
// through the ssh command (a stand-in that runs them here), the secret
// never appears on a rank's command line, output is prefixed by rank, the
// run reaches the target on a9a, and summary.json records the launcher and
// the hosts.
func TestTrainSSHLauncher(t *testing.T) {
	dir := t.TempDir()
	hostfile := filepath.Join(dir, "hosts")
	os.WriteFile(hostfile, []byte("localhost slots=2\n127.0.0.1\n"), 0o644)
	ssh := fakeSSH(t, dir, -1)
	out := filepath.Join(dir, "out")

	// Watch the ranks' command lines while the job runs.
	done := make(chan struct{})
	var mu sync.Mutex
	var leaks []string
	seen := 0
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			secrets, _ := os.ReadFile(filepath.Join(dir, "secrets"))
			cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, f := range cmdlines {
				b, _ := os.ReadFile(f)
				if !bytes.Contains(b, []byte("--out="+out)) {
					continue
				}
				mu.Lock()
				seen++
				for _, s := range strings.Fields(string(secrets)) {
					if bytes.Contains(b, []byte(s)) {
						leaks = append(leaks, f)
					}
				}
				mu.Unlock()
			}
		}
	}()
	var so, se bytes.Buffer
	code := run([]string{"asyncmb", "train", "--launcher", "ssh", "--hostfile", hostfile, "--ssh", ssh + " -q", "--ssh-port", "2222",
		"--data", "../../testdata/a9a", "--loss", "logistic", "--reg", "l1", "--lambda", "1e-4", "--tau", "0", "--average", "tail",
		"--target", "1e-3", "--epochs", "50", "--phi-star", strconv.FormatFloat(refOptimum(t, "a9a", "l1-logistic", 1e-4), 'g', -1, 64),
		"--progress", "none", "--out", out}, &so, &se)
	close(done)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, so.String(), se.String())
	}
	mu.Lock()
	if len(leaks) > 0 || seen == 0 {
		t.Errorf("secret on the command line of %v (%d rank command lines seen)", leaks, seen)
	}
	mu.Unlock()
	if secrets, _ := os.ReadFile(filepath.Join(dir, "secrets")); len(strings.Fields(string(secrets))) != 3 {
		t.Errorf("the ssh stand-in got %q on stdin, want the secret 3 times", secrets)
	}
	if !strings.Contains(so.String(), "[rank 0] target") {
		t.Errorf("no rank-prefixed summary:\n%s", so.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Manifest struct {
			Launcher string
			Nodes    []string
		}
		Target struct{ Reached bool }
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Target.Reached || s.Manifest.Launcher != "ssh" || strings.Join(s.Manifest.Nodes, " ") != "localhost localhost 127.0.0.1" {
		t.Errorf("summary: %+v", s)
	}
}

// TestTrainSSHFailure: when one rank's ssh fails, the launcher stops the
// others (closing their stdin) at once and names the failed rank once.
func TestTrainSSHFailure(t *testing.T) {
	dir := t.TempDir()
	hostfile := filepath.Join(dir, "hosts")
	os.WriteFile(hostfile, []byte("localhost slots=4\n"), 0o644)
	out := filepath.Join(dir, "out")
	var so, se bytes.Buffer
	start := time.Now()
	code := run([]string{"asyncmb", "train", "--launcher", "ssh", "--hostfile", hostfile, "--ssh", fakeSSH(t, dir, 2),
		"--data", "../../testdata/a9a", "--lambda", "1e-4", "--reference=false", "--progress", "none", "--out", out}, &so, &se)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, se.String())
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %v to stop", took)
	}
	if n := strings.Count(se.String(), "rank 2 failed"); n != 1 {
		t.Errorf("rank 2's failure named %d times:\n%s", n, se.String())
	}
	if n := ranksOf(t, out); n != 0 {
		t.Errorf("%d rank processes left", n)
	}
}

// TestTrainLaunchChecks: --np, the hostfile and --out are checked before
// any process starts (exit 2, at once).
func TestTrainLaunchChecks(t *testing.T) {
	dir := t.TempDir()
	hostfile := filepath.Join(dir, "hosts")
	os.WriteFile(hostfile, []byte("localhost slots=2\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--np", "1000000000"}, "1000000000 ranks"},
		{[]string{"--out", "/proc/x"}, "/proc/x"},
		{[]string{"--launcher", "ssh"}, "--hostfile"},
		{[]string{"--launcher", "ssh", "--hostfile", hostfile, "--np", "3"}, "2 slots"},
		{[]string{"--launcher", "ssh", "--hostfile", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"--hostfile", hostfile}, "--launcher ssh"},
		{[]string{"--launcher", "mpirun"}, "local, ssh or srun"},
		{[]string{"--launcher", "ssh", "--hostfile", hostfile, "--np", "1"}, "--np >= 2"},
		{[]string{"--port-range", "9-1"}, "port range"},
	} {
		var so, se bytes.Buffer
		start := time.Now()
		full := append([]string{"asyncmb", "train", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--reference=false",
			"--out", filepath.Join(dir, "out")}, tc.args...)
		if code := run(full, &so, &se); code != 2 || !strings.Contains(se.String(), tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q: %s", tc.args, code, tc.want, se.String())
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%v: took %v", tc.args, took)
		}
	}
}
