package ranks

import (
	"fmt"
	"runtime"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// K-class problems. A file with K > 2 distinct labels and the logistic loss
// trains W, d x K, as one flat x of length d*K, row-major by feature (see
// kernels.Multi): the master's update, the messages, the averaging and the
// trace work on x unchanged; what differs is the label map agreed in the
// setup (the class labels in the order of first appearance in the file,
// which is LIBLINEAR's), the workers' gradients, the estimates and the
// model file. Dimension bookkeeping: cols = A's columns with the bias,
// d = cols*K = len(x) everywhere a vector crosses a boundary.

// setupClasses in Ints[3] of the setup reply says that Dense holds the K
// class labels (1 is a binary map {neg, pos}, 0 none).
const setupClasses = 2

// decideClasses makes f a K-class problem when the labels (the file's
// distinct labels in order of first appearance) are more than two and the
// loss is a classification loss; it reports whether it did.
func (f *facts) decideClasses(cfg *Config, labels []float64) (bool, error) {
	if !cfg.Loss.Classification() || len(labels) <= 2 {
		return false, nil
	}
	if cfg.Loss != kernels.Logistic {
		return true, fmt.Errorf("%s: %d distinct labels: the %v loss is binary only; train K classes with --loss logistic (softmax or --multiclass ovr)",
			cfg.Data, len(labels), cfg.Loss)
	}
	cm, err := data.NewClassMap(labels)
	if err != nil {
		return true, fmt.Errorf("%s: %w", cfg.Data, err)
	}
	f.classes = &cm
	f.mc = kernels.Multi{K: cm.K(), OVR: cfg.OVR}
	f.d = f.cols * cm.K()
	return true, nil
}

// applyClasses maps a worker's labels to class indices when the setup
// reply says so (kind setupClasses, labels the classes) and returns the
// K-class loss (K == 0 otherwise).
func applyClasses(ds *data.Dataset, cfg *Config, kind int64, labels []float64) (kernels.Multi, error) {
	if kind != setupClasses {
		return kernels.Multi{}, nil
	}
	cm, err := data.NewClassMap(labels)
	if err != nil {
		return kernels.Multi{}, fmt.Errorf("ranks: the master's class map: %w", err)
	}
	if err := ds.ApplyClasses(cm); err != nil {
		return kernels.Multi{}, err
	}
	return kernels.Multi{K: cm.K(), OVR: cfg.OVR}, nil
}

// curvature is the loss's bound on the second derivative in the margins,
// for L = curvature * lambda_max(A^T A / n).
func (f *facts) curvature(cfg *Config) float64 {
	if f.mc.K > 0 {
		return f.mc.Curvature()
	}
	return cfg.Loss.Curvature()
}

// multiNoiseSums is noiseSums for a K-class shard: it adds sum_i a_i ⊗ dl_i
// into res[:d] and sum_i ||a_i||^2 ||dl_i||^2 into res[d] (the per-row
// gradient a_i ⊗ dl_i/dm has that squared norm).
func multiNoiseSums(s *shard, x, res []float64) {
	k := s.mc.K
	m, dm := make([]float64, k), make([]float64, k)
	a := s.a
	d := s.d
	for i := 0; i < a.Rows; i++ {
		idx, val := a.Row(i)
		kernels.MultiMarginsRow(k, idx, val, x, m)
		s.mc.ValueDeriv(m, int(s.y[i]), dm)
		var n2, g2 float64
		for _, v := range val {
			n2 += v * v
		}
		for _, g := range dm {
			g2 += g * g
		}
		for t, j := range idx {
			row := res[int(j)*k : int(j)*k+k]
			for c, g := range dm {
				row[c] += val[t] * g
			}
		}
		res[d] += n2 * g2
	}
}

// multiLossSum returns sum_i l_i(W) over a K-class shard.
func multiLossSum(s *shard, x []float64) float64 {
	k := s.mc.K
	m, dm := make([]float64, k), make([]float64, k)
	var sum float64
	for i := 0; i < s.a.Rows; i++ {
		idx, val := s.a.Row(i)
		kernels.MultiMarginsRow(k, idx, val, x, m)
		sum += s.mc.ValueDeriv(m, int(s.y[i]), dm)
	}
	return sum
}

// multiGrad is the K-class part of a worker's gradient computer.
type multiGrad struct {
	acc     *kernels.MultiSparseAcc // d > denseMaxDim
	scratch []float64
}

// computeMulti is gradComputer.compute for a K-class shard: dense for
// small d, else accumulated by rows of W and sent sparse when smaller.
func (gc *gradComputer) computeMulti(rows []int, x []float64, out *algo.Grad) {
	s := gc.s
	if gc.multi == nil {
		gc.multi = &multiGrad{scratch: make([]float64, 2*s.mc.K)}
		if s.d > denseMaxDim {
			gc.multi.acc = kernels.NewMultiSparseAcc(s.a.Cols, s.mc.K)
		}
	}
	mg := gc.multi
	if mg.acc == nil {
		out.Loss = kernels.MultiGradBatchCSR(s.mc, s.a, s.y, rows, x, gc.dense, mg.scratch)
		out.Dense = gc.dense
		return
	}
	out.Loss = mg.acc.GradBatchCSR(s.mc, s.a, s.y, rows, x, &gc.sparse)
	gc.sparseOrDense(gc.sparse.Idx, gc.sparse.Val, out)
}

// loadFullMulti is loadFullFrom for a K-class problem.
func loadFullMulti(cfg *Config, f *facts, ds *data.Dataset) (*solver.Problem, error) {
	if err := ds.ApplyClasses(*f.classes); err != nil {
		return nil, err
	}
	if err := ds.SetCols(f.dRaw); err != nil {
		return nil, err
	}
	a := &ds.X
	if cfg.Bias {
		a = solver.AppendBias(a)
	}
	if a.Cols*f.mc.K != f.d {
		return nil, fmt.Errorf("ranks: %d columns x %d classes, the setup decided dimension %d", a.Cols, f.mc.K, f.d)
	}
	return solver.NewMultiProblem(a, ds.Y, f.mc, cfg.Reg, runtime.GOMAXPROCS(0))
}

// multiGradSums is shardGradSums for a K-class shard: sum_i grad l_i(W)
// into res[:d] and sum_i l_i(W) into res[d].
func multiGradSums(s *shard, x, res []float64) {
	fg, err := kernels.NewMultiFullGrad(s.mc, s.a, s.y, runtime.GOMAXPROCS(0))
	if err != nil {
		panic("ranks: a K-class shard's labels were mapped in the setup: " + err.Error())
	}
	rows := float64(s.a.Rows)
	loss := fg.Eval(x, res[:s.d])
	for j := range res[:s.d] {
		res[j] *= rows
	}
	res[s.d] = loss * rows
}

// useClasses makes the held-out set's model template a K-class one and
// checks that every held-out label is one of the training data's classes.
func (h *heldOut) useClasses(f *facts) error {
	h.tmpl.Labels, h.tmpl.Classes = f.classes.Labels, f.mc.K
	for i, v := range h.y {
		if _, ok := f.classes.Index(v); !ok {
			return fmt.Errorf("--test %s: row %d has label %v, which is none of the training data's %d classes", h.path, i+1, v, f.mc.K)
		}
	}
	return nil
}
