package ranks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// The setup protocol, after the communicator's rendezvous:
//
//  1. every worker reads its shard (or the whole file with Replicate) and
//     sends the master its facts: rows, largest index, nonzeros, distinct
//     labels, host name — or the error that stopped it;
//  2. the master fixes the dimension, the label map and n, and sends them
//     back; every worker maps its labels and sets its dimension;
//  3. unless given, the Lipschitz constant L and the gradient noise sigma
//     are estimated on the shards (power iteration on A^T A with Bcast and
//     Reduce; per-row gradient norms at x0).
//
// Shard facts, Ints: 0 status (1 ok, 0 error), 1 rows, 2 max index,
// 3 nonzeros; Dense: the distinct labels (at most data.LabelCap+1); Bytes:
// the host name, or the error text.
//
// Problem facts, Ints: 0 status (1 ok, 0 abort), 1 d (without bias),
// 2 n, 3 has a label map; Dense: {neg, pos}; Bytes: the abort reason.

// ErrReported marks an error that another rank has already reported (a
// worker that could not read its shard, and the master and other workers
// that abort because of it): a launcher need not print it again.
var ErrReported = errors.New("ranks: failed on another rank")

// shard is what a worker holds after setup.
type shard struct {
	a     *kernels.CSR
	y     []float64
	d     int           // dimension of x: the columns (with the bias) times the classes
	mc    kernels.Multi // K-class problems; mc.K == 0 for one weight vector
	n     int64
	hosts []string
	facts shardFacts // as the master decided them (for reading another shard alike)
}

// facts is the master's view after setup.
type facts struct {
	d, dRaw  int   // dimension of x; features without the bias column
	cols     int   // columns of A, with the bias column (d = cols * K)
	n        int64 // rows in the whole data set
	labelMap *data.LabelMap
	classes  *data.ClassMap // K-class problems (K > 2 labels, logistic loss)
	mc       kernels.Multi  // their loss; mc.K == 0 for one weight vector
	hosts    []string       // by rank
	rows     []int64        // by rank: the rows of each worker's shard
	nnz      int64
}

// workerSetup runs steps 1 and 2 on a worker.
func workerSetup(ctx context.Context, c *comm.Comm, cfg *Config) (*shard, error) {
	P := c.Size() - 1
	w := c.Rank()
	var ds *data.Dataset
	var err error
	if cfg.Replicate {
		ds, err = data.Read(cfg.Data, data.Options{Features: cfg.Features})
	} else {
		ds, err = data.ReadShard(cfg.Data, w-1, P, data.Options{Features: cfg.Features})
	}
	var m comm.Msg
	if err != nil {
		m.Ints = []int64{0, 0, 0, 0}
		m.Bytes = []byte(err.Error())
		_ = c.Send(ctx, 0, tagSetup, &m)
		return nil, err
	}
	host, _ := os.Hostname()
	labels := ds.LabelsFirstSeen() // the master merges them in rank order: the file's order
	m.Ints = []int64{1, int64(ds.X.Rows), int64(ds.MaxIndex), int64(ds.X.NNZ())}
	m.Dense = append([]float64{}, labels...)
	m.Bytes = []byte(host)
	if err := c.Send(ctx, 0, tagSetup, &m); err != nil {
		return nil, err
	}
	var r comm.Msg
	if err := c.Recv(ctx, 0, tagSetup, &r); err != nil {
		return nil, err
	}
	sf, err := parseSetupReply(&r)
	if err != nil {
		return nil, err
	}
	return newShard(cfg, ds, sf)
}

// shardFacts are the master's decisions a shard needs: the dimension
// without bias, the rows of the data set, and how labels map (Ints[3] and
// Dense of the setup reply: 0 none, 1 a binary map {neg, pos},
// setupClasses the K classes' labels).
type shardFacts struct {
	d     int
	n     int64
	kind  int64
	dense []float64
}

