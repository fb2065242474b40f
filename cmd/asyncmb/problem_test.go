package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestProblemFlagErrors: a missing or bad problem parameter is a usage
// error (exit 2) that names the flag.
func TestProblemFlagErrors(t *testing.T) {
	heart := filepath.Join("..", "..", "testdata", "heart_scale")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"reference", "--reg", "l1", "--lambda", "1"}, "--data"},
		{[]string{"reference", "--data", heart, "--reg", "l1"}, "--lambda"},
		{[]string{"reference", "--data", heart, "--reg", "elastic", "--lambda", "1"}, "--lambda2"},
		{[]string{"reference", "--data", heart, "--reg", "box", "--lo", "0"}, "--hi"},
		{[]string{"reference", "--data", heart, "--reg", "box", "--lo", "1", "--hi", "0"}, "lo <= hi"},
		{[]string{"reference", "--data", heart, "--reg", "ball"}, "--radius"},
		{[]string{"reference", "--data", heart, "--reg", "group", "--lambda", "1"}, "--groups"},
		{[]string{"reference", "--data", heart, "--reg", "group", "--lambda", "1", "--groups", "0"}, "--groups"},
		{[]string{"reference", "--data", heart, "--reg", "group", "--lambda", "1", "--groups", "5,5"}, "add up"},
		{[]string{"reference", "--data", heart, "--reg", "l1", "--lambda", "-1"}, "lambda"},
		{[]string{"reference", "--data", heart, "--reg", "lasso", "--lambda", "1"}, "--reg"},
		{[]string{"reference", "--data", heart, "--loss", "hinge", "--reg", "none"}, "--loss"},
		{[]string{"reference", "--data", heart, "--reg", "none", "--features", "-3"}, "--features"},
		{[]string{"sgd", "--data", heart, "--reg", "l1", "--lambda", "0.01", "--step", "const"}, "--alpha0"},
		{[]string{"sgd", "--data", heart, "--reg", "l1", "--lambda", "0.01", "--step", "strong"}, "strongly convex"},
		{[]string{"sgd", "--data", heart, "--reg", "l1", "--lambda", "0.01", "--batch", "0"}, "--batch"},
		{[]string{"sgd", "--data", heart, "--reg", "l1", "--lambda", "0.01", "--average", "median"}, "--average"},
		{[]string{"sgd", "--data", heart, "--reg", "l1", "--lambda", "0.01", "--resume"}, "--checkpoint"},
	}
	for _, c := range cases {
		_, errOut, code := runCLI(t, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
}

// refField returns the number printed after key in reference/sgd output.
func refField(t *testing.T, out, key string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.Fields(field(t, out, key))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReferenceCommand: the command prints the optimum of the reference
// table, writes the cache, and the second run reads it.
func TestReferenceCommand(t *testing.T) {
	dir := t.TempDir()
	args := []string{"reference", "--data", filepath.Join("..", "..", "testdata", "heart_scale"),
		"--loss", "logistic", "--reg", "l1", "--lambda", "0.01", "--cache-dir", dir}
	out, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	const want = 0.4182952453595799 // testdata/reference.jsonl, liblinear -s 6 -e 1e-9
	if phi := refField(t, out, "phi\\*"); (phi-want)/want > 1e-8 || (want-phi)/want > 1e-8 {
		t.Errorf("phi*=%v, want %v", phi, want)
	}
	if nnz := refField(t, out, `nnz\(x\*\)`); nnz != 10 {
		t.Errorf("nnz=%v, want 10", nnz)
	}
	if !strings.Contains(field(t, out, "cache"), "written") {
		t.Errorf("first run did not write the cache:\n%s", out)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("cache dir holds %d files", len(ents))
	}
	t.Setenv("ASYNCMB_CACHE_DIR", dir) // the env var instead of the flag
	out, _, code = runCLI(t, args[:len(args)-2]...)
	if code != 0 || !strings.Contains(field(t, out, "cache"), "read from") {
		t.Errorf("second run (exit %d) did not read the cache:\n%s", code, out)
	}
}

// TestSGDCommandResume: an sgd run interrupted after 2 epochs and resumed
// from its checkpoint prints the same final objective as a straight run.
func TestSGDCommandResume(t *testing.T) {
	dir := t.TempDir()
	base := []string{"sgd", "--data", filepath.Join("..", "..", "testdata", "heart_scale"), "--reg", "l1", "--lambda", "0.01",
		"--batch", "5", "--seed", "3"}
	last := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		f := strings.Fields(lines[len(lines)-2])
		return f[0] + " " + f[1] + " " + f[3]
	}
	straight, errOut, code := runCLI(t, append(base, "--epochs", "4")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ck := filepath.Join(dir, "state")
	if _, errOut, code := runCLI(t, append(base, "--epochs", "2", "--checkpoint", ck)...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	resumed, errOut, code := runCLI(t, append(base, "--epochs", "4", "--checkpoint", ck, "--resume")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if a, b := last(straight), last(resumed); a != b {
		t.Errorf("straight run ends %q, resumed run %q", a, b)
	}
	if err := os.WriteFile(ck, []byte("ASYNCMBK garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, append(base, "--epochs", "4", "--checkpoint", ck, "--resume")...); code != exitFailure || !strings.Contains(errOut, "checkpoint") {
		t.Errorf("corrupt checkpoint: exit %d, %q", code, errOut)
	}
}
