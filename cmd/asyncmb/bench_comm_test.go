package main

import (
	"strings"
	"testing"
)

func TestBenchCommUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--np", "1"},
		{"--np", "2,x"},
		{"--codec", "lz4"},
		{"--n", "0"},
		{"--reps", "0"},
		{"--mpi", "maybe"},
		{"extra-arg"},
	} {
		_, stderr, code := runCLI(t, append([]string{"bench", "comm"}, args...)...)
		if code != exitUsage {
			t.Errorf("bench comm %v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
	// The rank side outside a launcher has no identity: a plain failure.
	_, stderr, code := runCLI(t, "bench", "comm-rank")
	if code != exitFailure || !strings.Contains(stderr, "ASYNCMB_RANK") {
		t.Errorf("bench comm-rank without a launcher: exit %d, %s", code, stderr)
	}
}