// setupReply is the problem facts message (status ok).
func setupReply(f *facts) comm.Msg {
	reply := comm.Msg{Ints: []int64{1, int64(f.dRaw), f.n, 0}, Dense: []float64{0, 0}}
	if f.labelMap != nil {
		reply.Ints[3] = 1
		reply.Dense = []float64{f.labelMap.Neg, f.labelMap.Pos}
	}
	if f.classes != nil {
		reply.Ints[3] = setupClasses
		reply.Dense = f.classes.Labels
	}
	return reply
}

// parseSetupReply reads the problem facts.
func parseSetupReply(r *comm.Msg) (shardFacts, error) {
	if len(r.Ints) != 4 || len(r.Dense) < 2 {
		return shardFacts{}, fmt.Errorf("ranks: malformed setup reply from the master")
	}
	if r.Ints[0] != 1 {
		return shardFacts{}, fmt.Errorf("%w: the master aborted the setup: %s", ErrReported, r.Bytes)
	}
	return shardFacts{d: int(r.Ints[1]), n: r.Ints[2], kind: r.Ints[3], dense: append([]float64(nil), r.Dense...)}, nil
}

// factsOf are the shard facts the master sent (for reading a shard on the
// master, as its worker did).
func factsOf(f *facts) shardFacts {
	r := setupReply(f)
	sf, _ := parseSetupReply(&r)
	return sf
}

// newShard maps ds's labels as sf says, fixes its dimension and appends
// the bias column as configured.
func newShard(cfg *Config, ds *data.Dataset, sf shardFacts) (*shard, error) {
	mc, err := applyClasses(ds, cfg, sf.kind, sf.dense)
	if err != nil {
		return nil, err
	}
	if sf.kind == 1 {
		if err := ds.ApplyBinary(data.LabelMap{Neg: sf.dense[0], Pos: sf.dense[1]}); err != nil {
			return nil, err
		}
	}
	if err := ds.SetCols(sf.d); err != nil {
		return nil, err
	}
	a := &ds.X
	if cfg.Bias {
		a = solver.AppendBias(a)
	}
	return &shard{a: a, y: ds.Y, d: a.Cols * max(mc.K, 1), mc: mc, n: sf.n, facts: sf}, nil
}

// masterSetup runs steps 1 and 2 on the master.
func masterSetup(ctx context.Context, c *comm.Comm, cfg *Config) (*facts, error) {
	P := c.Size() - 1
	f := &facts{hosts: make([]string, c.Size()), rows: make([]int64, c.Size())}
	f.hosts[0], _ = os.Hostname()
	var labels []float64
	maxIndex := 0
	var fail error
	var m comm.Msg
	for w := 1; w <= P; w++ {
		if err := c.Recv(ctx, w, tagSetup, &m); err != nil {
			return nil, err
		}
		if len(m.Ints) != 4 {
			return nil, fmt.Errorf("ranks: malformed setup message from rank %d", w)
		}
		if m.Ints[0] != 1 {
			if fail == nil {
				fail = fmt.Errorf("%w: rank %d: %s", ErrReported, w, m.Bytes)
			}
			continue
		}
		f.hosts[w] = string(m.Bytes)
		f.rows[w] = m.Ints[1]
		if !cfg.Replicate || w == 1 {
			f.n += m.Ints[1]
			f.nnz += m.Ints[3]
		}
		maxIndex = max(maxIndex, int(m.Ints[2]))
		labels = append(labels, m.Dense...)
	}
	labels = data.MergeFirstSeen(labels) // first appearance in the file (shards in order)
	if fail == nil {
		fail = f.decide(cfg, maxIndex, labels)
	}
	if fail == nil {
		fail = checkBatch(cfg, f)
	}
	reply := setupReply(f)
	if fail != nil {
		reply.Ints[0] = 0
		reply.Bytes = []byte(fail.Error())
	}
	for w := 1; w <= P; w++ {
		if err := c.Send(ctx, w, tagSetup, &reply); err != nil && fail == nil {
			return nil, err
		}
	}
	if fail != nil {
		return nil, fail
	}
	return f, nil
}

