package ranks

import (
	"context"
	"math"

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

// powerL is masterEstimate's estimate of L (lanczosMax) in the metric (nil:
// Euclidean): curv * lambda_max(C^-1/2 A^T A C^-1/2 / n).
func powerL(ctx context.Context, c *comm.Comm, curv float64, f *facts, metric []float64, seed uint64) (float64, error) {
	d := f.cols
	u := make([]float64, d)
	lambda, _, err := lanczosMax(d, seed, powerTol, powerIters, func(v, res []float64) error {
		copy(u, v)
		if metric != nil {
			for j := range u {
				u[j] /= math.Sqrt(metric[j])
			}
		}
		if err := round(ctx, c, estPower, u, res); err != nil {
			return err
		}
		if metric != nil {
			for j := range res {
				res[j] /= math.Sqrt(metric[j])
			}
		}
		return nil
	})
	return curv * lambda / float64(f.n), err
}
