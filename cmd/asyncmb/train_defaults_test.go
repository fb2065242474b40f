package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/asyncmb/asyncmb/solver/solverbench"
)

// problemArgs are the problem flags of a reference.jsonl row.
func problemArgs(t *testing.T, dataset, problem string, lambda float64) []string {
	t.Helper()
	args := []string{"--data", filepath.Join("..", "..", "testdata", dataset), "--lambda", strconv.FormatFloat(lambda, 'g', -1, 64)}
	switch problem {
	case "l1-logistic":
		return append(args, "--loss", "logistic", "--reg", "l1")
	case "l2-logistic":
		return append(args, "--loss", "logistic", "--reg", "l2")
	case "lasso":
		return append(args, "--loss", "squared", "--reg", "l1")
	case "ridge-ls":
		return append(args, "--loss", "squared", "--reg", "l2")
	case "l2-multinomial":
		return append(args, "--loss", "logistic", "--reg", "l2") // the defaults; K >= 3 labels: softmax
	}
	t.Fatalf("unknown problem %q", problem)
	return nil
}

// checkDefaults trains with only the problem flags and --target 1e-3 (phi*
// given; the default cap, 1000 epochs once 60 s have passed, keeps a broken
// run from hanging the suite) and checks that the target was reached and that
// the model file, evaluated afresh, is within 1e-3 of phi*.
func checkDefaults(t *testing.T, np int, args []string, phiStar float64) {
	t.Helper()
	full := append([]string{"--np", strconv.Itoa(np), "--phi-star", strconv.FormatFloat(phiStar, 'g', -1, 64),
		"--target", "1e-3"}, args...)
	s, out := train(t, full...)
	if s.StopReason != "target" || s.Target == nil || !s.Target.Reached {
		t.Fatalf("np %d %v: stopped by %s after %.1f epochs, target not reached", np, args, s.StopReason, s.Epochs)
	}
	phi := defaultsModelPhi(t, filepath.Join(out, "model"), args)
	if rel := (phi - phiStar) / phiStar; rel > 1e-3 {
		t.Errorf("np %d %v: phi(model) %.10g, rel. subopt %.3g > 1e-3", np, args, phi, rel)
	}
	t.Logf("np %d %v: target after %.1f epochs, %d updates, %.2f s", np, args[1], s.Epochs, s.Target.T, s.Target.WallS)
}

// TestTrainDefaultsReachReference is issue 8's acceptance: with only the
// problem flags and --target 1e-3, every binary and regression row of
// testdata/reference.jsonl reaches the target with 1 (serial) and 4
// processes (3 workers).
func TestTrainDefaultsReachReference(t *testing.T) {
	for _, row := range refRows(t) {
		phiStar := row.Objective
		if row.Problem == "l2-multinomial" {
			// Issue 14's K-class rows (digits, wine): against the tight
			// L-BFGS optimum, sklearn's is 5e-8 (wine 4e-5) above it.
			phiStar = row.Tight
		}
		args := problemArgs(t, row.Dataset, row.Problem, row.Lambda)
		for _, np := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/%s/%g/np%d", row.Dataset, row.Problem, row.Lambda, np), func(t *testing.T) {
				checkDefaults(t, np, args, phiStar)
			})
		}
	}
}

// TestTrainDefaultsUnscaled: the same on the unscaled testdata (columns
// multiplied by 10^-3..10^6), whose optima this test computes with
// liblinear-train -s 6 -e 1e-9 -B -1 (C = 1/(n lambda)), evaluated by our
// objective in float64. (mushrooms_unscaled is left out: the default needs
// thousands of epochs there, see the README's "Choosing a method".)
func TestTrainDefaultsUnscaled(t *testing.T) {
	bin, err := exec.LookPath("liblinear-train")
	if err != nil {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatal("liblinear-train is required (ASYNCMB_REQUIRE_TOOLS=1): apt-get install liblinear-tools")
		}
		t.Skip("liblinear-train not installed")
	}
	for _, c := range []struct {
		dataset string
		lambda  float64
	}{{"heart_unscaled", 0.01}, {"a1a_unscaled", 1e-3}} {
		args := problemArgs(t, c.dataset, "l1-logistic", c.lambda)
		phiStar := liblinearOptimum(t, bin, args[1], c.lambda)
		for _, np := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/np%d", c.dataset, np), func(t *testing.T) {
				checkDefaults(t, np, args, phiStar)
			})
		}
	}
}

