package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/job"
)

// startAsyncmb starts the test binary as asyncmb with args and returns the
// command and a function that reads its combined output so far.
func startAsyncmb(t *testing.T, args ...string) (*exec.Cmd, func() string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ASYNCMB_TEST_MAIN=1")
	var buf bytes.Buffer
	se := &job.SyncWriter{W: &buf}
	cmd.Stderr, cmd.Stdout = se, se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() string {
		var s string
		se.Locked(func() { s = buf.String() })
		return s
	}
}

// waitFor polls output until it contains s (fails after 60 s).
func waitFor(t *testing.T, cmd *exec.Cmd, output func() string, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(output(), s) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no %q after 60 s:\n%s", s, output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTrainInterruptReference: SIGINT and SIGTERM while `train --target`
// solves for phi* (group lasso on a9a: FISTA, minutes on this machine)
// stop the process within about a second, with exit 130, a message that
// nothing was written, and no output directory.
func TestTrainInterruptReference(t *testing.T) {
	for _, c := range []struct {
		name string
		sig  os.Signal
	}{{"SIGINT", os.Interrupt}, {"SIGTERM", syscall.SIGTERM}} {
		name, sig := c.name, c.sig
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			cmd, output := startAsyncmb(t, "train", "--np", "2", "--data", "../../testdata/a9a", "--reg", "group", "--groups", "1",
				"--lambda", "1e-5", "--target", "1e-3", "--cache-dir", filepath.Join(dir, "cache"), "--out", out)
			waitFor(t, cmd, output, "reference: solving")
			time.Sleep(300 * time.Millisecond) // inside the solve
			sent := time.Now()
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			took := time.Since(sent)
			t.Logf("%s: exit after %v: %v\n%s", name, took, err, output())
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupt {
				t.Fatalf("exit: %v, want %d\n%s", err, exitInterrupt, output())
			}
			// About a second; the slack is for a machine shared with other jobs.
			if took > 2*time.Second {
				t.Errorf("took %v to stop after %s, want about 1 s", took, name)
			}
			if o := output(); !strings.Contains(o, "nothing was trained") || strings.Contains(o, "outputs of what was trained") {
				t.Errorf("the message does not say that nothing was written:\n%s", o)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s exists after an interrupted phi* solve", out)
			}
		})
	}
}

// TestTrainNoReferenceWithoutTarget: without --target, train solves for no
// phi* (it would take minutes here) and starts training at once; with
// --reference it solves first.
func TestTrainNoReferenceWithoutTarget(t *testing.T) {
	dir := t.TempDir()
	cmd, output := startAsyncmb(t, "train", "--np", "1", "--data", "../../testdata/a9a", "--reg", "group", "--groups", "1",
		"--lambda", "1e-5", "--epochs", "1", "--cache-dir", filepath.Join(dir, "cache"), "--out", filepath.Join(dir, "out"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("train: %v\n%s", err, output())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("train without --target did not finish one epoch in 60 s:\n%s", output())
	}
	if strings.Contains(output(), "reference:") {
		t.Errorf("train without --target solved for phi*:\n%s", output())
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cache"))
	if len(entries) != 0 {
		t.Errorf("the cache holds %d entries after a run without --target", len(entries))
	}
}

// TestTrainFailedReference: when the phi* solve fails (features of 1e300:
// every margin overflows), train --target exits 1 before training, with a
// message that names both ways to go on, and does not panic.
func TestTrainFailedReference(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "huge")
	if err := os.WriteFile(file, []byte("+1 1:1e300 2:1\n-1 1:-1e300 2:3\n+1 1:2e300 2:-1\n-1 1:5 2:1e300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, output := startAsyncmb(t, "train", "--np", "2", "--data", file, "--reg", "l1", "--lambda", "0.01", "--target", "1e-3",
		"--cache-dir", filepath.Join(dir, "cache"), "--out", filepath.Join(dir, "out"))
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit: %v, want %d\n%s", err, exitFailure, output())
	}
	o := output()
	if !strings.Contains(o, "--phi-star PHI") || !strings.Contains(o, "--target") || strings.Contains(o, "panic") {
		t.Errorf("the message does not say how to go on:\n%s", o)
	}
}
