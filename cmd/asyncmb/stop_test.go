package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
)

// Tests of the polish of sparse models, the stopping rules that need no
// phi* (--tol, --max-epochs), the held-out set (--test) and the divergence
// guard, all with real processes (`asyncmb train`) and the outputs read
// back independently of the run.

// trainCode runs `asyncmb train args...` and returns its exit code, output
// directory and stderr; the caller checks the code.
func trainCode(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	out := t.TempDir()
	var so, se bytes.Buffer
	full := append([]string{"asyncmb", "train", "--out", out, "--progress", "none"}, args...)
	code := run(full, &so, &se)
	t.Logf("train %s: exit %d\n%s", strings.Join(args, " "), code, so.String())
	return code, out, se.String()
}

// stopSummary is what these tests read of summary.json.
type stopSummary struct {
	StopReason string  `json:"stop_reason"`
	Epochs     float64 `json:"epochs"`
	Polish     *struct {
		Iters     int     `json:"iters"`
		PhiBefore float64 `json:"phi_before"`
		PhiAfter  float64 `json:"phi_after"`
		NNZBefore int     `json:"nnz_before"`
		NNZAfter  int     `json:"nnz_after"`
		Kept      bool    `json:"kept"`
	}
	Model *struct {
		Phi float64 `json:"phi"`
		NNZ int     `json:"nnz"`
	}
	Final struct {
		PhiAvg float64 `json:"phi_avg"`
		NNZAvg int     `json:"nnz_avg"`
	}
	Target *struct {
		Reached bool     `json:"reached"`
		Phi     float64  `json:"phi"`
		BestRel *float64 `json:"best_rel_subopt"`
	}
	Tol *struct {
		Reached    bool     `json:"reached"`
		LastChange *float64 `json:"last_change_per_epoch"`
	}
	Test *struct {
		Rows     int      `json:"rows"`
		Loss     *float64 `json:"loss"`
		Accuracy *float64 `json:"accuracy"`
		AUC      *float64 `json:"auc"`
		RMSE     *float64 `json:"rmse"`
	}
	Diverged *struct {
		Alpha float64 `json:"alpha"`
	}
	Outputs map[string]string `json:"outputs"`
}

func readStopSummary(t *testing.T, dir string) stopSummary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s stopSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// scoredModel is a model file read back with its figures on a data set,
// computed here: phi = mean loss + Psi, the nonzeros, and the margins.
type scoredModel struct {
	m       *ranks.Model
	phi     float64
	nnz     int
	margins []float64
	y       []float64 // labels: +-1 as the model's label line says, or the targets
}

func scoreModel(t *testing.T, path, dataPath string, reg solver.Reg) scoredModel {
	t.Helper()
	m, err := ranks.ReadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Read(dataPath, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sm := scoredModel{m: m, margins: make([]float64, ds.X.Rows), y: make([]float64, ds.X.Rows)}
	var loss float64
	for i := range sm.margins {
		idx, val := ds.X.Row(i)
		var s float64
		for k, j := range idx {
			if int(j) < m.Features {
				s += val[k] * m.Weights[j]
			}
		}
		sm.margins[i] = s
		sm.y[i] = ds.Y[i]
		if m.Loss.Classification() {
			sm.y[i] = -1
			if ds.Y[i] == m.Labels[0] {
				sm.y[i] = 1
			}
		}
		loss += m.Loss.Value(s, sm.y[i])
	}
	for _, w := range m.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			t.Fatalf("%s: weight %v", path, w)
		}
		if w != 0 {
			sm.nnz++
		}
	}
	sm.phi = loss/float64(len(sm.margins)) + reg.Value(m.Weights)
	return sm
}

