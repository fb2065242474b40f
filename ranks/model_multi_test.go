package ranks

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// TestMultiModelRoundTrip: a K-class model is written in LIBLINEAR's
// multiclass layout (one line of K weights per feature) and read back; a
// file whose weight count does not match features x classes is refused.
func TestMultiModelRoundTrip(t *testing.T) {
	m := &Model{Weights: []float64{1, 2, 3, 4, 5, 6, 0.5, -0.5, 0}, Loss: kernels.Logistic, Reg: solver.RegL2,
		Features: 2, Bias: true, Labels: []float64{7, 3, 5}, Classes: 3}
	var b bytes.Buffer
	if err := m.WriteLiblinear(&b); err != nil {
		t.Fatal(err)
	}
	want := "solver_type L2R_LR\nnr_class 3\nlabel 7 3 5\nnr_feature 2\nbias 1\nw\n1 2 3 \n4 5 6 \n0.5 -0.5 0 \n"
	if b.String() != want {
		t.Fatalf("model file:\n%s\nwant:\n%s", b.String(), want)
	}
	m2, err := parseModel(strings.NewReader(b.String()), "m")
	if err != nil {
		t.Fatal(err)
	}
	if m2.Classes != 3 || len(m2.Weights) != 9 || m2.Labels[0] != 7 || m2.Weights[7] != -0.5 {
		t.Fatalf("read back %+v", m2)
	}
	for _, bad := range []string{
		strings.Replace(want, "0.5 -0.5 0 \n", "", 1),        // a row missing
		strings.Replace(want, "label 7 3 5", "label 7 3", 1), // a label missing
		strings.Replace(want, "L2R_LR", "L2R_L2LOSS_SVC", 1), // not logistic
	} {
		if _, err := parseModel(strings.NewReader(bad), "bad"); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

// TestMultiModelEvaluate checks the argmax prediction, the confusion
// matrix, per-class precision/recall and the multinomial log-loss on rows
// worked out by hand.
func TestMultiModelEvaluate(t *testing.T) {
	// Two features, three classes; W rows: feature 0 favours class 0, feature 1 class 2.
	m := &Model{Weights: []float64{2, 0, 0, 0, 0, 2}, Loss: kernels.Logistic, Features: 2, Labels: []float64{10, 20, 30}, Classes: 3}
	a := &kernels.CSR{Rows: 3, Cols: 3, Indptr: []int64{0, 1, 2, 3}, Indices: []int32{0, 1, 2}, Data: []float64{1, 1, 1}}
	// Row 0: scores (2,0,0) -> class 10, true 10. Row 1: (0,0,2) -> 30, true 20.
	// Row 2: feature 2 is beyond the model (ignored): (0,0,0) -> the first, 10; true 30.
	res, err := m.Evaluate(a, []float64{10, 20, 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accuracy != 1.0/3 {
		t.Errorf("accuracy %v, want 1/3", res.Accuracy)
	}
	wantConf := [][]int{{1, 0, 0}, {0, 0, 1}, {1, 0, 0}}
	for r := range wantConf {
		for c := range wantConf[r] {
			if res.Confusion[r][c] != wantConf[r][c] {
				t.Fatalf("confusion %v, want %v", res.Confusion, wantConf)
			}
		}
	}
	if res.Precision[0] != 0.5 || !math.IsNaN(res.Precision[1]) || res.Precision[2] != 0 || res.Recall[0] != 1 || res.Recall[1] != 0 {
		t.Errorf("precision %v recall %v", res.Precision, res.Recall)
	}
	e2 := math.Exp(2)
	ll := (math.Log(e2+2) - 2 + math.Log(e2+2) - 0 + math.Log(3)) / 3
	if math.Abs(res.LogLoss-ll) > 1e-15 {
		t.Errorf("log-loss %v, want %v", res.LogLoss, ll)
	}
	if _, err := m.Evaluate(a, []float64{10, 20, 40}); err == nil {
		t.Error("a label outside the model's was accepted")
	}
}
