package ranks

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"time"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// The polish: the output of a stochastic method is an average of iterates,
// dense even where the optimum is sparse (an average is nonzero wherever
// one iterate was). After the run the master takes a few full-data
// proximal gradient steps from the model (solver.Polish), whose
// soft-threshold zeroes the coordinates the optimum has at zero, and keeps
// the result only if phi did not rise. In a distributed run each step is a
// round over the workers' shards (estGrad: Bcast x, Reduce the loss and the
// gradient sums), so the master needs no copy of the data.

// estGrad is the round x -> sum_i l'(a_i.x) a_i, sum_i l(a_i.x) (d+1
// floats) over a shard.
const estGrad = 8

// polishes reports whether the polish applies to r: the regularizers whose
// prox sets coordinates (or groups) to zero.
func polishes(r solver.Reg) bool { return r.Sparsifying() }

// PolishInfo is summary.json's record of the polish.
type PolishInfo struct {
	Iters     int     `json:"iters"`
	Evals     int     `json:"evals"`
	PhiBefore float64 `json:"phi_before"`
	PhiAfter  float64 `json:"phi_after"`
	NNZBefore int     `json:"nnz_before"`
	NNZAfter  int     `json:"nnz_after"`
	// Kept is false when the polished model had a higher phi (rounding)
	// and the model written is the output as it was.
	Kept  bool    `json:"kept"`
	TimeS float64 `json:"time_s"`
}

// MarshalJSON writes a non-finite phi (an infeasible start) as null.
func (p PolishInfo) MarshalJSON() ([]byte, error) {
	type plain PolishInfo
	return json.Marshal(struct {
		plain
		PhiBefore *float64 `json:"phi_before"`
		PhiAfter  *float64 `json:"phi_after"`
	}{plain(p), finitePtr(p.PhiBefore), finitePtr(p.PhiAfter)})
}

// polishModel polishes w with smooth, the loss on the full data, and
// returns the model to write (the polished one when it does not raise phi,
// else w) with the record. L0 is the first Lipschitz guess (0: unknown).
func polishModel(smooth solver.SmoothFunc, cfg *Config, w []float64, L0 float64) ([]float64, *PolishInfo) {
	t0 := time.Now()
	r := solver.Polish(smooth, cfg.Reg, w, solver.PolishOptions{MaxIter: cfg.PolishIters, L0: L0})
	info := &PolishInfo{Iters: r.Iters, Evals: r.Evals, PhiBefore: r.Phi0, PhiAfter: r.Phi, NNZBefore: r.NNZ0, NNZAfter: r.NNZ,
		Kept: r.Phi <= r.Phi0 && !math.IsNaN(r.Phi)}
	info.TimeS = time.Since(t0).Seconds()
	if !info.Kept {
		info.PhiAfter, info.NNZAfter = r.Phi0, r.NNZ0
		return w, info
	}
	return r.X, info
}

// shardSmooth is f(x) on the full data as the workers' shards sum it, one
// estGrad round per call; the first error of a round sticks in *err (the
// later calls then return NaN, which stops the polish).
func shardSmooth(ctx context.Context, c *comm.Comm, d int, n int64, err *error) solver.SmoothFunc {
	res := make([]float64, d+1)
	inv := 1 / float64(n)
	return func(x, g []float64) float64 {
		if *err != nil {
			return math.NaN()
		}
		if *err = round(ctx, c, estGrad, x, res); *err != nil {
			return math.NaN()
		}
		for j := range g {
			g[j] = res[j] * inv
		}
		return res[d] * inv
	}
}

// shardGradSums writes sum_i l'(a_i.x, y_i) a_i over the shard into
// res[:d] and sum_i l(a_i.x, y_i) into res[d] (a worker's part of estGrad).
func shardGradSums(l kernels.Loss, s *shard, x, res []float64) {
	if s.a.Rows == 0 {
		clear(res)
		return
	}
	if s.mc.K > 0 {
		multiGradSums(s, x, res)
		return
	}
	fg := kernels.NewFullGrad(matrixOf(s.a), s.y, runtime.GOMAXPROCS(0))
	rows := float64(s.a.Rows)
	loss := fg.Eval(l, x, res[:s.d])
	for j := range res[:s.d] {
		res[j] *= rows
	}
	res[s.d] = loss * rows
}
