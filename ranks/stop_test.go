package ranks

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/solver"
)

// TestGuard: the first finite loss sets the limit; NaN, Inf and losses
// over explodeFactor times the first (at least 1) are bad, and divergence
// once the latest loss of every worker is bad.
func TestGuard(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	type loss struct {
		w int
		l float64
	}
	cases := []struct {
		name    string
		workers int
		losses  []loss
		bad     int // index of the loss that trips the guard, -1: none
	}{
		{"converging", 1, []loss{{1, 0.69}, {1, 0.5}, {1, 0.3}, {1, 0.31}}, -1},
		{"noisy but bounded", 1, []loss{{1, 0.69}, {1, 50}, {1, 1e5}, {1, 0.1}}, -1},
		{"NaN", 1, []loss{{1, 0.69}, {1, 0.5}, {1, nan}}, 2},
		{"Inf", 1, []loss{{1, 54}, {1, inf}}, 1},
		{"exploding", 1, []loss{{1, 54}, {1, 1e3}, {1, 1e6}, {1, 5.5e7}}, 3},
		{"small first loss: the limit is at least 1e6", 1, []loss{{1, 1e-9}, {1, 9e5}}, -1},
		{"NaN first", 1, []loss{{1, nan}}, 0},
		{"one faulty worker of three", 3, []loss{{1, 0.69}, {2, nan}, {1, 0.6}, {2, nan}, {3, 0.6}, {2, nan}, {1, 0.5}}, -1},
		{"every worker", 3, []loss{{1, 0.69}, {2, nan}, {1, 1e9}, {2, nan}, {3, 0.6}, {3, inf}}, 5},
		{"a worker recovers", 2, []loss{{1, 0.69}, {1, nan}, {1, 0.5}, {2, nan}, {1, 0.4}}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var g guard
			got := -1
			for i, l := range c.losses {
				if g.badLoss(l.l, l.w, c.workers) {
					got = i
					if w := g.what(l.l); !strings.Contains(w, "mini-batch loss") {
						t.Errorf("what: %q", w)
					}
					break
				}
			}
			if got != c.bad {
				t.Errorf("tripped at %d, want %d", got, c.bad)
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

// TestCapReached: a cap with a minimum time binds only once both the epochs
// and the time are reached, and is left out of the master's sample limit;
// without the minimum time the cap is the sample limit, as before.
func TestCapReached(t *testing.T) {
	const n = 100
	cfg := &Config{MaxEpochs: 10, MaxEpochsMinTime: time.Minute}
	if got := sampleLimit(cfg, n); got != 0 {
		t.Errorf("sampleLimit %d, want 0 (the driver applies the cap)", got)
	}
	for _, c := range []struct {
		samples int64
		trained time.Duration
		want    bool
	}{{999, 2 * time.Minute, false}, {1000, 59 * time.Second, false}, {1000, time.Minute, true}, {5000, time.Hour, true}} {
		if got := capReached(cfg, n, c.samples, c.trained); got != c.want {
			t.Errorf("capReached(%d rows, %v) = %v, want %v", c.samples, c.trained, got, c.want)
		}
	}
	plain := &Config{MaxEpochs: 10}
	if sampleLimit(plain, n) != 1000 || capReached(plain, n, 5000, time.Hour) {
		t.Errorf("a cap without a minimum time is the sample limit (1000 rows), not the driver's")
	}
}