// resolveGroups sets the group lasso's groups from cfg.GroupSpec over the
// data's features; with a bias column the bias is a group of its own (as
// `asyncmb sgd` and `reference` do).
func (f *facts) resolveGroups(cfg *Config) error {
	if cfg.Reg.Kind != solver.RegGroup {
		return nil
	}
	g, err := solver.ParseGroups(cfg.GroupSpec, f.dRaw)
	if err != nil {
		return err
	}
	if cfg.Bias {
		g = append(g, f.cols)
	}
	cfg.Reg.Groups = solver.ScaleGroups(g, max(f.mc.K, 1))
	return nil
}

func (f *facts) decide(cfg *Config, maxIndex int, labels []float64) error {
	if f.n == 0 {
		return fmt.Errorf("%s: no rows", cfg.Data)
	}
	f.dRaw = maxIndex
	if cfg.Features > 0 {
		f.dRaw = cfg.Features
	}
	if f.dRaw == 0 {
		return fmt.Errorf("%s: no features", cfg.Data)
	}
	f.d = f.dRaw
	if cfg.Bias {
		f.d++
	}
	f.cols = f.d
	if ok, err := f.decideClasses(cfg, labels); ok || err != nil {
		return err
	}
	if cfg.Loss.Classification() {
		lm, err := data.BinaryMap(labels)
		if err != nil {
			return fmt.Errorf("%s: %w (the %v loss needs two classes)", cfg.Data, err, cfg.Loss)
		}
		f.labelMap = &lm
	}
	return nil
}

// Estimation rounds: the master broadcasts a control word and a vector,
// each worker answers through a sum-Reduce.
const (
	estStop  = 0
	estPower = 1 // v -> sum_k A_k^T A_k v
	estNoise = 2 // x0 -> sum_i l'_i^2 ||a_i||^2, sum_i l'_i a_i
	estEval  = 3 // x, avg -> sum_i l(a_i.x), sum_i l(a_i.avg)
)

// powerIters bounds the rounds of the estimate of L (lanczosMax), and
// powerTol is the relative change of the estimate at which it stops.
const (
	powerIters = 100
	powerTol   = 1e-4
)

// masterEstimate returns L and sigma (as given, or estimated on the
// workers' shards) for the step-size policy.
func masterEstimate(ctx context.Context, c *comm.Comm, cfg *Config, f *facts, x0 []float64) (L, sigma float64, err error) {
	L, sigma = cfg.Step.L, cfg.Step.Sigma
	needs := cfg.Step.Kind == solver.StepConvex || cfg.Step.Kind == solver.StepStrong
	if !needs {
		return L, sigma, nil
	}
	d := f.cols
	if L == 0 {
		lambda, _, err := lanczosMax(d, cfg.Seed, powerTol, powerIters, func(v, res []float64) error {
			return round(ctx, c, estPower, v, res)
		})
		if err != nil {
			return 0, 0, err
		}
		L = f.curvature(cfg) * lambda / float64(f.n)
	}
	if sigma == 0 && cfg.Step.Kind == solver.StepConvex {
		d := f.d
		res := make([]float64, d+1)
		if err := round(ctx, c, estNoise, x0, res); err != nil {
			return 0, 0, err
		}
		inv := 1 / float64(f.n)
		var mean2 float64
		for _, g := range res[:d] {
			mean2 += (g * inv) * (g * inv)
		}
		sigma = math.Sqrt(math.Max(res[d]*inv-mean2, 0))
	}
	return L, sigma, nil
}

func normalize(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	s = math.Sqrt(s)
	if s > 0 {
		for i := range v {
			v[i] /= s
		}
	}
	return s
}

