package memnet

import (
	"fmt"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// Shard is the rows [Lo, Lo+N) of a problem that one worker samples.
type Shard struct{ Lo, N int }

// Shards splits n rows among workers 1..P (index 0 unused): contiguous
// blocks, or the whole data for every worker (replicate). An empty shard
// is an error.
func Shards(n, P int, replicate bool) ([]Shard, error) {
	s := make([]Shard, P+1)
	for w := 1; w <= P; w++ {
		lo, hi := 0, n
		if !replicate {
			lo, hi = (w-1)*n/P, w*n/P
		}
		if hi == lo {
			return nil, fmt.Errorf("memnet: %d workers for %d rows leave worker %d an empty shard (use replicated data)", P, n, w)
		}
		s[w] = Shard{Lo: lo, N: hi - lo}
	}
	return s, nil
}

// ProblemGrad returns the gradient function of a worker sampling shard sh
// of p: the mini-batch gradient and loss of p's loss (without the
// regularizer), dense, or sparse (Idx/Val, through acc) when acc is not
// nil and p's matrix is CSR. Its buffers are its own; acc may be shared by
// the functions of one network (they never run at once).
func ProblemGrad(p *solver.Problem, sh Shard, acc *kernels.SparseAcc) algo.GradFunc {
	_, d := p.Dims()
	var (
		rows  []int
		dense []float64
		sv    kernels.SparseVec
		idx   []int32
		val   []float64
	)
	sparse := acc != nil && p.A.CSR != nil
	return func(local []int, x []float64, out *algo.Grad) {
		rows = rows[:0]
		for _, i := range local {
			rows = append(rows, i+sh.Lo)
		}
		out.Rows = len(rows)
		out.Dense, out.Idx, out.Val = nil, nil, nil
		if sparse {
			out.Loss = acc.GradBatchCSR(p.Loss, p.A.CSR, p.Y, rows, x, &sv)
			idx, val = append(idx[:0], sv.Idx...), append(val[:0], sv.Val...)
			out.Idx, out.Val = idx, val
			return
		}
		if dense == nil {
			dense = make([]float64, d)
		}
		out.Loss = p.GradBatch(rows, x, dense)
		out.Dense = dense
	}
}
