package solver_test

import (
	"math"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

// TestScheduleFormulas checks each policy against its formula (see
// solver.StepKind) at several t and delays.
func TestScheduleFormulas(t *testing.T) {
	L, tau, sigma, R, b, mu := 2.0, 3, 1.5, 10.0, 16, 0.01
	conv := solver.ConvexSchedule(L, tau, sigma, R, b)
	strong := solver.StrongSchedule(L, tau, mu)
	if got := strong.Alpha(0, 0); math.Abs(got-1/(L*16)) > 1e-15 {
		t.Errorf("strong alpha(0)=%g, want 1/(L (tau+1)^2)=%g", got, 1/(L*16))
	}
	for _, tt := range []int64{0, 1, 10, 12345} {
		ft := float64(tt)
		cases := []struct {
			s    solver.Schedule
			want float64
		}{
			{solver.Schedule{Kind: solver.StepConst, Alpha0: 0.3}, 0.3},
			{solver.Schedule{Kind: solver.StepInvSqrt, Alpha0: 0.3}, 0.3 / math.Sqrt(ft+1)},
			{conv, 1 / (L*16 + sigma/(R*4)*math.Sqrt(ft+1))},
			{strong, 1 / (mu * (ft + L*16/mu))},
		}
		for _, c := range cases {
			if err := c.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := c.s.Alpha(tt, 0); math.Abs(got-c.want) > 1e-15*c.want {
				t.Errorf("%s alpha(%d)=%g, want %g", c.s.Kind, tt, got, c.want)
			}
			adaptive := c.s
			adaptive.Tau0 = 4
			if got := adaptive.Alpha(tt, 6); math.Abs(got-c.want/2.5) > 1e-15*c.want {
				t.Errorf("%s delay-adaptive alpha(%d, delay 6)=%g, want %g", c.s.Kind, tt, got, c.want/2.5)
			}
		}
	}
	for _, bad := range []solver.Schedule{
		{Kind: solver.StepConst},
		{Kind: solver.StepConvex, L: 0},
		{Kind: solver.StepStrong, Mu: 1},
		{Kind: solver.StepConst, Alpha0: 1, Tau: -1},
		{Kind: 9, Alpha0: 1},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate accepted %+v", bad)
		}
	}
}

// TestAverager compares every average with its definition (see
// solver.AvgKind) computed directly from the stored iterates.
func TestAverager(t *testing.T) {
	const T = 70
	xs := make([][]float64, T+1) // xs[k] is iterate k, k = 1..T
	for k := 1; k <= T; k++ {
		xs[k] = []float64{float64(k), math.Sin(float64(k)), 1 / float64(k)}
	}
	mean := func(from, to int, w func(k int) float64) []float64 {
		out := make([]float64, 3)
		var ws float64
		for k := from; k <= to; k++ {
			ws += w(k)
			for i := range out {
				out[i] += w(k) * xs[k][i]
			}
		}
		for i := range out {
			out[i] /= ws
		}
		return out
	}
	one := func(int) float64 { return 1 }
	cases := []struct {
		a    solver.Averager
		want func(n int) []float64
	}{
		{solver.Averager{Kind: solver.AvgLast}, func(n int) []float64 { return xs[n] }},
		{solver.Averager{Kind: solver.AvgUniform}, func(n int) []float64 { return mean(1, n, one) }},
		{solver.Averager{Kind: solver.AvgWeighted, T0: 5.5}, func(n int) []float64 {
			return mean(1, n, func(k int) float64 { return float64(k) + 5.5 })
		}},
		{solver.Averager{Kind: solver.AvgTail}, func(n int) []float64 {
			p := 1
			for p*2 <= n {
				p *= 2
			}
			return mean(max(p/2, 1), n, one) // [2^(j-1), n] with 2^j <= n < 2^(j+1)
		}},
		{solver.Averager{Kind: solver.AvgTail, Horizon: 50}, func(n int) []float64 {
			if n <= 25 {
				return xs[n]
			}
			return mean(26, n, one)
		}},
	}
	for _, c := range cases {
		a := c.a
		got := make([]float64, 3)
		for n := 1; n <= T; n++ {
			a.Add(xs[n])
			a.Value(xs[n], got)
			if e := maxAbsDiff(got, c.want(n)); e > 1e-12 {
				t.Fatalf("%s (horizon %d) after %d iterates: %v, want %v", c.a.Kind, c.a.Horizon, n, got, c.want(n))
			}
		}
		if c.a.Kind == solver.AvgTail && c.a.Horizon == 0 {
			// The tail covers between the last half and the last 3/4.
			if a.CurN+a.PrevN < T/2 || a.CurN+a.PrevN > 3*T/4+1 {
				t.Errorf("tail covers %d of %d iterates", a.CurN+a.PrevN, T)
			}
		}
		a.Reset()
		a.Value(xs[3], got)
		if maxAbsDiff(got, xs[3]) != 0 {
			t.Errorf("%s: after Reset the output is not the current iterate", c.a.Kind)
		}
	}
}

