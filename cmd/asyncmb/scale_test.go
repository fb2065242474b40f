package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestScaleTiny runs a tiny real sweep (heart_scale, P = 1, 2, async and
// sync, 2 repeats: 8 train processes) and checks the files it must write:
// scale.csv with its columns and one row per run, scale.md with a row per
// configuration, and every figure as a PNG that decodes and an SVG; then
// `plot DIR` redraws a deleted figure from the CSV and the run directories.
func TestScaleTiny(t *testing.T) {
	t.Setenv("ASYNCMB_TEST_MAIN", "1") // the runs re-execute this test binary as asyncmb
	phi := refOptimum(t, "heart_scale", "l1-logistic", 0.01)
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "scale", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--tau", "0", "--average", "tail",
		"--phi-star", strconv.FormatFloat(phi, 'g', -1, 64), "--workers", "1,2", "--mode", "async,sync", "--batch", "16",
		"--repeat", "2", "--targets", "1e-1,1e-2", "--epochs", "30", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	rows := readScaleCSV(t, dir)
	head := rows[0]
	for _, c := range []string{"workers", "mode", "rep", "status", "updates", "updates_per_s", "delay_mean", "delay_p99", "idle_frac",
		"bytes_wire", "time_1e-1", "updates_1e-1", "speedup_1e-1", "efficiency_1e-1", "time_1e-2", "updates_1e-2", "speedup_1e-2", "efficiency_1e-2"} {
		if !slices.Contains(head, c) {
			t.Errorf("scale.csv has no column %q: %v", c, head)
		}
	}
	if len(rows) != 1+8 {
		t.Fatalf("scale.csv has %d runs, want 8", len(rows)-1)
	}
	col := func(r []string, name string) string { return r[slices.Index(head, name)] }
	for _, r := range rows[1:] {
		if col(r, "status") != "ok" {
			t.Errorf("run %s: %s", col(r, "id"), col(r, "error"))
			continue
		}
		upd, _ := strconv.Atoi(col(r, "updates"))
		bytes, _ := strconv.Atoi(col(r, "bytes_wire"))
		if upd <= 0 || bytes <= 0 {
			t.Errorf("run %s: %d updates, %d bytes on the wire", col(r, "id"), upd, bytes)
		}
		tm, err := strconv.ParseFloat(col(r, "time_1e-1"), 64)
		if err != nil || !(tm > 0) {
			t.Errorf("run %s: time to 1e-1 %q", col(r, "id"), col(r, "time_1e-1"))
		}
		if col(r, "workers") == "2" && col(r, "mode") == "async" {
			if d, _ := strconv.ParseFloat(col(r, "delay_mean"), 64); !(d > 0) {
				t.Errorf("run %s: mean delay %v with 2 async workers", col(r, "id"), d)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "scale.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| async | - | 16 | 1 | 0 | 1 |", "| async | - | 16 | 1 | 0 | 2 |", "| sync | - | 16 | 1 | 0 | 2 |", "## async against sync"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("scale.md lacks %q:\n%s", want, md)
		}
	}
	figs := []string{"subopt_time", "subopt_updates", "speedup", "delay_hist", "async_vs_sync"}
	checkFigures(t, dir, figs)
	// A run's own figures are not drawn inside a sweep (--figures=false).
	if _, err := os.Stat(filepath.Join(dir, "runs", "p1-async-b16-r1", "subopt_time.png")); err == nil {
		t.Error("a sweep's run drew its own figures")
	}
	os.Remove(filepath.Join(dir, "speedup.png"))
	if out, errOut, code := runCLI(t, "plot", dir); code != 0 {
		t.Fatalf("plot: exit %d:\n%s\n%s", code, out, errOut)
	}
	checkFigures(t, dir, figs)
	run := filepath.Join(dir, "runs", "p2-async-b16-r1")
	if out, errOut, code := runCLI(t, "plot", run); code != 0 {
		t.Fatalf("plot run: exit %d:\n%s\n%s", code, out, errOut)
	}
	checkFigures(t, run, []string{"subopt_time", "subopt_updates", "delay_hist"})
	if _, _, code := runCLI(t, "plot", t.TempDir()); code != exitUsage {
		t.Errorf("plot of an empty directory: exit %d, want %d", code, exitUsage)
	}
}

// checkFigures checks that dir holds each figure as a decodable, non-trivial
// PNG and an SVG.
func checkFigures(t *testing.T, dir string, names []string) {
	t.Helper()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s.png: %v", n, err)
		} else if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
			t.Errorf("%s.png is %dx%d", n, b.Dx(), b.Dy())
		}
		svg, err := os.ReadFile(filepath.Join(dir, n+".svg"))
		if err != nil || !strings.Contains(string(svg), "<svg") {
			t.Errorf("%s.svg: %v", n, err)
		}
	}
}

// TestScaleUsage: bad sweep flags are usage errors before any run starts.
func TestScaleUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--workers", "0,2"},
		{"--mode", "async,fast"},
		{"--targets", "-1"},
		{"--slow", "1=4", "--slowdown", "1,4"},
		{"--net-delay", "soon"},
		{"--dilate", "0.5"},
		{"--weak", "--phi-star", "0.3"},
	} {
		a := append([]string{"scale", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--out", t.TempDir()}, args...)
		if _, errOut, code := runCLI(t, a...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
}

// TestTrainNetDelayAndFigures: with --net-delay 2ms every round trip takes
// at least 4 ms, so 2 workers cannot apply more than 500 updates/s; and
// train draws its own run's figures into --out.
func TestTrainNetDelayAndFigures(t *testing.T) {
	phi := refOptimum(t, "heart_scale", "l1-logistic", 0.01)
	_, out := train(t, "--np", "3", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--phi-star", strconv.FormatFloat(phi, 'g', -1, 64),
		"--net-delay", "2ms", "--iters", "200")
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Updates int64   `json:"updates"`
		TrainS  float64 `json:"train_s"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if rate := float64(s.Updates) / s.TrainS; s.Updates < 200 || rate > 500 {
		t.Errorf("%d updates at %.0f/s with 2 ms message delays: want 200 at <= 500/s", s.Updates, rate)
	}
	checkFigures(t, out, []string{"subopt_time", "subopt_updates", "delay_hist"})
}