// TestTrainSparseL1Models is issue 8's acceptance for sparse models: on
// every L1 row of testdata/reference.jsonl the model written has at most
// 1.25x + 2 the nonzeros of liblinear's optimum (nnz_x; scikit-learn's for
// the lasso), and its phi, computed here from the model file, is no higher
// than phi of the output before the polish. The runs use the acceptance
// flags of the ranks issue (--tau 0 --average tail --target 1e-3); the two
// rows that plain SGD does not bring to 1e-3 in reasonable time (mushrooms,
// abalone) run a fixed number of epochs instead. Two of the rows run the
// serial path (--np 1).
func TestTrainSparseL1Models(t *testing.T) {
	extra := map[string][]string{
		"heart_scale":   {"--np", "1", "--target", "1e-3", "--epochs", "2000"},
		"a1a":           {"--np", "3", "--target", "1e-3", "--epochs", "2000"},
		"a9a":           {"--np", "3", "--target", "1e-3", "--epochs", "100"},
		"rcv1_small":    {"--np", "3", "--target", "1e-3", "--epochs", "4000", "--batch", "250", "--dist", "30"},
		"mushrooms":     {"--np", "3", "--epochs", "100"},
		"abalone_scale": {"--np", "1", "--epochs", "100"},
	}
	var table []string
	for _, r := range refRows(t) {
		if r.Problem != "l1-logistic" && r.Problem != "lasso" {
			continue
		}
		name := fmt.Sprintf("%s-%g", r.Dataset, r.Lambda)
		t.Run(name, func(t *testing.T) {
			loss := "logistic"
			if r.Problem == "lasso" {
				loss = "squared"
			}
			dataPath := "../../testdata/" + r.Dataset
			args := append([]string{"--data", dataPath, "--loss", loss, "--reg", "l1", "--lambda", fmt.Sprint(r.Lambda),
				"--phi-star", fmt.Sprint(r.Objective), "--tau", "0", "--average", "tail"}, extra[r.Dataset]...)
			code, out, stderr := trainCode(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			s := readStopSummary(t, out)
			if s.Polish == nil || s.Model == nil {
				t.Fatal("summary.json has no polish or model record")
			}
			sm := scoreModel(t, filepath.Join(out, "model"), dataPath, solver.Reg{Kind: solver.RegL1, Lambda: r.Lambda})
			limit := 1.25*float64(r.NNZ) + 2
			relBefore := (s.Polish.PhiBefore - r.Objective) / r.Objective
			relModel := (sm.phi - r.Objective) / r.Objective
			table = append(table, fmt.Sprintf("%-22s liblinear %3d  ours before %4d after %3d (limit %.0f)  phi before %.10g (rel %.2e) after %.10g (rel %.2e)  %d steps",
				name, r.NNZ, s.Polish.NNZBefore, sm.nnz, limit, s.Polish.PhiBefore, relBefore, sm.phi, relModel, s.Polish.Iters))
			if float64(sm.nnz) > limit {
				t.Errorf("model has %d nonzeros, liblinear's optimum %d: more than 1.25x + 2 = %.2f", sm.nnz, r.NNZ, limit)
			}
			// The same figures in different summation orders: allow rounding.
			if sm.phi > s.Polish.PhiBefore*(1+1e-12) {
				t.Errorf("phi(model) %.15g > phi(output) %.15g", sm.phi, s.Polish.PhiBefore)
			}
			if s.Polish.NNZAfter != sm.nnz || s.Model.NNZ != sm.nnz || math.Abs(s.Model.Phi-sm.phi) > 1e-9*math.Abs(sm.phi) {
				t.Errorf("summary says polish nnz %d, model nnz %d phi %.15g; the model file has %d nonzeros, phi %.15g",
					s.Polish.NNZAfter, s.Model.NNZ, s.Model.Phi, sm.nnz, sm.phi)
			}
			if s.Target != nil && s.Target.Reached && math.Abs(s.Target.Phi-s.Polish.PhiBefore) > 1e-9*s.Target.Phi {
				t.Errorf("the polish started at phi %.15g, not at the output that reached the target (%.15g)", s.Polish.PhiBefore, s.Target.Phi)
			}
		})
	}
	t.Logf("nonzeros and phi of the model, before and after the polish:\n%s", strings.Join(table, "\n"))
}

// TestTrainDiverges: a huge constant step makes the lasso on abalone blow
// up; the run exits 1 with a message that names the step and what to try,
// writes its summary (marked diverged) and no model.
func TestTrainDiverges(t *testing.T) {
	for _, np := range []string{"1", "3"} {
		t.Run("np"+np, func(t *testing.T) {
			code, out, stderr := trainCode(t, "--np", np, "--data", "../../testdata/abalone_scale", "--loss", "squared", "--reg", "l1",
				"--lambda", "1e-3", "--step", "const", "--alpha0", "100", "--reference=false")
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			for _, want := range []string{"diverged", "alpha = 100", "smaller --alpha0", "1/L = ", "default step"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("message lacks %q:\n%s", want, stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "model")); !os.IsNotExist(err) {
				t.Errorf("a model was written (stat: %v)", err)
			}
			s := readStopSummary(t, out)
			if s.StopReason != "diverged" || s.Diverged == nil || s.Diverged.Alpha != 100 || s.Model != nil {
				t.Errorf("summary: stop reason %q, diverged %+v, model %+v", s.StopReason, s.Diverged, s.Model)
			}
		})
	}
}

// TestTrainTargetNotReached: a target that one epoch cannot reach stops at
// --max-epochs with exit 1 and a message giving the best suboptimality;
// the outputs are written and marked as not having reached it. Without
// --epochs, --target gets the default cap.
func TestTrainTargetNotReached(t *testing.T) {
	phiStar := refOptimum(t, "a9a", "l1-logistic", 1e-4)
	for _, np := range []string{"1", "3"} {
		t.Run("np"+np, func(t *testing.T) {
			code, out, stderr := trainCode(t, "--np", np, "--data", "../../testdata/a9a", "--reg", "l1", "--lambda", "1e-4",
				"--phi-star", fmt.Sprint(phiStar), "--target", "1e-7", "--max-epochs", "1")
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "target not reached after 1") || !strings.Contains(stderr, "best relative suboptimality") {
				t.Errorf("message:\n%s", stderr)
			}
			s := readStopSummary(t, out)
			if s.StopReason != "max-epochs" || s.Target == nil || s.Target.Reached || s.Target.BestRel == nil || !(*s.Target.BestRel > 1e-7) {
				t.Errorf("summary: stop reason %q, target %+v", s.StopReason, s.Target)
			}
			if !(s.Epochs >= 1 && s.Epochs < 1.1) {
				t.Errorf("stopped after %.3f epochs, want 1", s.Epochs)
			}
			for _, f := range []string{"model", "trace.csv"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// The default cap: --target alone gets --max-epochs 1000, binding once
	// training has also run 60 s.
	var so, se bytes.Buffer
	if code := run([]string{"asyncmb", "train", "--help"}, &so, &se); code != 0 || !strings.Contains(so.String(), "1000, once training has also run 60 s, with --target or --tol") {
		t.Errorf("--help (exit %d) does not give the default cap:\n%s", code, so.String())
	}
}

// TestTrainTol: --tol stops an l2 run on a9a without phi*, once phi changes
// by less than TOL per epoch; by then the model is close to the optimum
// (liblinear's, from testdata/reference.jsonl).
func TestTrainTol(t *testing.T) {
	phiStar := refOptimum(t, "a9a", "l2-logistic", 1e-4)
	for _, np := range []string{"1", "3"} {
		t.Run("np"+np, func(t *testing.T) {
			code, out, stderr := trainCode(t, "--np", np, "--data", "../../testdata/a9a", "--reg", "l2", "--lambda", "1e-4",
				"--step", "strong", "--tau", "0", "--tol", "1e-4", "--reference=false")
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			s := readStopSummary(t, out)
			if s.StopReason != "tol" || s.Tol == nil || !s.Tol.Reached || s.Tol.LastChange == nil || *s.Tol.LastChange > 1e-4 {
				t.Fatalf("summary: stop reason %q, tol %+v", s.StopReason, s.Tol)
			}
			sm := scoreModel(t, filepath.Join(out, "model"), "../../testdata/a9a", solver.Reg{Kind: solver.RegL2, Lambda: 1e-4})
			rel := (sm.phi - phiStar) / phiStar
			t.Logf("stopped by --tol 1e-4 after %.2f epochs: change per epoch %.3g, model rel. subopt %.3g", s.Epochs, *s.Tol.LastChange, rel)
			if !(rel < 1e-2) || s.Epochs > 200 {
				t.Errorf("relative suboptimality %.3g after %.1f epochs", rel, s.Epochs)
			}
		})
	}
}

// TestTrainHeldOut: --test adds the held-out loss and accuracy/AUC (or
// RMSE) to trace.csv and summary.json; the summary's figures equal those
// computed here from the model file.
func TestTrainHeldOut(t *testing.T) {
	cases := []struct {
		name, np, train, test, loss string
		cols                        []string
	}{
		{"a9a-classification", "3", "a9a", "a9a.t", "logistic", []string{"test_loss", "test_accuracy", "test_auc"}},
		{"abalone-regression-serial", "1", "abalone_scale", "abalone_scale", "squared", []string{"test_loss", "test_rmse"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testPath := "../../testdata/" + c.test
			code, out, stderr := trainCode(t, "--np", c.np, "--data", "../../testdata/"+c.train, "--loss", c.loss, "--reg", "l1", "--lambda", "1e-3",
				"--reference=false", "--tau", "0", "--average", "tail", "--epochs", "3", "--test", testPath)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			s := readStopSummary(t, out)
			if s.Test == nil || s.Test.Loss == nil {
				t.Fatal("summary.json has no test figures")
			}
			sm := scoreModel(t, filepath.Join(out, "model"), testPath, solver.Reg{})
			n := float64(len(sm.margins))
			var loss, se float64
			correct := 0
			for i, m := range sm.margins {
				loss += sm.m.Loss.Value(m, sm.y[i])
				se += (m - sm.y[i]) * (m - sm.y[i])
				if (m > 0) == (sm.y[i] > 0) {
					correct++
				}
			}
			loss /= n
			near := func(what string, got *float64, want float64) {
				if got == nil || math.Abs(*got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Errorf("summary test %s = %v, computed from the model: %.12g", what, got, want)
				}
			}
			near("loss", s.Test.Loss, loss)
			if sm.m.Loss.Classification() {
				near("accuracy", s.Test.Accuracy, float64(correct)/n)
				if s.Test.AUC == nil || !(*s.Test.AUC > 0.85) {
					t.Errorf("test AUC %v", s.Test.AUC)
				}
			} else {
				near("rmse", s.Test.RMSE, math.Sqrt(se/n))
			}
			csv, err := os.ReadFile(filepath.Join(out, "trace.csv"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
			hdr := strings.Split(lines[0], ",")
			if got := hdr[len(hdr)-len(c.cols):]; strings.Join(got, ",") != strings.Join(c.cols, ",") {
				t.Fatalf("trace.csv header %v, want it to end with %v", hdr, c.cols)
			}
			last := strings.Split(lines[len(lines)-1], ",")
			if len(last) != len(hdr) || len(lines) < 3 {
				t.Fatalf("trace.csv: %d lines, last %v", len(lines), last)
			}
			if v, err := strconv.ParseFloat(last[len(hdr)-len(c.cols)], 64); err != nil || !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("last test_loss %q", last[len(hdr)-len(c.cols)])
			}
		})
	}
}

// TestStopFlagsUsage: bad values of the new flags exit 2 before any rank
// starts, and --help explains each of them.
func TestStopFlagsUsage(t *testing.T) {
	for _, args := range [][]string{{"--tol", "-1"}, {"--max-epochs", "-2"}, {"--polish", "-1"}, {"--tol", "NaN"}} {
		var so, se bytes.Buffer
		full := append([]string{"asyncmb", "train", "--data", "../../testdata/heart_scale", "--reference=false", "--out", t.TempDir()}, args...)
		if code := run(full, &so, &se); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, se.String())
		}
	}
	var so, se bytes.Buffer
	run([]string{"asyncmb", "train", "--help"}, &so, &se)
	for _, want := range []string{"--tol TOL", "--max-epochs E", "--test FILE", "--polish N", "ASYNCMB_TOL", "ASYNCMB_POLISH"} {
		if !strings.Contains(so.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// TestTrainHeldOutBadLabel: a --test file with a label the training data
// does not have fails before training, naming the file and the row.
func TestTrainHeldOutBadLabel(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.t")
	if err := os.WriteFile(bad, []byte("-1 1:0.5\n+1 2:1\n3 1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, np := range []string{"1", "3"} {
		code, out, stderr := trainCode(t, "--np", np, "--data", "../../testdata/heart_scale", "--reg", "l1", "--lambda", "1e-2",
			"--reference=false", "--epochs", "1", "--test", bad)
		if code != 1 || !strings.Contains(stderr, "bad.t: row 3 has label 3") {
			t.Errorf("np %s: exit %d\n%s", np, code, stderr)
		}
		if _, err := os.Stat(filepath.Join(out, "model")); !os.IsNotExist(err) {
			t.Errorf("np %s: a model was written", np)
		}
	}
}
