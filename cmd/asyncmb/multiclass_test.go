package main

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/data"
)

// tightOptimum returns the objective and objective_tight of a row of
// testdata/reference.jsonl (the multinomial rows: scikit-learn's value and
// scipy's tighter solve of the same problem).
func tightOptimum(t *testing.T, dataset string, lambda float64) (sklearn, tight float64) {
	t.Helper()
	for _, row := range refRows(t) {
		if row.Dataset == dataset && row.Problem == "l2-multinomial" && row.Lambda == lambda {
			return row.Objective, row.Tight
		}
	}
	t.Fatalf("no l2-multinomial reference row for %s %g", dataset, lambda)
	return 0, 0
}

// TestReferenceMulticlass: `asyncmb reference` on a K-class file solves the
// l2-multinomial problem and reproduces the optimum of reference.jsonl to
// 1e-8 relative (the tight solve; scikit-learn's own run stopped above it).
func TestReferenceMulticlass(t *testing.T) {
	for _, c := range []struct {
		file   string
		lambda float64
	}{{"wine.sklearn", 1e-2}, {"digits.sklearn", 1e-3}} {
		t.Run(c.file, func(t *testing.T) {
			sk, want := tightOptimum(t, c.file, c.lambda)
			var so, se bytes.Buffer
			args := []string{"asyncmb", "reference", "--data", "../../testdata/" + c.file, "--reg", "l2", "--lambda", fmt.Sprint(c.lambda),
				"--cache-dir", t.TempDir()}
			if code := run(args, &so, &se); code != 0 {
				t.Fatalf("exit %d: %s%s", code, so.String(), se.String())
			}
			m := regexp.MustCompile(`phi\*\s+(\S+)`).FindStringSubmatch(so.String())
			if m == nil || !strings.Contains(so.String(), "classes") {
				t.Fatalf("no phi* or no class count in:\n%s", so.String())
			}
			phi, _ := strconv.ParseFloat(m[1], 64)
			if rel := math.Abs(phi-want) / want; rel > 1e-8 {
				t.Errorf("phi* %.15g, reference %.15g: relative gap %.3g", phi, want, rel)
			}
			if phi > sk {
				t.Errorf("phi* %.15g above scikit-learn's %.15g", phi, sk)
			}
		})
	}
}