// TestBuildSchedule: the one builder gives each policy of the first and
// second theorems its figures (R defaults to sqrt(d), mu to the
// regularizer's), carries the tail average's horizon and refuses what a
// policy cannot be built from.
func TestBuildSchedule(t *testing.T) {
	l2 := solver.Reg{Kind: solver.RegL2, Lambda: 0.5}
	f := solver.ScheduleFacts{L: 2, Sigma: 3, Tau: 4, Batch: 9, D: 16, Reg: l2}
	for _, c := range []struct {
		name  string
		spec  solver.ScheduleSpec
		want  solver.Schedule
		avg   solver.Averager
		fails bool
	}{
		{"const", solver.ScheduleSpec{Kind: solver.StepConst, Alpha0: 0.1}, solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}, solver.Averager{Kind: solver.AvgUniform}, false},
		{"convex R=sqrt(d)", solver.ScheduleSpec{Kind: solver.StepConvex, Average: "auto"}, solver.ConvexSchedule(2, 4, 3, 4, 9), solver.Averager{Kind: solver.AvgUniform}, false},
		{"strong mu of l2", solver.ScheduleSpec{Kind: solver.StepStrong, Tau0: 2}, func() solver.Schedule { s := solver.StrongSchedule(2, 4, 0.5); s.Tau0 = 2; return s }(),
			solver.Averager{Kind: solver.AvgWeighted, T0: solver.StrongSchedule(2, 4, 0.5).T0}, false},
		{"tail horizon", solver.ScheduleSpec{Kind: solver.StepConvex, R: 2, Average: "tail", Horizon: 500}, solver.ConvexSchedule(2, 4, 3, 2, 9), solver.Averager{Kind: solver.AvgTail, Horizon: 500}, false},
		{"strong without mu", solver.ScheduleSpec{Kind: solver.StepStrong}, solver.Schedule{}, solver.Averager{}, true},
		{"const without alpha0", solver.ScheduleSpec{Kind: solver.StepConst}, solver.Schedule{}, solver.Averager{}, true},
		{"bad average", solver.ScheduleSpec{Kind: solver.StepConst, Alpha0: 1, Average: "median"}, solver.Schedule{}, solver.Averager{}, true},
	} {
		ff := f
		if c.name == "strong without mu" {
			ff.Reg = solver.Reg{Kind: solver.RegL1, Lambda: 0.1}
		}
		s, avg, err := solver.BuildSchedule(c.spec, ff)
		if c.fails {
			if err == nil {
				t.Errorf("%s: built %+v, want an error", c.name, s)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if s != c.want || avg.Kind != c.avg.Kind || avg.T0 != c.avg.T0 || avg.Horizon != c.avg.Horizon {
			t.Errorf("%s: got %+v %+v, want %+v %+v", c.name, s, avg, c.want, c.avg)
		}
	}
}
