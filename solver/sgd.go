package solver

import (
	"fmt"
	"math"
)

// SGDConfig configures serial proximal SGD.
type SGDConfig struct {
	// Batch is the mini-batch size b (>= 1).
	Batch int
	// Schedule gives the step of every update (the delay is always 0 here).
	Schedule Schedule
	// Average chooses the output; only Kind, T0 and Horizon are read, the
	// averaging state starts empty.
	Average Averager
	// Seed fixes the sampling: two runs with the same seed, problem and
	// config produce the same iterates bit for bit.
	Seed uint64
}

func (c SGDConfig) validate() error {
	if c.Batch < 1 {
		return fmt.Errorf("solver: batch size must be >= 1, got %d", c.Batch)
	}
	if c.Average.Kind >= numAvgKinds {
		return fmt.Errorf("solver: unknown average kind %d", uint8(c.Average.Kind))
	}
	return c.Schedule.Validate()
}

// SGD is serial proximal SGD, the P = 1, no-network baseline of the
// asynchronous algorithm, as a state machine: each Step samples a mini-batch
// B, computes g = (1/|B|) sum_{i in B} grad l_i(x) and applies
//
//	x <- Reg.Step(x, g, alpha(t))   (the prox step, or the simplex's mirror step)
//
// then adds x to the average. Sampling is without replacement within an epoch:
// each epoch draws a fresh uniform permutation of the rows (Fisher-Yates on a
// PCG generator seeded by SGDConfig.Seed) and cuts it into consecutive batches
// of b rows; the last batch of an epoch has the n mod b rows that are left
// (if any), and the next batch starts the next epoch.
//
// An SGD owns X, its average and its buffers; X may be read between calls.
// It is not safe for concurrent use.
type SGD struct {
	p        *Problem
	Batch    int
	Schedule Schedule
	Avg      Averager
	X        []float64 // the current iterate
	T        int64     // updates applied
	Samples  int64     // rows used so far (Samples/n epochs)

	smp *Sampler // NextInEpoch: batches never cross an epoch
	n   int
	g   []float64
}

// NewSGD starts SGD on p from x0 (copied; nil means Reg.Init).
func NewSGD(p *Problem, cfg SGDConfig, x0 []float64) (*SGD, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n, d := p.Dims()
	s := &SGD{
		p:        p,
		Batch:    cfg.Batch,
		Schedule: cfg.Schedule,
		Avg:      Averager{Kind: cfg.Average.Kind, T0: cfg.Average.T0, Horizon: cfg.Average.Horizon},
		X:        make([]float64, d),
		smp:      NewSampler(n, cfg.Seed),
		n:        n,
		g:        make([]float64, d),
	}
	if err := p.start(s.X, x0); err != nil {
		return nil, err
	}
	if math.IsInf(p.Reg.Value(s.X), 1) {
		return nil, fmt.Errorf("solver: the starting point is outside the domain of the %s regularizer", p.Reg.Kind)
	}
	return s, nil
}

// Step applies one update and returns the mini-batch loss at the point
// where the gradient was taken.
func (s *SGD) Step() float64 {
	rows := s.smp.NextInEpoch(s.Batch)
	loss := s.p.GradBatch(rows, s.X, s.g)
	s.p.Reg.Step(s.X, s.g, s.Schedule.Alpha(s.T, 0))
	s.T++
	s.Samples += int64(len(rows))
	s.Avg.Add(s.X)
	return loss
}

// Epochs is the number of passes over the data so far (Samples / n).
func (s *SGD) Epochs() float64 { return float64(s.Samples) / float64(s.n) }

// Output writes the run's output (the average chosen by the config, or the
// last iterate) into dst (len d).
func (s *SGD) Output(dst []float64) { s.Avg.Value(s.X, dst) }

