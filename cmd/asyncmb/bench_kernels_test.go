package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// kernelRows are the (case, kernel) pairs `asyncmb bench kernels` must print.
var kernelRows = []string{
	"a9a Ax", "a9a ATr", "rcv1_small Ax", "rcv1_small ATr", "dense64x48 Ax", "dense64x48 ATr",
	"a9a grad b=64 dense", "a9a grad b=256 sparse", "rcv1_small grad b=64 sparse",
	"dense64x48 grad b=256 dense", "a9a full loss+grad", "dense64x48 full loss+grad",
}

// benchKernelsArgs runs the benchmark briefly on the testdata files and a
// small dense matrix.
func benchKernelsArgs(extra ...string) []string {
	root := filepath.Join("..", "..")
	return append([]string{"bench", "kernels", "--data-dir", filepath.Join(root, "testdata"),
		"--dense", "64x48", "--reps", "3", "--warmup", "1", "--rounds", "2", "--workers", "2"}, extra...)
}

// tableRow returns the fields of the output row for a case and kernel.
func tableRow(t *testing.T, out, row string) []string {
	t.Helper()
	caseName, kernel, _ := strings.Cut(row, " ")
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(caseName) + `\s+` + regexp.QuoteMeta(kernel) + `\s+(.*)$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no row %q in:\n%s", row, out)
	}
	return strings.Fields(m[1])
}

func TestBenchKernelsOursOnly(t *testing.T) {
	out, stderr, code := runCLI(t, benchKernelsArgs("--python", "")...)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if !strings.Contains(out, "streaming read") || !strings.Contains(out, "baseline: skipped") {
		t.Errorf("output lacks the stream line or the skipped-baseline note:\n%s", out)
	}
	for _, row := range kernelRows {
		f := tableRow(t, out, row)
		// goroutines, median us, ns/nnz, GB/s, x stream, then the baseline columns.
		for k := 1; k <= 4; k++ {
			if v, err := strconv.ParseFloat(f[k], 64); err != nil || !(v > 0) {
				t.Errorf("%s: column %d = %q, want a positive number", row, k, f[k])
			}
		}
		if f[6] != "-" {
			t.Errorf("%s: ours/theirs %q without a baseline", row, f[6])
		}
	}
}

func TestBenchKernelsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--dense", "4096"}, {"--dense", "0x3"}, {"--reps", "0"}, {"--rounds", "0"}, {"--warmup", "-1"}, {"--workers", "0"}, {"extra"},
	} {
		_, stderr, code := runCLI(t, append([]string{"bench", "kernels"}, args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, stderr)
		}
	}
}

// requireScipy skips the test when Debian's python3 with numpy, scipy and
// sklearn is missing, unless ASYNCMB_REQUIRE_TOOLS=1 (CI), where that fails.
func requireScipy(t *testing.T) {
	t.Helper()
	err := exec.Command("/usr/bin/python3", "-c", "import numpy, scipy.sparse, sklearn.datasets").Run()
	if err == nil {
		return
	}
	if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
		t.Fatalf("/usr/bin/python3 with numpy, scipy and sklearn (Debian python3-sklearn) is required: %v", err)
	}
	t.Skipf("/usr/bin/python3 with scipy not available: %v", err)
}

// TestBenchKernelsBaseline runs the scipy/numpy script on the same inputs:
// every product row must get a baseline time and a ratio.
func TestBenchKernelsBaseline(t *testing.T) {
	requireScipy(t)
	script := filepath.Join("..", "..", "bench", "kernels_scipy.py")
	out, stderr, code := runCLI(t, benchKernelsArgs("--script", script)...)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if !strings.Contains(out, `"scipy":`) {
		t.Errorf("baseline note lacks the scipy version:\n%s", out)
	}
	for _, row := range kernelRows[:6] {
		f := tableRow(t, out, row)
		for _, k := range []int{5, 6} {
			if v, err := strconv.ParseFloat(f[k], 64); err != nil || !(v > 0) {
				t.Errorf("%s: column %d = %q, want a positive number", row, k, f[k])
			}
		}
	}
	// A missing interpreter is reported, not fatal.
	out, stderr, code = runCLI(t, benchKernelsArgs("--python", filepath.Join(t.TempDir(), "nopython"))...)
	if code != 0 || !strings.Contains(out, "not found") {
		t.Fatalf("missing python: exit %d (%s), output:\n%s", code, stderr, out)
	}
}
