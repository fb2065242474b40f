package algo

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// TestMasterReweight: a worker that sends a quarter as many gradients as
// the others gets its gradients scaled up, so that every shard weighs its
// share of the data in the expected step (MasterConfig.Shares).
func TestMasterReweight(t *testing.T) {
	const P, d = 4, 3
	m, err := NewMaster(MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegNone},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 1}, Shares: []float64{0, 0.25, 0.25, 0.25, 0.25}, Update: UpdateEager})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	ver := make([]int64, P+1)
	// Worker 1 sends one gradient for every four of the others. Each
	// gradient is e_1, so x_0 moves by -w per step: the total weight that
	// each worker's gradients received is the sum of its steps.
	moved := make([]float64, P+1)
	for round := 0; round < 400; round++ {
		for w := 1; w <= P; w++ {
			if w == 1 && round%4 != 0 {
				continue
			}
			before := m.x[0]
			rd, err := m.Step(Event{Kind: EventGrad, Grad: &Grad{Worker: w, TRead: ver[w], Rows: 1, Dense: []float64{1, 0, 0}}})
			if err != nil {
				t.Fatal(err)
			}
			moved[w] += before - m.x[0]
			for _, r := range rd.Replies {
				ver[r.Worker] = r.T
			}
		}
	}
	var total float64
	for w := 1; w <= P; w++ {
		total += moved[w]
	}
	for w := 1; w <= P; w++ {
		if share := moved[w] / total; math.Abs(share-0.25) > 0.02 {
			t.Errorf("worker %d carries %.3f of the total step, want its data share 0.25", w, share)
		}
	}
	// Without shares the slow worker would carry 1/13 of it.
}
