package solver

import (
	"fmt"
	"math"
)

// StepKind names a step-size policy.
type StepKind uint8

// The step-size policies. t = 0, 1, 2, ... counts the updates applied so
// far, tau is the bound on the delay (Schedule.Tau; the number of workers
// by default, 0 for serial SGD):
//
//	StepConst:   alpha(t) = alpha0
//	StepInvSqrt: alpha(t) = alpha0 / sqrt(t + 1)
//	StepConvex:  alpha(t) = 1 / (L (tau+1)^2 + beta sqrt(t + 1)),
//	             beta = sigma / (R sqrt(b))      (general convex, uniform average)
//	StepStrong:  alpha(t) = 1 / (mu (t + t0)),
//	             t0 = L (tau+1)^2 / mu, so alpha(0) = 1/(L (tau+1)^2)
//	                                            ((t+t0)-weighted average)
//
// StepConvex and StepStrong are our reconstruction, up to constants, of the
// step sizes of the two theorems of Feyzmahdavian, Aytekin and Johansson
// (IEEE TAC 2016) for the asynchronous mini-batch algorithm: L is the
// Lipschitz constant of grad f, sigma^2 the variance of one sample's gradient,
// R a bound on ||x0 - x*||, b the mini-batch size, mu the strong-convexity
// modulus of Psi.
//
// Any of them becomes delay-adaptive with Schedule.Tau0 > 0: the step of an
// update whose gradient is tau(t) versions old is alpha(t) / (1 + tau(t)/Tau0).
const (
	StepConst StepKind = iota
	StepInvSqrt
	StepConvex
	StepStrong
	numStepKinds
)

var stepNames = [numStepKinds]string{"const", "invsqrt", "convex", "strong"}

// StepNames lists the accepted policy names, in StepKind order.
func StepNames() []string { return stepNames[:] }

// ParseStepKind maps a name of StepNames to its StepKind.
func ParseStepKind(s string) (StepKind, error) {
	return parseName[StepKind](stepNames[:], "step-size policy", s)
}

func (k StepKind) String() string { return nameOf(stepNames[:], "StepKind", k) }

// Schedule is a step-size policy (see StepKind for the formulas). It is a
// small immutable value: Alpha is a pure function of its arguments, so the
// whole schedule state of a run is the Schedule plus the update counter t.
type Schedule struct {
	Kind   StepKind
	Alpha0 float64 // StepConst, StepInvSqrt
	L      float64 // StepConvex, StepStrong: Lipschitz constant of grad f
	Tau    int     // StepConvex, StepStrong: delay bound
	Beta   float64 // StepConvex: sigma / (R sqrt(b))
	Mu     float64 // StepStrong: strong-convexity modulus
	T0     float64 // StepStrong: offset t0
	Tau0   float64 // > 0: delay-adaptive scaling 1 / (1 + delay/Tau0)
}

// ConvexSchedule returns the general convex policy for Lipschitz constant L,
// delay bound tau, gradient noise sigma, distance bound R and batch size b:
// alpha(t) = 1 / (L (tau+1)^2 + beta sqrt(t+1)) with beta = sigma/(R sqrt(b)).
func ConvexSchedule(L float64, tau int, sigma, R float64, b int) Schedule {
	return Schedule{Kind: StepConvex, L: L, Tau: tau, Beta: sigma / (R * math.Sqrt(float64(b)))}
}

// StrongSchedule returns the strongly convex policy alpha(t) = 1/(mu (t+t0))
// with the smallest t0 that keeps alpha(0) <= 1/(L (tau+1)^2), namely
// t0 = L (tau+1)^2 / mu.
func StrongSchedule(L float64, tau int, mu float64) Schedule {
	q := float64(tau + 1)
	return Schedule{Kind: StepStrong, L: L, Tau: tau, Mu: mu, T0: L * q * q / mu}
}

// Validate reports the first parameter the policy needs that is missing or
// out of range.
func (s Schedule) Validate() error {
	pos := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("solver: %s step size needs a finite %s > 0, got %v", s.Kind, name, v)
		}
		return nil
	}
	if s.Tau < 0 {
		return fmt.Errorf("solver: delay bound tau must be >= 0, got %d", s.Tau)
	}
	if s.Tau0 < 0 || math.IsNaN(s.Tau0) {
		return fmt.Errorf("solver: delay scale tau0 must be >= 0, got %v", s.Tau0)
	}
	switch s.Kind {
	case StepConst, StepInvSqrt:
		return pos("alpha0", s.Alpha0)
	case StepConvex:
		if err := pos("L", s.L); err != nil {
			return err
		}
		if !(s.Beta >= 0) || math.IsInf(s.Beta, 0) {
			return fmt.Errorf("solver: convex step size needs a finite beta >= 0, got %v", s.Beta)
		}
		return nil
	case StepStrong:
		if err := pos("mu", s.Mu); err != nil {
			return err
		}
		if !(s.T0 >= 0) || math.IsInf(s.T0, 0) {
			return fmt.Errorf("solver: strong step size needs a finite t0 >= 0, got %v", s.T0)
		}
		if s.T0 == 0 {
			return fmt.Errorf("solver: strong step size needs t0 > 0 (alpha(0) would be infinite)")
		}
		return nil
	}
	return fmt.Errorf("solver: unknown step-size policy %d", uint8(s.Kind))
}

