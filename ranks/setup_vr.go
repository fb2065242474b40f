package ranks

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/solver"
)

// estColumns is the estimation round of the column statistics: each worker
// answers sum_i a_ij^2 (d floats) then #{i: a_ij != 0} (d floats) over its
// shard.
const estColumns = 4

// columnSums fills res (len 2 columns) with the shard's column statistics.
func columnSums(s *shard, res []float64) {
	cols := s.a.Cols
	solver.AddColumnStats(s.a, res[:cols], res[cols:2*cols])
}

// masterPlanVR plans a svrg run on the workers' shards: the column
// statistics (one Reduce of 2d floats), the metric, and L in the metric by
// the power method (each round: v -> C^-1/2 sum_k A_k^T A_k C^-1/2 v).
func masterPlanVR(ctx context.Context, c *comm.Comm, cfg *Config, f *facts) (vrPlan, error) {
	cols := f.cols
	res := make([]float64, 2*cols)
	if err := round(ctx, c, estColumns, []float64{0}, res); err != nil {
		return vrPlan{}, err
	}
	st := solver.ColumnStats{Sq: res[:cols], Count: res[cols:], N: f.n}
	var metric []float64
	if useMetric(cfg, st) {
		metric = st.BatchMetric(f.curvature(cfg), cfg.Batch)
	}
	L := cfg.Step.L
	if L == 0 || metric != nil {
		var err error
		if L, err = powerL(ctx, c, f.curvature(cfg), f, metric, cfg.Seed); err != nil {
			return vrPlan{}, err
		}
	}
	return newVRPlan(cfg, st, metric, L, f.d, max(f.mc.K, 1))
}

// powerL is the power method of masterEstimate in the metric (nil:
// Euclidean): curv * lambda_max(C^-1/2 A^T A C^-1/2 / n).
func powerL(ctx context.Context, c *comm.Comm, curv float64, f *facts, metric []float64, seed uint64) (float64, error) {
	d := f.cols
	rng := rand.New(rand.NewPCG(seed, 77))
	v := make([]float64, d)
	u := make([]float64, d)
	res := make([]float64, d)
	for j := range v {
		v[j] = rng.NormFloat64()
	}
	normalize(v)
	lambda := 0.0
	for it := 0; it < powerIters; it++ {
		copy(u, v)
		if metric != nil {
			for j := range u {
				u[j] /= math.Sqrt(metric[j])
			}
		}
		if err := round(ctx, c, estPower, u, res); err != nil {
			return 0, err
		}
		if metric != nil {
			for j := range res {
				res[j] /= math.Sqrt(metric[j])
			}
		}
		copy(v, res)
		next := normalize(v)
		done := math.Abs(next-lambda) <= 1e-4*next
		lambda = next
		if done {
			break
		}
	}
	return curv * lambda / float64(f.n), nil
}