// sklearnLassoScript prints phi of scikit-learn's lasso (no intercept) of
// the file argv[1] with lambda argv[2]: (1/(2n))||Ax - y||^2 + lambda||x||_1.
const sklearnLassoScript = `
import sys
import numpy as np
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import Lasso
X, y = load_svmlight_file(sys.argv[1])
lam = float(sys.argv[2])
w = Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=10**6).fit(X, y).coef_
r = X @ w - y
print(repr(0.5 * np.mean(r * r) + lam * np.abs(w).sum()))
`

// TestTrainDefaultsUnscaledLasso: the lasso on abalone_unscaled, its
// optimum from scikit-learn's coordinate descent (tol 1e-14).
func TestTrainDefaultsUnscaledLasso(t *testing.T) {
	const lambda = 0.01
	data := filepath.Join("..", "..", "testdata", "abalone_unscaled")
	out, err := exec.Command("/usr/bin/python3", "-c", sklearnLassoScript, data, fmt.Sprint(lambda)).CombinedOutput()
	if err != nil {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatalf("python3-sklearn is required (ASYNCMB_REQUIRE_TOOLS=1): %v: %s", err, out)
		}
		t.Skipf("no scikit-learn: %v", err)
	}
	phiStar, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("sklearn lasso printed %q", out)
	}
	args := problemArgs(t, "abalone_unscaled", "lasso", lambda)
	for _, np := range []int{1, 4} {
		t.Run(fmt.Sprintf("np%d", np), func(t *testing.T) { checkDefaults(t, np, args, phiStar) })
	}
}

// liblinearOptimum is phi(x) of liblinear's L1-logistic model of data.
func liblinearOptimum(t *testing.T, bin, data string, lambda float64) float64 {
	t.Helper()
	pc := problem.Config{Data: data, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: lambda}}
	lp, err := pc.Load()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := lp.Problem.Dims()
	model := filepath.Join(t.TempDir(), "model")
	c := strconv.FormatFloat(1/(float64(n)*lambda), 'g', -1, 64)
	if out, err := exec.Command(bin, "-s", "6", "-c", c, "-e", "1e-9", "-B", "-1", "-q", data, model).CombinedOutput(); err != nil {
		t.Fatalf("liblinear-train: %v: %s", err, out)
	}
	x, err := solverbench.ReadLiblinearModel(model, lp)
	if err != nil {
		t.Fatal(err)
	}
	return lp.Problem.Objective(x)
}

// defaultsModelPhi evaluates phi of a model file on the problem of args,
// read afresh (labels mapped as a new run maps them; regression too).
func defaultsModelPhi(t *testing.T, model string, args []string) float64 {
	t.Helper()
	get := func(name string) string {
		for i, a := range args {
			if a == "--"+name && i+1 < len(args) {
				return args[i+1]
			}
		}
		t.Fatalf("no --%s in %v", name, args)
		return ""
	}
	loss, err := kernels.ParseLoss(get("loss"))
	if err != nil {
		t.Fatal(err)
	}
	kind, err := solver.ParseRegKind(get("reg"))
	if err != nil {
		t.Fatal(err)
	}
	lambda, err := strconv.ParseFloat(get("lambda"), 64)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := problem.Config{Data: get("data"), Loss: loss, Reg: solver.Reg{Kind: kind, Lambda: lambda}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	x, err := solverbench.ReadLiblinearModel(model, lp)
	if err != nil {
		t.Fatal(err)
	}
	return lp.Problem.Objective(x)
}

// TestTrainMethodUsageErrors: combinations svrg does not take exit 2.
func TestTrainMethodUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--method", "svrg", "--step", "convex"},
		{"--method", "svrg", "--step", "const"},
		{"--method", "svrg", "--mode", "sync"},
		{"--method", "sgd", "--metric", "diag"},
		{"--method", "newton"},
		{"--metric", "cholesky"},
	} {
		var so, se bytes.Buffer
		full := append([]string{"asyncmb", "train", "--data", "../../testdata/heart_scale", "--lambda", "0.01", "--reference=false"}, args...)
		if code := run(full, &so, &se); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, se.String())
		}
	}
}
