package algo

import (
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

func leaveMaster(t *testing.T, workers int, mod func(*MasterConfig)) *Master {
	t.Helper()
	cfg := MasterConfig{Workers: workers, X0: make([]float64, 2), Reg: solver.Reg{Kind: solver.RegNone},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.5}}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewMaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func workersOf(rd Ready) []int {
	var ws []int
	for _, r := range rd.Replies {
		ws = append(ws, r.Worker)
	}
	return ws
}

// TestMasterLeave: a worker's departure releases what it held in each
// mode, and its late gradients are ignored.
func TestMasterLeave(t *testing.T) {
	g := func(w int, v0, v1 float64, tread int64) *Grad {
		return &Grad{Worker: w, Rows: 1, TRead: tread, Dense: []float64{v0, v1}}
	}
	step := func(t *testing.T, m *Master, gr *Grad) Ready {
		t.Helper()
		rd, err := m.Step(Event{Kind: EventGrad, Grad: gr})
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	leave := func(t *testing.T, m *Master, w int) Ready {
		t.Helper()
		rd, err := m.Step(Event{Kind: EventLeave, Worker: w})
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	t.Run("async", func(t *testing.T) {
		m := leaveMaster(t, 3, nil)
		m.Start()
		if rd := leave(t, m, 2); len(rd.Replies) != 0 || m.Active() != 2 || !m.Gone(2) {
			t.Fatalf("replies %v, active %d", workersOf(rd), m.Active())
		}
		if rd := step(t, m, g(2, 1, 1, 0)); len(rd.Replies) != 0 || m.T() != 0 {
			t.Fatalf("a gradient from the worker that left was applied (t=%d, replies %v)", m.T(), workersOf(rd))
		}
		if rd := step(t, m, g(1, 1, 1, 0)); m.T() != 1 || len(rd.Replies) != 1 {
			t.Fatalf("t=%d, replies %v", m.T(), workersOf(rd))
		}
		if rd, _ := m.Step(Event{Kind: EventStop, Reason: StopInterrupted}); len(rd.Replies) != 2 {
			t.Fatalf("stop to %v, want the two that remain", workersOf(rd))
		}
	})
	t.Run("sync round completes with the rest", func(t *testing.T) {
		m := leaveMaster(t, 3, func(c *MasterConfig) { c.Mode = ModeSync })
		m.Start()
		step(t, m, g(1, 2, 0, 0))
		step(t, m, g(3, 4, 2, 0))
		rd := leave(t, m, 2)
		x := make([]float64, 2)
		m.Iterate(x)
		if m.T() != 1 || x[0] != -1.5 || x[1] != -0.5 || len(rd.Replies) != 2 {
			t.Fatalf("t=%d x=%v replies %v; want the mean of the two gradients applied and replies to 1 and 3", m.T(), x, workersOf(rd))
		}
	})
	t.Run("sync-every barrier stops waiting", func(t *testing.T) {
		m := leaveMaster(t, 2, func(c *MasterConfig) { c.SyncEvery = 1 })
		m.Start()
		if rd := step(t, m, g(1, 1, 1, 0)); len(rd.Replies) != 0 {
			t.Fatalf("barrier released early: %v", workersOf(rd))
		}
		if rd := leave(t, m, 2); len(rd.Replies) != 1 || rd.Replies[0].Worker != 1 {
			t.Fatalf("after the leave: replies %v, want worker 1", workersOf(rd))
		}
	})
	t.Run("bounded releases its hold", func(t *testing.T) {
		m := leaveMaster(t, 2, func(c *MasterConfig) { c.Mode, c.MaxDelay = ModeBounded, 0 })
		rd := m.Start()
		if len(rd.Replies) != 1 {
			t.Fatalf("start: %v, want one worker (delay bound 0)", workersOf(rd))
		}
		first := rd.Replies[0].Worker
		if rd := leave(t, m, first); len(rd.Replies) != 1 || rd.Replies[0].Worker == first {
			t.Fatalf("after worker %d left: replies %v, want the other", first, workersOf(rd))
		}
	})
	t.Run("reweighting forgets the lost shard", func(t *testing.T) {
		m := leaveMaster(t, 2, func(c *MasterConfig) { c.Shares = []float64{0, 0.5, 0.5} })
		m.Start()
		leave(t, m, 2)
		if r := m.reweight(1); r != 1 {
			t.Fatalf("the only shard left is weighted %v, want 1", r)
		}
	})
	t.Run("an adopted shard moves its share", func(t *testing.T) {
		m := leaveMaster(t, 3, func(c *MasterConfig) { c.Shares = []float64{0, 0.25, 0.25, 0.5} })
		m.Start()
		leave(t, m, 3)
		if err := m.Adopt(1, 3); err != nil {
			t.Fatal(err)
		}
		// Worker 1 now holds 3/4 of the data, worker 2 1/4: with no
		// gradients counted yet, equal rates give factors 1.5 and 0.5.
		if r1, r2 := m.reweight(1), m.reweight(2); r1 != 1.5 || r2 != 0.5 {
			t.Fatalf("factors %v and %v, want 1.5 and 0.5", r1, r2)
		}
		if err := m.Adopt(2, 1); err == nil {
			t.Fatal("a worker still in the run had its shard adopted")
		}
	})
}
