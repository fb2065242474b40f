package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/asyncmb/asyncmb/ranks"
)

// rankPid returns the pid of rank r of the job writing to dir (its
// ASYNCMB_RANK in the environment the launcher gave it), or 0.
func rankPid(t *testing.T, dir string, r string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "--out="+dir) || !strings.Contains(string(b), "\x00rank\x00") {
			continue
		}
		env, err := os.ReadFile(filepath.Join(filepath.Dir(p), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "ASYNCMB_RANK="+r {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				return pid
			}
		}
	}
	return 0
}

// TestTrainLostWorkerLocalLauncher: under `asyncmb train` (the local
// launcher), kill -9 of one worker does not stop the job: the master goes on
// with the others, the job exits 0 and the summary lists the loss.
func TestTrainLostWorkerLocalLauncher(t *testing.T) {
	out := t.TempDir()
	cmd, output := startTraining(t, "--np", "4", "--data", "../../testdata/a9a", "--reg", "l1", "--lambda", "1e-4",
		"--time", "3s", "--progress", "line", "--figures=false", "--out", out)
	pid := rankPid(t, out, "2")
	if pid == 0 {
		cmd.Process.Kill()
		t.Fatalf("rank 2 not found among the job's processes")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("train after kill -9 of worker 2: %v, want exit 0\n%s", err, output())
	}
	if !strings.Contains(output(), "worker 2 left") {
		t.Errorf("the master did not report the loss:\n%s", output())
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s ranks.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.LostWorkers) != 1 || s.LostWorkers[0].Rank != 2 {
		t.Errorf("lost workers %+v, want rank 2", s.LostWorkers)
	}
	if _, err := os.Stat(filepath.Join(out, "model")); err != nil {
		t.Errorf("no model after a run that lost a worker: %v", err)
	}
}
