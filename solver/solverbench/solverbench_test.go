package solverbench

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
)

// TestFitSlope: the least-squares log-log slope recovers the exponent of a
// power law, ignoring points before the window.
func TestFitSlope(t *testing.T) {
	ts := logSpaced(100, 100000, 25)
	if ts[0] != 100 || ts[len(ts)-1] != 100000 {
		t.Fatalf("logSpaced ends %d..%d", ts[0], ts[len(ts)-1])
	}
	s := make([]float64, len(ts))
	for i, v := range ts {
		s[i] = 3 * math.Pow(float64(v), -0.7)
		if v < 1000 {
			s[i] = 1 // a transient outside the window
		}
	}
	if got := fitSlope(ts, s, 1000); math.Abs(got+0.7) > 1e-9 {
		t.Errorf("slope %v, want -0.7", got)
	}
}

// TestLiblinearModelObjective: the baseline of bench reference is read
// right: liblinear-train -s 6 -e 1e-9 on heart_scale, evaluated by our
// objective, gives the optimum of testdata/reference.jsonl (this checks
// C = 1/(n lambda), the weight file and the label sign).
func TestLiblinearModelObjective(t *testing.T) {
	bin, err := exec.LookPath("liblinear-train")
	if err != nil {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatal("liblinear-train is required (ASYNCMB_REQUIRE_TOOLS=1): apt-get install liblinear-tools")
		}
		t.Skip("liblinear-train not installed")
	}
	// liblinear lists the labels of a model in the order they first appear
	// (except that it puts +1 first in a -1/+1 problem), and its weights
	// separate the first label from the second. heart_scale relabelled 1/2
	// (2 is our +1) and starting with a 2 row gives "label 2 1"; with its first
	// two rows swapped it starts with 1 and gives "label 1 2", whose weights
	// must be negated. Both, and the original file, must give phi*.
	orig := filepath.Join("..", "..", "testdata", "heart_scale")
	raw, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for i, l := range lines {
		lab, rest, _ := strings.Cut(l, " ")
		lines[i] = map[string]string{"+1": "2", "-1": "1"}[lab] + " " + rest
	}
	dir := t.TempDir()
	relabelled := filepath.Join(dir, "heart_12")
	swapped := filepath.Join(dir, "heart_12_swapped")
	if err := os.WriteFile(relabelled, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines[0], lines[1] = lines[1], lines[0]
	if err := os.WriteFile(swapped, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{orig, relabelled, swapped} {
		checkLiblinearModel(t, bin, data)
	}
}

func checkLiblinearModel(t *testing.T, bin, data string) {
	pc := problem.Config{Data: data, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: 0.01}}
	lp, err := pc.Load()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := lp.Problem.Dims()
	model := filepath.Join(t.TempDir(), "model")
	c := strconv.FormatFloat(1/(float64(n)*0.01), 'g', -1, 64)
	if out, err := exec.Command(bin, "-s", "6", "-c", c, "-e", "1e-9", "-B", "-1", "-q", data, model).CombinedOutput(); err != nil {
		t.Fatalf("liblinear-train: %v: %s", err, out)
	}
	x, err := ReadLiblinearModel(model, lp)
	if err != nil {
		t.Fatal(err)
	}
	const want = 0.4182952453595799
	if got := lp.Problem.Objective(x); math.Abs(got-want) > 1e-8*want {
		t.Errorf("%s: objective of liblinear's model %.15g, want %.15g", data, got, want)
	}
}
