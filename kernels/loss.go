package kernels

import (
	"fmt"
	"math"
)

// Loss names a smooth loss l(m, y) of the margin m = a.x and the target y.
//
//	Logistic: l = log(1 + exp(-y m)),   l' = -y / (1 + exp(y m)),  y in {-1,+1}
//	Squared:  l = (m - y)^2 / 2,        l' = m - y,                y real
//	SqHinge:  l = max(0, 1 - y m)^2,    l' = -2 y max(0, 1 - y m), y in {-1,+1}
//
// The objective over n rows is (1/n) sum_i l(a_i.x, y_i), so Squared gives
// (1/(2n)) ||Ax - y||^2, the form of the reference table's lasso and ridge-ls.
type Loss uint8

const (
	Logistic Loss = iota + 1
	Squared
	SqHinge
)

// ParseLoss maps "logistic", "squared" and "sqhinge" to a Loss.
func ParseLoss(s string) (Loss, error) {
	switch s {
	case "logistic":
		return Logistic, nil
	case "squared":
		return Squared, nil
	case "sqhinge":
		return SqHinge, nil
	}
	return 0, fmt.Errorf("kernels: unknown loss %q (want logistic, squared or sqhinge)", s)
}

func (l Loss) String() string {
	switch l {
	case Logistic:
		return "logistic"
	case Squared:
		return "squared"
	case SqHinge:
		return "sqhinge"
	}
	return fmt.Sprintf("Loss(%d)", uint8(l))
}

// Classification reports whether the loss expects labels in {-1,+1}.
func (l Loss) Classification() bool { return l == Logistic || l == SqHinge }

// Curvature is the bound on the second derivative of l used for Lipschitz constants: 1/4 for
// logistic, 1 for squared, 2 for squared hinge.
func (l Loss) Curvature() float64 {
	switch l {
	case Logistic:
		return 0.25
	case Squared:
		return 1
	case SqHinge:
		return 2
	}
	panic("kernels: Curvature of unknown loss")
}

// Value returns l(m, y). Logistic is evaluated without overflow for any
// finite margin: log(1+exp(z)) = max(z,0) + log1p(exp(-|z|)).
func (l Loss) Value(m, y float64) float64 {
	switch l {
	case Logistic:
		return softplus(-y * m)
	case Squared:
		r := m - y
		return 0.5 * r * r
	case SqHinge:
		h := 1 - y*m
		if h <= 0 {
			return 0
		}
		return h * h
	}
	panic("kernels: Value of unknown loss")
}

// Deriv returns dl/dm at (m, y).
func (l Loss) Deriv(m, y float64) float64 {
	switch l {
	case Logistic:
		// -y * sigmoid(-y m), written to avoid exp overflow.
		z := y * m
		if z >= 0 {
			e := math.Exp(-z)
			return -y * e / (1 + e)
		}
		return -y / (1 + math.Exp(z))
	case Squared:
		return m - y
	case SqHinge:
		h := 1 - y*m
		if h <= 0 {
			return 0
		}
		return -2 * y * h
	}
	panic("kernels: Deriv of unknown loss")
}

// ValueDeriv returns l(m, y) and dl/dm at (m, y) together; for Logistic it
// needs one exp and one log1p instead of the two exps of Value plus Deriv.
// Both results equal Value and Deriv up to rounding:
//
//	Logistic: z = -y m, e = exp(-|z|): l = max(z,0) + log1p(e),
//	          l' = -y/(1+e) if z >= 0, else -y e/(1+e)
func (l Loss) ValueDeriv(m, y float64) (float64, float64) {
	switch l {
	case Logistic:
		z := -y * m
		if z >= 0 {
			e := math.Exp(-z)
			return z + math.Log1p(e), -y / (1 + e)
		}
		e := math.Exp(z)
		return math.Log1p(e), -y * e / (1 + e)
	case Squared:
		r := m - y
		return 0.5 * r * r, r
	case SqHinge:
		h := 1 - y*m
		if h <= 0 {
			return 0, 0
		}
		return h * h, -2 * y * h
	}
	panic("kernels: ValueDeriv of unknown loss")
}

// softplus returns log(1 + exp(z)) without overflow.
func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}
