package main

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestScaleRates runs a tiny rates sweep (heart_scale, sgd, P = 1, 2, the
// convex schedule on l1 and the strong one on l2, each with its phi*: 4
// train processes) and checks that every run ran its epochs (no target
// stop), that scale.csv has a step and a finite negative slope per run,
// that scale.md has the rates table, and that the rates figure is drawn
// and redrawn by `plot`.
func TestScaleRates(t *testing.T) {
	t.Setenv("ASYNCMB_TEST_MAIN", "1") // the runs re-execute this test binary as asyncmb
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	steps := "convex:--reg=l1 --phi-star=" + g(refOptimum(t, "heart_scale", "l1-logistic", 0.01)) +
		",strong:--reg=l2 --phi-star=" + g(refOptimum(t, "heart_scale", "l2-logistic", 0.01))
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "scale", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--method", "sgd", "--mode", "async",
		"--workers", "1,2", "--batch", "4", "--repeat", "1", "--epochs", "30", "--step", steps, "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	rows := readScaleCSV(t, dir)
	head := rows[0]
	for _, c := range []string{"step", "slope"} {
		if !slices.Contains(head, c) {
			t.Fatalf("scale.csv has no column %q: %v", c, head)
		}
	}
	if len(rows) != 1+4 {
		t.Fatalf("scale.csv has %d runs, want 4", len(rows)-1)
	}
	col := func(r []string, name string) string { return r[slices.Index(head, name)] }
	seen := map[string]int{}
	for _, r := range rows[1:] {
		if col(r, "status") != "ok" {
			t.Errorf("run %s: %s", col(r, "id"), col(r, "error"))
			continue
		}
		seen[col(r, "step")]++
		if s := col(r, "stop_reason"); s != "epochs" {
			t.Errorf("run %s stopped on %q, want epochs (a rates run must not stop at a target)", col(r, "id"), s)
		}
		s, err := strconv.ParseFloat(col(r, "slope"), 64)
		if err != nil || !(s < 0) || math.IsInf(s, 0) {
			t.Errorf("run %s: slope %q, want a finite negative number", col(r, "id"), col(r, "slope"))
		}
	}
	if seen["convex"] != 2 || seen["strong"] != 2 {
		t.Errorf("runs per step %v, want 2 convex and 2 strong", seen)
	}
	md, err := os.ReadFile(filepath.Join(dir, "scale.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## rates", "| async | sgd | convex | 4 | 1 | 0 | 1 | 1 | **-", "| async | sgd | strong | 4 | 1 | 0 | 2 | 1 | **-", "| async | sgd strong | 4 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("scale.md lacks %q:\n%s", want, md)
		}
	}
	checkFigures(t, dir, []string{"rates"})
	os.Remove(filepath.Join(dir, "rates.png"))
	if out, errOut, code := runCLI(t, "plot", dir); code != 0 {
		t.Fatalf("plot: exit %d:\n%s\n%s", code, out, errOut)
	}
	checkFigures(t, dir, []string{"rates"})
	for _, bad := range []string{":--reg=l2", "convex,convex", "strong:l2"} {
		a := []string{"scale", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--out", t.TempDir(), "--step", bad}
		if _, errOut, code := runCLI(t, a...); code != exitUsage {
			t.Errorf("--step %q: exit %d, want %d (%s)", bad, code, exitUsage, errOut)
		}
	}
}

// readScaleCSV reads a sweep's scale.csv: its header and one row per run.
func readScaleCSV(t *testing.T, dir string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "scale.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("scale.csv: %v (%d rows)", err, len(rows))
	}
	return rows
}