// Run applies updates until epochs passes over the data are done or hook
// returns false. hook (may be nil) is called after every every-th update
// (every <= 0: never) and once at the end; it may read s but not step it.
func (s *SGD) Run(epochs float64, every int64, hook func(*SGD) bool) {
	limit := int64(math.Ceil(epochs * float64(s.n)))
	for s.Samples < limit {
		s.Step()
		if every > 0 && s.T%every == 0 && hook != nil && !hook(s) {
			return
		}
	}
	if hook != nil {
		hook(s)
	}
}

// Checkpoint returns the state of s; tag says what it belongs to (e.g. the
// problem's cache key) so that Restore can refuse a foreign checkpoint. The
// slices are copies.
func (s *SGD) Checkpoint(tag string) *Checkpoint {
	rng, pos := s.smp.State()
	c := &Checkpoint{
		Tag:      tag,
		T:        s.T,
		Samples:  s.Samples,
		Pos:      int64(pos),
		Batch:    int64(s.Batch),
		RNG:      append([]byte(nil), rng...),
		Schedule: s.Schedule,
		Avg:      s.Avg,
		X:        append([]float64(nil), s.X...),
	}
	c.Avg.Cur = append([]float64(nil), s.Avg.Cur...)
	c.Avg.Prev = append([]float64(nil), s.Avg.Prev...)
	if s.Avg.Cur == nil {
		c.Avg.Cur = nil
	}
	if s.Avg.Prev == nil {
		c.Avg.Prev = nil
	}
	return c
}

// RestoreSGD rebuilds an SGD on p from a checkpoint written by
// SGD.Checkpoint with the same tag: the run continues exactly as the
// original would have. c is not retained.
func RestoreSGD(p *Problem, c *Checkpoint, tag string) (*SGD, error) {
	n, d := p.Dims()
	switch {
	case c.Tag != tag:
		return nil, fmt.Errorf("solver: checkpoint is for %q, not %q", c.Tag, tag)
	case len(c.X) != d:
		return nil, fmt.Errorf("solver: checkpoint has dimension %d, the problem %d", len(c.X), d)
	case c.Pos < 0 || c.Pos > int64(n):
		return nil, fmt.Errorf("solver: checkpoint position %d outside [0, %d]", c.Pos, n)
	case c.Batch < 1 || c.Batch > math.MaxInt32:
		return nil, fmt.Errorf("solver: checkpoint batch size %d", c.Batch)
	case c.T < 0 || c.Samples < 0:
		return nil, fmt.Errorf("solver: checkpoint counters are negative")
	case c.Avg.Cur != nil && len(c.Avg.Cur) != d || c.Avg.Prev != nil && len(c.Avg.Prev) != d:
		return nil, fmt.Errorf("solver: checkpoint average has the wrong dimension")
	}
	cfg := SGDConfig{Batch: int(c.Batch), Schedule: c.Schedule, Average: c.Avg}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("solver: checkpoint: %w", err)
	}
	s := &SGD{
		p:        p,
		Batch:    int(c.Batch),
		Schedule: c.Schedule,
		Avg:      c.Avg,
		X:        append([]float64(nil), c.X...),
		T:        c.T,
		Samples:  c.Samples,
		n:        n,
		g:        make([]float64, d),
	}
	if c.Avg.Cur != nil {
		s.Avg.Cur = append([]float64(nil), c.Avg.Cur...)
	}
	if c.Avg.Prev != nil {
		s.Avg.Prev = append([]float64(nil), c.Avg.Prev...)
	}
	// Replays the permutation drawn at the start of the epoch.
	smp, err := RestoreSampler(n, c.RNG, int(c.Pos))
	if err != nil {
		return nil, err
	}
	s.smp = smp
	return s, nil
}

// start sets x (len d) to the starting point x0, or to the regularizer's
// own starting point when x0 is nil.
func (p *Problem) start(x, x0 []float64) error {
	if x0 == nil {
		p.Reg.Init(x)
		return nil
	}
	if len(x0) != len(x) {
		return fmt.Errorf("solver: starting point has dimension %d, the problem %d", len(x0), len(x))
	}
	copy(x, x0)
	return nil
}
