package memnet

import (
	"math"
	"math/rand/v2"

	"github.com/asyncmb/asyncmb/algo"
)

// Lognormal draws from rng a time of mean mean and coefficient of
// variation cv (exactly mean, without a draw, for cv or mean 0).
func Lognormal(rng *rand.Rand, mean, cv float64) float64 {
	if cv == 0 || mean == 0 {
		return mean
	}
	sl := math.Sqrt(math.Log1p(cv * cv))
	return mean * math.Exp(sl*rng.NormFloat64()-sl*sl/2)
}

// Random is a Timing of independent lognormal draws from one seeded
// generator: worker w's compute times have mean ComputeS[w], the latency
// of its link (both ways) mean LatencyS[w] (a slice shorter than w+1:
// its last entry), the master takes ServiceS per gradient and no link
// time. With LatencyCV > 0, messages on different links overtake each
// other (and on the same link too, with Config.Reorder).
type Random struct {
	ComputeS  []float64
	ComputeCV float64
	LatencyS  []float64
	LatencyCV float64
	ServiceS  float64
	rng       *rand.Rand
}

// NewRandom returns r drawing from a generator seeded with seed; it
// panics on a negative or non-finite figure or an empty ComputeS or
// LatencyS (a caller's bug).
func NewRandom(seed uint64, r Random) *Random {
	if len(r.ComputeS) == 0 || len(r.LatencyS) == 0 || !finite(append(append([]float64{r.ComputeCV, r.LatencyCV, r.ServiceS}, r.ComputeS...), r.LatencyS...)...) {
		panic("memnet: Random needs finite figures >= 0 and at least one compute and latency mean")
	}
	r.rng = rand.New(rand.NewPCG(seed, 0x6d656d6e6574))
	return &r
}

func at(v []float64, w int) float64 { return v[min(w, len(v)-1)] }

func (r *Random) Compute(w int) float64 { return Lognormal(r.rng, at(r.ComputeS, w), r.ComputeCV) }
func (r *Random) Latency(w int, _ bool) float64 {
	return Lognormal(r.rng, at(r.LatencyS, w), r.LatencyCV)
}
func (r *Random) Receive(*algo.Grad) float64 { return 0 }
func (r *Random) Service(*algo.Grad) float64 { return r.ServiceS }
func (r *Random) Send(*algo.Reply) float64   { return 0 }