// Alpha returns the step size of update t (0-based) whose gradient was
// computed delay updates ago (0 for serial SGD). It panics on an unknown kind.
func (s Schedule) Alpha(t int64, delay int) float64 {
	var a float64
	switch s.Kind {
	case StepConst:
		a = s.Alpha0
	case StepInvSqrt:
		a = s.Alpha0 / math.Sqrt(float64(t)+1)
	case StepConvex:
		q := float64(s.Tau + 1)
		a = 1 / (s.L*q*q + s.Beta*math.Sqrt(float64(t)+1))
	case StepStrong:
		a = 1 / (s.Mu * (float64(t) + s.T0))
	default:
		panic("solver: Alpha of unknown step-size policy")
	}
	if s.Tau0 > 0 {
		a /= 1 + float64(delay)/s.Tau0
	}
	return a
}

// DefaultAverage is the average each policy's theorem is stated for:
// uniform for the general convex policy (and const/invsqrt), (t+t0)-weighted
// for the strongly convex one.
func (s Schedule) DefaultAverage() Averager {
	if s.Kind == StepStrong {
		return Averager{Kind: AvgWeighted, T0: s.T0}
	}
	return Averager{Kind: AvgUniform}
}

// ScheduleSpec is a step-size policy as the user gives it, before the
// figures it needs (L, sigma, the delay bound) are known.
type ScheduleSpec struct {
	Kind   StepKind
	Alpha0 float64 // StepConst, StepInvSqrt
	R      float64 // StepConvex: bound on ||x0 - x*||; 0: sqrt(d)
	Mu     float64 // StepStrong: strong convexity; 0: the regularizer's (Reg.Mu)
	Tau0   float64 // > 0: delay-adaptive steps
	// Average is the output's kind ("", "auto": DefaultAverage).
	Average string
	// Horizon, for the tail average, averages exactly the last half of a
	// run known to stop at Horizon updates (0: doubling blocks).
	Horizon int64
}

// ScheduleFacts are the figures a policy is built from: L, sigma (one
// sample's gradient noise), Tau (the delay bound), Batch (rows per update),
// D (dimension) and the regularizer Reg.
type ScheduleFacts struct {
	L, Sigma   float64
	Tau, Batch int
	D          int
	Reg        Reg
}

// BuildSchedule turns a spec into its Schedule (validated) and the output
// Averager: the one builder of the serial and the distributed runs.
func BuildSchedule(sp ScheduleSpec, f ScheduleFacts) (Schedule, Averager, error) {
	var s Schedule
	switch sp.Kind {
	case StepConst, StepInvSqrt:
		s = Schedule{Kind: sp.Kind, Alpha0: sp.Alpha0}
	case StepConvex:
		R := sp.R
		if R == 0 {
			R = math.Sqrt(float64(f.D))
		}
		if !(R > 0) {
			return s, Averager{}, fmt.Errorf("solver: the convex step size needs a distance bound R > 0, got %v", R)
		}
		s = ConvexSchedule(f.L, f.Tau, f.Sigma, R, f.Batch)
	case StepStrong:
		mu := sp.Mu
		if mu == 0 {
			mu = f.Reg.Mu()
		}
		if !(mu > 0) {
			return s, Averager{}, fmt.Errorf("solver: the strongly convex step size needs a strongly convex regularizer (l2, elastic) or mu > 0, got %v", f.Reg.Kind)
		}
		s = StrongSchedule(f.L, f.Tau, mu)
	default:
		return s, Averager{}, fmt.Errorf("solver: unknown step-size policy %v", sp.Kind)
	}
	s.Tau0 = sp.Tau0
	if err := s.Validate(); err != nil {
		return s, Averager{}, err
	}
	avg := s.DefaultAverage()
	if sp.Average != "" && sp.Average != "auto" {
		k, err := ParseAvgKind(sp.Average)
		if err != nil {
			return s, avg, err
		}
		avg = Averager{Kind: k, T0: s.T0, Horizon: sp.Horizon}
	}
	return s, avg, nil
}
