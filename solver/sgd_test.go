package solver_test

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

func findRef(t *testing.T, dataset, problem string, lambda float64) refRow {
	for _, r := range readRefRows(t) {
		if r.Dataset == dataset && r.Problem == problem && r.Lambda == lambda {
			return r
		}
	}
	t.Fatalf("no reference row %s %s %g", dataset, problem, lambda)
	return refRow{}
}

// sgdTo runs SGD for at most 20 epochs and returns the first epoch at which
// phi(output) <= phi* (1 + 1e-2), or 0 if none.
func sgdTo(t *testing.T, p *solver.Problem, cfg solver.SGDConfig, phiStar float64) (int, float64) {
	s, err := solver.NewSGD(p, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, d := p.Dims()
	out := make([]float64, d)
	var phi float64
	for e := 1; e <= 20; e++ {
		s.Run(float64(e), 0, nil)
		s.Output(out)
		phi = p.Objective(out)
		if phi <= phiStar*(1+1e-2) {
			return e, phi
		}
	}
	return 0, phi
}

// TestSGDConvexScheduleA9a: the general convex schedule (first theorem)
// with the uniform average reaches phi* (1 + 1e-2) on a9a l1-logistic
// lambda 1e-4 within 20 epochs. L and sigma are estimated from the data,
// R = sqrt(d) (the CLI default).
func TestSGDConvexScheduleA9a(t *testing.T) {
	r := findRef(t, "a9a", "l1-logistic", 1e-4)
	p := problemOf(t, r)
	_, d := p.Dims()
	b := 8
	L := p.EstimateL(100, 1)
	sigma := p.EstimateSigma(make([]float64, d), b, 32, 1)
	sch := solver.ConvexSchedule(L, 0, sigma, math.Sqrt(float64(d)), b)
	epoch, phi := sgdTo(t, p, solver.SGDConfig{Batch: b, Schedule: sch, Average: sch.DefaultAverage(), Seed: 7}, r.Objective)
	t.Logf("L=%.4g sigma=%.4g beta=%.4g: phi=%.10g phi*=%.10g at epoch %d", L, sigma, sch.Beta, phi, r.Objective, epoch)
	if epoch == 0 {
		t.Fatalf("phi=%.10g after 20 epochs, want <= %.10g", phi, r.Objective*(1+1e-2))
	}
}

// TestSGDStrongScheduleA9a: the strongly convex schedule (second theorem),
// alpha(t) = 1/(mu (t + t0)) with the (t+t0)-weighted average, reaches
// phi* (1 + 1e-2) on a9a l2-logistic lambda 1e-4 within 20 epochs.
func TestSGDStrongScheduleA9a(t *testing.T) {
	r := findRef(t, "a9a", "l2-logistic", 1e-4)
	p := problemOf(t, r)
	b := 8
	L := p.EstimateL(100, 1)
	sch := solver.StrongSchedule(L, 0, p.Reg.Mu())
	epoch, phi := sgdTo(t, p, solver.SGDConfig{Batch: b, Schedule: sch, Average: sch.DefaultAverage(), Seed: 7}, r.Objective)
	t.Logf("L=%.4g mu=%.4g t0=%.4g: phi=%.10g phi*=%.10g at epoch %d", L, sch.Mu, sch.T0, phi, r.Objective, epoch)
	if epoch == 0 {
		t.Fatalf("phi=%.10g after 20 epochs, want <= %.10g", phi, r.Objective*(1+1e-2))
	}
}

// TestSGDDeterministicAndResumable: a seed fixes the run bit for bit, and a
// run stopped mid-epoch, checkpointed through the file format and resumed
// ends exactly where the uninterrupted run ends, for every average.
func TestSGDDeterministicAndResumable(t *testing.T) {
	r := findRef(t, "heart_scale", "l1-logistic", 0.01)
	p := problemOf(t, r)
	_, d := p.Dims()
	sch := solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.5}
	for _, avg := range []solver.AvgKind{solver.AvgLast, solver.AvgUniform, solver.AvgWeighted, solver.AvgTail} {
		cfg := solver.SGDConfig{Batch: 7, Schedule: sch, Average: solver.Averager{Kind: avg, T0: 3}, Seed: 42}
		full, _ := solver.NewSGD(p, cfg, nil)
		full.Run(3, 0, nil)
		want := make([]float64, d)
		full.Output(want)

		again, _ := solver.NewSGD(p, cfg, nil)
		again.Run(3, 0, nil)
		got := make([]float64, d)
		again.Output(got)
		if e := maxAbsDiff(got, want); e != 0 || again.T != full.T {
			t.Fatalf("%s: same seed, different run (diff %g)", avg, e)
		}

		half, _ := solver.NewSGD(p, cfg, nil)
		half.Run(1.37, 0, nil) // stops mid-epoch
		path := t.TempDir() + "/ck"
		if err := solver.WriteCheckpoint(path, half.Checkpoint("heart")); err != nil {
			t.Fatal(err)
		}
		ck, err := solver.ReadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := solver.RestoreSGD(p, ck, "other"); err == nil {
			t.Fatal("restore accepted a checkpoint with another tag")
		}
		resumed, err := solver.RestoreSGD(p, ck, "heart")
		if err != nil {
			t.Fatal(err)
		}
		resumed.Run(3, 0, nil)
		resumed.Output(got)
		if e := maxAbsDiff(got, want); e != 0 || resumed.T != full.T {
			t.Fatalf("%s: resumed run differs by %g (T %d vs %d)", avg, e, resumed.T, full.T)
		}

		other, _ := solver.NewSGD(p, solver.SGDConfig{Batch: 7, Schedule: sch, Average: cfg.Average, Seed: 43}, nil)
		other.Run(3, 0, nil)
		other.Output(got)
		if maxAbsDiff(got, want) == 0 {
			t.Fatalf("%s: another seed gives the same run", avg)
		}
	}
}

// TestSGDEpochSampling: one epoch visits every row exactly once, the last
// batch holding the n mod b rows left.
func TestSGDEpochSampling(t *testing.T) {
	r := findRef(t, "heart_scale", "l1-logistic", 0.01)
	p := problemOf(t, r)
	n, _ := p.Dims()
	s, err := solver.NewSGD(p, solver.SGDConfig{Batch: 50, Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Run(1, 0, nil)
	if s.Samples != int64(n) || s.T != int64((n+49)/50) {
		t.Fatalf("one epoch: %d samples in %d updates, want %d in %d", s.Samples, s.T, n, (n+49)/50)
	}
}