// splitRows writes rows i%5 != 4 of src to train and the others to test: a
// deterministic 80/20 split.
func splitRows(t *testing.T, src, train, test string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var tr, te bytes.Buffer
	for i, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if i%5 == 4 {
			te.WriteString(line)
		} else {
			tr.WriteString(line)
		}
	}
	if err := os.WriteFile(train, tr.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(test, te.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

var liblinearAcc = regexp.MustCompile(`Accuracy = ([0-9.]+)% \((\d+)/(\d+)\)`)

// liblinearPredict returns liblinear-predict's count of correct rows.
func liblinearPredict(t *testing.T, test, model string) int {
	t.Helper()
	b, err := exec.Command("liblinear-predict", test, model, model+".pred").CombinedOutput()
	if err != nil {
		t.Fatalf("liblinear-predict: %v\n%s", err, b)
	}
	m := liblinearAcc.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("liblinear-predict said: %s", b)
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

// TestMulticlassAccuracyVsLiblinear is the multiclass issue's accuracy
// acceptance, in one run: on digits (softmax, the default) and on a
// generated 20-class text-like set (one-vs-rest, liblinear's model),
// held-out accuracy of a 4-worker asynchronous
// run is at least liblinear-train -s 0's at the same lambda (C = 1/(n
// lambda)) less one point; liblinear-predict on our model file counts the
// same correct rows as asyncmb predict. The split is rows i%5 == 4.
func TestMulticlassAccuracyVsLiblinear(t *testing.T) {
	if _, err := exec.LookPath("liblinear-train"); err != nil {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatal("liblinear-train not found (Debian package liblinear-tools)")
		}
		t.Skip("liblinear-train not found (Debian package liblinear-tools)")
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "text20.svm")
	f, err := os.Create(gen)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.Generate(f, data.GenConfig{Rows: 12500, Features: 1000, Density: 0.02, Zipf: 1, Task: data.Multiclass, Classes: 20,
		Noise: 0.1, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, c := range []struct {
		name, src  string
		lambda     float64
		epochs     string
		multiclass string
		sparse     bool // d*K > 2048: the workers send the batch's rows of W
	}{
		{"digits-softmax", "../../testdata/digits.sklearn", 1e-3, "200", "softmax", false},
		{"text20-ovr", gen, 1e-4, "30", "ovr", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			trainF, test := filepath.Join(dir, c.name+".train"), filepath.Join(dir, c.name+".test")
			splitRows(t, c.src, trainF, test)
			ds, err := data.Read(trainF, data.Options{})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			llModel := filepath.Join(dir, c.name+".liblinear")
			C := 1 / (float64(ds.X.Rows) * c.lambda)
			if b, err := exec.Command("liblinear-train", "-s", "0", "-c", fmt.Sprint(C), "-q", trainF, llModel).CombinedOutput(); err != nil {
				t.Fatalf("liblinear-train: %v\n%s", err, b)
			}
			llTime := time.Since(start)
			theirs := liblinearPredict(t, test, llModel)

			start = time.Now()
			s, out := train(t, "--np", "5", "--data", trainF, "--reg", "l2", "--lambda", fmt.Sprint(c.lambda), "--multiclass", c.multiclass,
				"--reference=false", "--tau", "0", "--average", "tail", "--epochs", c.epochs)
			ourTime := time.Since(start)
			if c.sparse && s.Master.SparseGrads < s.Master.Grads/2 {
				t.Errorf("d*K = 20000: %d of %d gradients sparse", s.Master.SparseGrads, s.Master.Grads)
			}
			model := filepath.Join(out, "model")
			var so, se bytes.Buffer
			if code := run([]string{"asyncmb", "predict", "--model", model, "--data", test}, &so, &se); code != 0 {
				t.Fatalf("predict: exit %d: %s", code, se.String())
			}
			m := regexp.MustCompile(`accuracy\s+([0-9.]+)% \((\d+)/(\d+)\)`).FindStringSubmatch(so.String())
			if m == nil || !strings.Contains(so.String(), "confusion") || !strings.Contains(so.String(), "precision") {
				t.Fatalf("no accuracy, confusion matrix or precision in:\n%s", so.String())
			}
			ours, _ := strconv.Atoi(m[2])
			rows, _ := strconv.Atoi(m[3])
			if ll := liblinearPredict(t, test, model); ll != ours {
				t.Errorf("liblinear-predict on our model: %d correct, asyncmb predict: %d", ll, ours)
			}
			// And the other way round: asyncmb predict reads liblinear-train's K-class model.
			so.Reset()
			if code := run([]string{"asyncmb", "predict", "--model", llModel, "--data", test}, &so, &se); code != 0 {
				t.Fatalf("predict on liblinear's model: exit %d: %s", code, se.String())
			}
			if lm := regexp.MustCompile(`accuracy\s+[0-9.]+% \((\d+)/`).FindStringSubmatch(so.String()); lm == nil || lm[1] != strconv.Itoa(theirs) {
				t.Errorf("asyncmb predict on liblinear's model: %v, liblinear-predict: %d correct", lm, theirs)
			}
			if ourHdr, llHdr := modelHeader(t, model), modelHeader(t, llModel); ourHdr != llHdr {
				t.Errorf("model header %q, liblinear-train's %q (class order: first appearance)", ourHdr, llHdr)
			}
			accO, accT := 100*float64(ours)/float64(rows), 100*float64(theirs)/float64(rows)
			t.Logf("| %s | %d x %d | %g | %.2f%% (%.2f s, %d updates) | %.2f%% (%.2f s) |", c.name, ds.X.Rows, ds.MaxIndex, c.lambda,
				accO, ourTime.Seconds(), s.Updates, accT, llTime.Seconds())
			if accO < accT-1 {
				t.Errorf("held-out accuracy %.2f%% < liblinear -s 0's %.2f%% less one point", accO, accT)
			}
		})
	}
}

// modelHeader returns the nr_class, label and nr_feature lines of a model file.
func modelHeader(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "nr_class ") || strings.HasPrefix(line, "label ") || strings.HasPrefix(line, "nr_feature ") {
			keep = append(keep, strings.TrimSpace(line))
		}
	}
	return strings.Join(keep, "; ")
}

// TestTrainMulticlassSortedShards: with the rows sorted by label, each of
// the 4 workers' byte-range shards holds only some of the classes; the
// setup still agrees on all 10 (in the file's order of first appearance,
// which the model's label line shows) and the model classifies the
// training rows.
func TestTrainMulticlassSortedShards(t *testing.T) {
	ds, err := data.Read("../../testdata/digits.sklearn", data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../testdata/digits.sklearn")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n")+"\n", "\n")
	lines = lines[:len(lines)-1]
	order := make([]int, len(lines))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ds.Y[b], ds.Y[a]) }) // labels 10, 9, ..., 1
	var sorted strings.Builder
	for _, i := range order {
		sorted.WriteString(lines[i])
	}
	path := filepath.Join(t.TempDir(), "digits.sorted")
	if err := os.WriteFile(path, []byte(sorted.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out := train(t, "--np", "5", "--data", path, "--reg", "l2", "--lambda", "1e-3", "--reference=false",
		"--tau", "0", "--average", "tail", "--epochs", "50")
	if h := modelHeader(t, filepath.Join(out, "model")); h != "nr_class 10; label 10 9 8 7 6 5 4 3 2 1; nr_feature 64" {
		t.Errorf("model header %q", h)
	}
	var so, se bytes.Buffer
	if code := run([]string{"asyncmb", "predict", "--model", filepath.Join(out, "model"), "--data", path}, &so, &se); code != 0 {
		t.Fatalf("predict: exit %d: %s", code, se.String())
	}
	m := regexp.MustCompile(`accuracy\s+([0-9.]+)%`).FindStringSubmatch(so.String())
	if m == nil {
		t.Fatalf("no accuracy in %s", so.String())
	}
	if acc, _ := strconv.ParseFloat(m[1], 64); acc < 90 {
		t.Errorf("training accuracy %.2f%%, want >= 90%%", acc)
	}
}

// TestTrainMulticlassPolishAndTest: an l1 softmax run is polished on the
// workers' shards (full-data prox-gradient steps over the flat d x K
// vector) and scored on a --test set; the held-out accuracy in
// summary.json is what asyncmb predict says of the model written.
func TestTrainMulticlassPolishAndTest(t *testing.T) {
	dir := t.TempDir()
	trainF, test := filepath.Join(dir, "digits.train"), filepath.Join(dir, "digits.test")
	splitRows(t, "../../testdata/digits.sklearn", trainF, test)
	code, out, stderr := trainCode(t, "--np", "4", "--data", trainF, "--test", test, "--reg", "l1", "--lambda", "1e-4",
		"--reference=false", "--tau", "0", "--average", "tail", "--epochs", "30")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	s := readStopSummary(t, out)
	if s.Polish == nil || !(s.Polish.PhiAfter < s.Polish.PhiBefore) || s.Test == nil || s.Test.Accuracy == nil {
		t.Fatalf("polish %+v test %+v", s.Polish, s.Test)
	}
	var so, se bytes.Buffer
	if code := run([]string{"asyncmb", "predict", "--model", filepath.Join(out, "model"), "--data", test}, &so, &se); code != 0 {
		t.Fatalf("predict: exit %d: %s", code, se.String())
	}
	m := regexp.MustCompile(`accuracy\s+[0-9.]+% \((\d+)/(\d+)\)`).FindStringSubmatch(so.String())
	if m == nil {
		t.Fatalf("no accuracy in %s", so.String())
	}
	correct, rows := atoi(t, m[1]), atoi(t, m[2])
	if got := *s.Test.Accuracy; math.Abs(got-float64(correct)/float64(rows)) > 1e-12 || s.Test.Rows != rows {
		t.Errorf("summary's held-out accuracy %v on %d rows, predict %d/%d", got, s.Test.Rows, correct, rows)
	}
	if *s.Test.Accuracy < 0.9 {
		t.Errorf("held-out accuracy %v, want >= 0.9", *s.Test.Accuracy)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
