package algo

import (
	"math"
	"testing"
)

// TestTolCheck: the change is measured between evaluations at least an
// epoch apart, per epoch.
func TestTolCheck(t *testing.T) {
	c := NewTolCheck(1e-3, 100)
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
		if got := c.Observe(s.phi, s.samples); got != s.fire {
			t.Errorf("step %d: fired %v, want %v (last change %g)", i, got, s.fire, c.Last)
		}
	}
	if want := 0.0005 / 0.8995 / 2; math.Abs(c.Last-want) > 1e-15 {
		t.Errorf("last change %g, want %g", c.Last, want)
	}
	if NewTolCheck(0, 100) != nil {
		t.Error("tol 0 makes a check")
	}
}

// stopMaster is a 2-worker async master on d = 2 with the stopping rules
// of mod.
func stopMaster(t *testing.T, mod func(*MasterConfig)) *Master {
	t.Helper()
	return leaveMaster(t, 2, mod)
}

// TestMasterStopRules: each rule stops the run inside the master, through
// the event that makes it true (a gradient, a tick of the training time,
// an evaluation, the driver's stop), with its reason, a snapshot and a
// stop reply to every worker still in the run; later events produce
// nothing.
func TestMasterStopRules(t *testing.T) {
	grad := func(w int, tread, now int64) Event {
		return Event{Kind: EventGrad, Now: now, Grad: &Grad{Worker: w, Rows: 10, TRead: tread, Dense: []float64{1, 1}}}
	}
	for _, c := range []struct {
		name   string
		mod    func(*MasterConfig)
		events []Event // the last one stops the run, none before it
		want   StopReason
	}{
		{"iters", func(c *MasterConfig) { c.Iters = 2 }, []Event{grad(1, 0, 0), grad(2, 0, 0)}, StopIters},
		{"epochs", func(c *MasterConfig) { c.Samples = 20 }, []Event{grad(1, 0, 0), grad(2, 0, 0)}, StopEpochs},
		{"max-epochs budget", func(c *MasterConfig) { c.Samples, c.SamplesStop = 10, StopMaxEpochs }, []Event{grad(1, 0, 0)}, StopMaxEpochs},
		{"time by tick", func(c *MasterConfig) { c.TimeNs = 100 }, []Event{grad(1, 0, 50), {Kind: EventTick, Now: 99}, {Kind: EventTick, Now: 100}}, StopTime},
		{"time by gradient", func(c *MasterConfig) { c.TimeNs = 100 }, []Event{grad(1, 0, 50), grad(2, 0, 150)}, StopTime},
		{"cap after its minimum time", func(c *MasterConfig) { c.CapSamples, c.CapMinNs = 10, 1000 },
			[]Event{grad(1, 0, 10), grad(2, 0, 20), {Kind: EventTick, Now: 999}, {Kind: EventTick, Now: 1000}}, StopMaxEpochs},
		{"target", func(c *MasterConfig) { c.Target, c.TargetPhi = true, 0.5 },
			[]Event{{Kind: EventEval, Phi: 0.7, Samples: 10}, {Kind: EventEval, Phi: 0.5, Samples: 20}}, StopTarget},
		{"tol", func(c *MasterConfig) { c.Tol, c.Rows = 1e-3, 100 },
			[]Event{{Kind: EventEval, Phi: 1, Samples: 0}, {Kind: EventEval, Phi: 0.9, Samples: 100}, {Kind: EventEval, Phi: 0.8999, Samples: 200}}, StopTol},
		{"the driver's", nil, []Event{grad(1, 0, 0), {Kind: EventStop, Reason: StopInterrupted}}, StopInterrupted},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := stopMaster(t, c.mod)
			m.Start()
			for i, ev := range c.events {
				rd, err := m.Step(ev)
				if err != nil {
					t.Fatal(err)
				}
				if i < len(c.events)-1 {
					if rd.Stop != StopNone || m.Done() {
						t.Fatalf("event %d stopped the run early (%v)", i, rd.Stop)
					}
					continue
				}
				if rd.Stop != c.want || m.StopReason() != c.want || !m.Done() || !rd.Snapshot {
					t.Fatalf("stop %v (master %v, snapshot %v), want %v", rd.Stop, m.StopReason(), rd.Snapshot, c.want)
				}
				stops := 0
				for _, r := range rd.Replies {
					if r.Kind == ReplyStop {
						stops++
					}
				}
				if stops != 2 {
					t.Fatalf("%d stop replies, want one to each of the 2 workers", stops)
				}
			}
			tBefore := m.T()
			for _, ev := range []Event{grad(1, m.T(), 1e9), {Kind: EventTick, Now: 2e9}, {Kind: EventStop, Reason: StopTime}} {
				rd, err := m.Step(ev)
				if err != nil || len(rd.Replies) != 0 || rd.Stop != StopNone {
					t.Fatalf("after the stop: %+v, %v", rd, err)
				}
			}
			if m.T() != tBefore || m.StopReason() != c.want {
				t.Fatalf("after the stop: t %d -> %d, reason %v", tBefore, m.T(), m.StopReason())
			}
		})
	}
	m := stopMaster(t, nil)
	m.Start()
	for _, ev := range []Event{{Kind: 0}, {Kind: EventStop}, {Kind: EventGrad}, {Kind: EventLeave, Worker: 3}} {
		if _, err := m.Step(ev); err == nil {
			t.Errorf("event %+v: no error", ev)
		}
	}
}
