package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireSklearn skips the test when Debian's python3 with sklearn is
// missing, unless ASYNCMB_REQUIRE_TOOLS=1 (CI), where that is a failure.
func requireSklearn(t *testing.T) {
	t.Helper()
	err := exec.Command("/usr/bin/python3", "-c", "import sklearn.datasets").Run()
	if err == nil {
		return
	}
	if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
		t.Fatalf("/usr/bin/python3 with sklearn (Debian python3-sklearn) is required: %v", err)
	}
	t.Skipf("/usr/bin/python3 with sklearn not available: %v", err)
}

// TestBenchParse runs `asyncmb bench parse` once on two small files: it
// must find that both parsers read the same data and print the ratios.
func TestBenchParse(t *testing.T) {
	requireSklearn(t)
	root := filepath.Join("..", "..")
	files := []string{filepath.Join(root, "testdata", "heart_scale"), filepath.Join(root, "testdata", "abalone_scale")}
	args := append([]string{"bench", "parse", "--reps", "1", "--sklearn-script", filepath.Join(root, "bench", "svmlight_sklearn.py")}, files...)
	out, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	for _, want := range []string{"sklearn.datasets.load_svmlight_file (python", "ratio 1 thread", "heart_scale", "abalone_scale"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "MB/s") < 2*3+1 {
		t.Errorf("expected three MB/s figures per file:\n%s", out)
	}
	_, stderr, code = runCLI(t, "bench", "parse", "--reps", "0")
	if code != 2 || !strings.Contains(stderr, "--reps 0") {
		t.Fatalf("--reps 0: exit %d, %q", code, stderr)
	}
}
