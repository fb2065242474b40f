package ranks

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// TestGuard: the first finite loss sets the limit; NaN, Inf and losses
// over explodeFactor times the first (at least 1) are divergence.
func TestGuard(t *testing.T) {
	cases := []struct {
		name   string
		losses []float64
		bad    int // index of the first bad loss, -1: none
	}{
		{"converging", []float64{0.69, 0.5, 0.3, 0.31, 0.2}, -1},
		{"noisy but bounded", []float64{0.69, 50, 1e5, 0.1}, -1},
		{"NaN", []float64{0.69, 0.5, math.NaN()}, 2},
		{"Inf", []float64{54, math.Inf(1)}, 1},
		{"exploding", []float64{54, 1e3, 1e6, 5.5e7}, 3},
		{"small first loss: the limit is at least 1e6", []float64{1e-9, 9e5}, -1},
		{"NaN first", []float64{math.NaN()}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var g guard
			got := -1
			for i, l := range c.losses {
				if g.badLoss(l) {
					got = i
					if w := g.what(l); !strings.Contains(w, "mini-batch loss") {
						t.Errorf("what: %q", w)
					}
					break
				}
			}
			if got != c.bad {
				t.Errorf("first bad loss at %d, want %d", got, c.bad)
			}
		})
	}
	if badIterate([]float64{1, 2}) != "" || !strings.Contains(badIterate([]float64{1, math.Inf(-1)}), "coordinate 1") {
		t.Error("badIterate")
	}
}

// TestDivergenceAdvice: the message names the step and what to try.
func TestDivergenceAdvice(t *testing.T) {
	dv := &Divergence{T: 7, Epochs: 0.1, What: "a mini-batch loss is NaN"}
	dv.explain(solver.Schedule{Kind: solver.StepConst, Alpha0: 100}, 2)
	msg := dv.err().Error()
	for _, want := range []string{"diverged at update 7", "alpha = 100", "smaller --alpha0", "1/L = 0.5", "No model was written"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
}

// TestTolCheck: the change is measured between evaluations at least an
// epoch apart, per epoch.
func TestTolCheck(t *testing.T) {
	c := newTolCheck(1e-3, 100)
	steps := []struct {
		phi     float64
		samples int64
		fire    bool
	}{
		{1.0, 0, false},     // the reference
		{0.5, 50, false},    // less than an epoch later: not compared
		{0.9, 100, false},   // change 0.1/0.9 per epoch
		{0.899, 150, false}, // too soon
		{0.8995, 300, true}, // |0.9-0.8995|/0.8995/2 epochs = 2.8e-4
	}
	for i, s := range steps {
		if got := c.observe(s.phi, s.samples); got != s.fire {
			t.Errorf("step %d: fired %v, want %v (last change %g)", i, got, s.fire, c.last)
		}
	}
	if want := 0.0005 / 0.8995 / 2; math.Abs(c.last-want) > 1e-15 {
		t.Errorf("last change %g, want %g", c.last, want)
	}
	if newTolCheck(0, 100) != nil {
		t.Error("tol 0 makes a check")
	}
}

// TestSampleLimit: the smaller of --epochs and --max-epochs.
func TestSampleLimit(t *testing.T) {
	for _, c := range []struct {
		epochs, max float64
		want        int64
		reason      string
	}{
		{0, 0, 0, "epochs"}, {2, 0, 200, "epochs"}, {0, 3, 300, "max-epochs"}, {2, 3, 200, "epochs"}, {5, 0.5, 50, "max-epochs"},
	} {
		cfg := &Config{Epochs: c.epochs, MaxEpochs: c.max}
		if got := sampleLimit(cfg, 100); got != c.want || epochsReason(cfg) != c.reason {
			t.Errorf("epochs %g max %g: limit %d (%s), want %d (%s)", c.epochs, c.max, got, epochsReason(cfg), c.want, c.reason)
		}
	}
}

// TestSummaryJSONNonFinite: a non-finite phi in the polish or model record
// is written as null (JSON has no NaN or Inf, and encoding would fail).
func TestSummaryJSONNonFinite(t *testing.T) {
	s := &Summary{Polish: &PolishInfo{Iters: 3, PhiBefore: math.Inf(1), PhiAfter: 0.5, Kept: true}, Model: &ModelInfo{Phi: math.NaN(), NNZ: 4}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"phi_before":null`, `"phi_after":0.5`, `"kept":true`, `"model":{"phi":null,"rel_subopt":null,"nnz":4}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