// workerServe answers the master's estimation and evaluation rounds (see
// round) until the master ends them. contribute is false for the workers
// whose rows another worker already counts (Replicate).
func workerServe(ctx context.Context, c *comm.Comm, cfg *Config, s *shard, contribute bool) error {
	d := s.d
	hdr := make([]float64, 2)
	vec := make([]float64, 2*d)
	rows := make([]float64, s.a.Rows)
	out := make([]float64, 2*d+1)
	for {
		if err := c.Bcast(ctx, 0, hdr); err != nil {
			return err
		}
		kind, n := int(hdr[0]), int(hdr[1])
		if kind == estStop {
			return nil
		}
		if n < 0 || n > len(vec) {
			return fmt.Errorf("ranks: estimation round of %d floats, dimension is %d", n, d)
		}
		v := vec[:n]
		if err := c.Bcast(ctx, 0, v); err != nil {
			return err
		}
		var res []float64
		switch kind {
		case estPower:
			res = out[:s.a.Cols]
			if contribute {
				kernels.MulVecCSR(s.a, v, rows)
				kernels.MulTransVecCSR(s.a, rows, res)
			} else {
				clear(res)
			}
		case estNoise:
			res = out[:d+1]
			clear(res)
			if contribute && s.mc.K > 0 {
				multiNoiseSums(s, v, res)
			} else if contribute {
				noiseSums(cfg.Loss, s, v, res)
			}
		case estGrad:
			res = out[:d+1]
			if contribute {
				shardGradSums(cfg.Loss, s, v[:d], res)
			} else {
				clear(res)
			}
		case estColumns:
			res = out[:2*s.a.Cols]
			clear(res)
			if contribute {
				columnSums(s, res)
			}
		case estMemory:
			res = workerMemory(c)
		case estEval:
			res = out[:2]
			clear(res)
			if contribute && s.mc.K > 0 {
				res[0], res[1] = multiLossSum(s, v[:d]), multiLossSum(s, v[d:])
			} else if contribute {
				res[0] = lossSum(cfg.Loss, s, v[:d], rows)
				res[1] = lossSum(cfg.Loss, s, v[d:], rows)
			}
		default:
			return fmt.Errorf("ranks: unknown estimation round %d", kind)
		}
		if err := c.Reduce(ctx, 0, res, comm.OpSum); err != nil {
			return err
		}
	}
}

// round runs one estimation/evaluation round from the master: it announces
// kind and len(v), broadcasts v and sum-reduces len(res) floats into res.
func round(ctx context.Context, c *comm.Comm, kind int, v, res []float64) error {
	if err := c.Bcast(ctx, 0, []float64{float64(kind), float64(len(v))}); err != nil {
		return err
	}
	if err := c.Bcast(ctx, 0, v); err != nil {
		return err
	}
	clear(res)
	return c.Reduce(ctx, 0, res, comm.OpSum)
}

// endRounds tells the workers that no more rounds follow.
func endRounds(ctx context.Context, c *comm.Comm) error {
	return c.Bcast(ctx, 0, []float64{estStop, 0})
}

// noiseSums adds sum_i l'_i a_i into res[:d] and sum_i l'_i^2 ||a_i||^2
// into res[d], at x.
func noiseSums(l kernels.Loss, s *shard, x, res []float64) {
	a := s.a
	d := s.d
	for i := 0; i < a.Rows; i++ {
		idx, val := a.Row(i)
		var m, n2 float64
		for k, j := range idx {
			m += val[k] * x[j]
			n2 += val[k] * val[k]
		}
		g := l.Deriv(m, s.y[i])
		for k, j := range idx {
			res[j] += g * val[k]
		}
		res[d] += g * g * n2
	}
}

// lossSum returns sum_i l(a_i.x, y_i) over the shard.
func lossSum(l kernels.Loss, s *shard, x, scratch []float64) float64 {
	kernels.MulVecCSR(s.a, x, scratch)
	var sum float64
	for i, m := range scratch {
		sum += l.Value(m, s.y[i])
	}
	return sum
}
