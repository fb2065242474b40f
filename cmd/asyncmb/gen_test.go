package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/data"
)

func TestGenCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "g.svm")
	args := []string{"gen", "--rows", "3000", "--features", "400", "--density", "0.05", "--zipf", "1",
		"--noise", "0.2", "--seed", "42", "--out", out}
	stdout, stderr, code := runCLI(t, args...)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "gen: wrote 3000 rows x 400 features") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	d, err := data.Read(out, data.Options{Features: 400})
	if err != nil {
		t.Fatal(err)
	}
	if d.X.Rows != 3000 || d.MaxIndex > 400 {
		t.Fatalf("read %d rows, max index %d", d.X.Rows, d.MaxIndex)
	}
	if density := float64(d.X.NNZ()) / 3000 / 400; density < 0.048 || density > 0.052 {
		t.Fatalf("density %g, want 0.05", density)
	}
	if m, err := d.ToBinary(); err != nil || m != (data.LabelMap{Neg: -1, Pos: 1}) {
		t.Fatalf("labels: %v %v", m, err)
	}

	// The same flags through the environment and to stdout give the same bytes.
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"ROWS", "3000"}, {"FEATURES", "400"}, {"DENSITY", "0.05"}, {"ZIPF", "1"},
		{"NOISE", "0.2"}, {"SEED", "42"}} {
		t.Setenv("ASYNCMB_"+kv[0], kv[1])
	}
	stdout, stderr, code = runCLI(t, "gen")
	if code != 0 || stdout != string(want) {
		t.Fatalf("env run: exit %d, %d bytes vs %d, stderr %q", code, len(stdout), len(want), stderr)
	}
	stdout, _, _ = runCLI(t, "gen", "--seed", "43")
	if stdout == string(want) {
		t.Fatal("--seed 43 gives the same output as 42")
	}
}

func TestGenRegressionDense(t *testing.T) {
	stdout, stderr, code := runCLI(t, "gen", "--rows", "50", "--features", "7", "--density", "1", "--task", "regression")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	p := filepath.Join(t.TempDir(), "r.svm")
	if err := os.WriteFile(p, []byte(stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := data.Read(p, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.X.Rows != 50 || d.X.NNZ() != 350 || len(d.LabelValues()) < 40 {
		t.Fatalf("%d rows, %d nnz, %d distinct targets", d.X.Rows, d.X.NNZ(), len(d.LabelValues()))
	}
}

func TestGenUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--rows", "0"}, "rows 0"},
		{[]string{"--features", "-1"}, "features -1"},
		{[]string{"--density", "0"}, "density 0"},
		{[]string{"--density", "1.5"}, "density 1.5"},
		{[]string{"--zipf", "-2"}, "zipf -2"},
		{[]string{"--noise", "-1"}, "noise -1"},
		{[]string{"--task", "ranking"}, `unknown task "ranking"`},
		{[]string{"--task", "multiclass", "--classes", "1"}, "1 classes, want 2..1000"},
		{[]string{"--digits", "0"}, "--digits 0"},
		{[]string{"--seed", "x"}, `invalid value "x"`},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, stderr, code := runCLI(t, append([]string{"gen"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.msg) {
			t.Errorf("gen %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.msg)
		}
	}
	// An unwritable --out is a run failure (exit 1), not a usage error.
	_, stderr, code := runCLI(t, "gen", "--rows", "5", "--out", filepath.Join(t.TempDir(), "no", "such", "dir", "f"))
	if code != 1 || !strings.Contains(stderr, "no such file or directory") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
