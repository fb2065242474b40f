package algo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

func cloneReady(rd Ready) Ready {
	out := Ready{Snapshot: rd.Snapshot, Stop: rd.Stop}
	for _, r := range rd.Replies {
		r.Dense, r.Idx, r.Val = slices.Clone(r.Dense), slices.Clone(r.Idx), slices.Clone(r.Val)
		out.Replies = append(out.Replies, r)
	}
	return out
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for j := range a {
		if math.Float64bits(a[j]) != math.Float64bits(b[j]) {
			return false
		}
	}
	return true
}

func sameReady(a, b Ready) error {
	if a.Snapshot != b.Snapshot || a.Stop != b.Stop || len(a.Replies) != len(b.Replies) {
		return fmt.Errorf("snapshot %v/%v, stop %v/%v, %d/%d replies", a.Snapshot, b.Snapshot, a.Stop, b.Stop, len(a.Replies), len(b.Replies))
	}
	for k, r := range a.Replies {
		s := b.Replies[k]
		if r.Worker != s.Worker || r.Kind != s.Kind || r.T != s.T || r.Base != s.Base || !slices.Equal(r.Idx, s.Idx) || !sameBits(r.Dense, s.Dense) || !sameBits(r.Val, s.Val) {
			return fmt.Errorf("reply %d: %+v, restored %+v", k, r, s)
		}
	}
	return nil
}

// TestMasterStateRestore: run k steps of a master and real workers over
// the random network, write the master's State through solver's
// checkpoint encoding, Restore it into a fresh master, and give both the
// same events from there on (the uninterrupted run's): every Ready and
// the final iterate and output are bit-identical — lazy and eager, in
// each mode, with a barrier, pipelining, sharded reweighting, a worker
// leaving after the checkpoint, a time limit and --tol.
func TestMasterStateRestore(t *testing.T) {
	const P, d, iters = 4, 40, 400
	for _, c := range []struct {
		name string
		mod  func(*MasterConfig)
	}{
		{"async", nil},
		{"sync", func(c *MasterConfig) { c.Mode = ModeSync }},
		{"bounded-pipeline", func(c *MasterConfig) { c.Mode, c.MaxDelay, c.Pipeline = ModeBounded, 2, true }},
		{"barrier", func(c *MasterConfig) { c.SyncEvery = 7 }},
		{"shares", func(c *MasterConfig) { c.Shares = []float64{0, 0.1, 0.2, 0.3, 0.4} }},
		{"delta none", func(c *MasterConfig) { c.Reg = solver.Reg{Kind: solver.RegNone} }},
		{"time and tol", func(c *MasterConfig) { c.TimeNs, c.Tol, c.Rows = 1e6, 1e-9, 20 }},
		{"svrg", func(c *MasterConfig) { c.VR = testVR(P, d, false) }},
		{"svrg-sparse-bounded", func(c *MasterConfig) { c.VR, c.Mode, c.MaxDelay = testVR(P, d, true), ModeBounded, 3 }},
	} {
		for _, update := range []Update{UpdateLazy, UpdateEager} {
			for _, avg := range []solver.AvgKind{solver.AvgUniform, solver.AvgTail} {
				t.Run(fmt.Sprintf("%s/%v/%v", c.name, update, avg), func(t *testing.T) {
					cfg := MasterConfig{Workers: P, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 0.02},
						Schedule: solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.1}, Average: solver.Averager{Kind: avg},
						Iters: iters, Update: update, LazyWindow: 16}
					if c.mod != nil {
						c.mod(&cfg)
					}
					r := newNetRun(t, cfg, 3)
					rng := rand.New(rand.NewPCG(3, 4))
					r.stopAt = 150
					r.run(t, rng, 0, 0)
					ck, err := r.m.State()
					if err != nil {
						t.Fatal(err)
					}
					b, err := ck.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					var back solver.Checkpoint
					if err := back.UnmarshalBinary(b); err != nil {
						t.Fatal(err)
					}
					m2, err := Restore(cfg, &back)
					if err != nil {
						t.Fatal(err)
					}
					type step struct {
						ev Event
						rd Ready
					}
					var log []step
					r.log = func(ev Event, rd Ready) { log = append(log, step{ev, cloneReady(rd)}) }
					r.stopAt = 0
					r.run(t, rng, 2, 200)
					if len(log) < 100 {
						t.Fatalf("only %d events after the checkpoint", len(log))
					}
					for k, s := range log {
						rd, err := m2.Step(s.ev)
						if err != nil {
							t.Fatal(err)
						}
						if err := sameReady(s.rd, rd); err != nil {
							t.Fatalf("event %d after the restore (%v): %v", k, s.ev.Kind, err)
						}
					}
					x1, x2 := make([]float64, d), make([]float64, d)
					for _, get := range []func(*Master, []float64){(*Master).Iterate, (*Master).Output} {
						get(r.m, x1)
						get(m2, x2)
						if !sameBits(x1, x2) {
							t.Fatalf("restored run ends at %v, uninterrupted %v", x2, x1)
						}
					}
					a1, j1 := r.m.VRSnapshots()
					a2, j2 := m2.VRSnapshots()
					if a1 != a2 || j1 != j2 || r.m.VRAlpha() != m2.VRAlpha() || (cfg.VR != nil && a1 < 5) {
						t.Fatalf("svrg: %d/%d snapshots, %d/%d rejected, step %v/%v (want at least 5 snapshots)", a1, a2, j1, j2, r.m.VRAlpha(), m2.VRAlpha())
					}
					if r.m.T() != m2.T() || r.m.StopReason() != m2.StopReason() || r.m.SamplesDone() != m2.SamplesDone() {
						t.Fatalf("t %d/%d, stop %v/%v", r.m.T(), m2.T(), r.m.StopReason(), m2.StopReason())
					}
				})
			}
		}
	}
}

// testVR is an adaptive svrg configuration with a refresh every 30
// updates (the snapshot of x0 first), dense or sparse.
func testVR(P, d int, sparse bool) *VRConfig {
	vc := &VRConfig{Alpha: 0.05, Every: 30, Adapt: true, Sparse: sparse, FullShare: make([]float64, P+1)}
	for w := 1; w <= P; w++ {
		vc.FullShare[w] = 1 / float64(P)
	}
	if sparse {
		vc.Weights = make([]float64, d)
		for j := range vc.Weights {
			vc.Weights[j] = 1
		}
	}
	return vc
}

// TestRestoreRefuses: a checkpoint without master state, or one for
// another configuration, or a corrupt one, is an error, not a panic.
func TestRestoreRefuses(t *testing.T) {
	cfg := MasterConfig{Workers: 2, X0: make([]float64, 3), Reg: solver.Reg{Kind: solver.RegNone},
		Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}}
	m, err := NewMaster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	ck, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(cfg, m.Export()); err == nil {
		t.Error("a checkpoint without master state was restored")
	}
	other := cfg
	other.Workers = 3
	if _, err := Restore(other, ck); err == nil {
		t.Error("a state of 2 workers was restored into 3")
	}
	for cut := 0; cut < len(ck.Ext); cut++ {
		bad := *ck
		bad.Ext = ck.Ext[:cut]
		if _, err := Restore(cfg, &bad); err == nil {
			t.Fatalf("a state cut at %d of %d bytes was restored", cut, len(ck.Ext))
		}
	}
	if _, err := Restore(cfg, ck); err != nil {
		t.Fatal(err)
	}
}
