package solver

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// Sampler draws mini-batches of rows [0, n) without replacement within an
// epoch: each epoch (a pass over the rows) draws a fresh uniform
// permutation (Fisher-Yates with Lemire's unbiased bounded integers on a
// PCG generator seeded by the seed, a fixed algorithm so that a
// checkpoint's generator state replays the same permutation on any Go
// version) and cuts it into consecutive batches. It is the one sampler of
// serial SGD (NextInEpoch: the last batch of an epoch has the rows left)
// and of the workers (algo.Worker; Next: a batch that would cross the
// epoch's end is completed from the next permutation). Deterministic for a
// seed; not safe for concurrent use.
type Sampler struct {
	pcg      *rand.PCG
	epochRNG []byte // the generator's state when the current permutation was drawn
	perm     []int
	pos      int // next position in perm
	batch    []int
	// Epoch is the number of permutations drawn after the first (passes
	// begun after the first one).
	Epoch int64
}

// NewSampler returns a sampler over rows [0, n) with the given seed.
func NewSampler(n int, seed uint64) *Sampler {
	s := &Sampler{pcg: rand.NewPCG(seed, 0x9e3779b97f4a7c15), perm: make([]int, n)}
	s.newEpoch()
	return s
}

// newEpoch records the generator state and draws the epoch's permutation.
func (s *Sampler) newEpoch() {
	st, err := s.pcg.MarshalBinary()
	if err != nil {
		panic("solver: PCG state: " + err.Error())
	}
	s.epochRNG = st
	shuffle(s.pcg, s.perm)
	s.pos = 0
}

// NextInEpoch returns the next at most b rows of the current epoch,
// starting a new epoch first if the current one is used up (a slice of
// the sampler's permutation, valid until the next call).
func (s *Sampler) NextInEpoch(b int) []int {
	if s.pos >= len(s.perm) {
		s.Epoch++
		s.newEpoch()
	}
	end := min(s.pos+b, len(s.perm))
	rows := s.perm[s.pos:end]
	s.pos = end
	return rows
}

// Next returns the next b rows (a slice owned by the sampler, valid until
// the next call), continuing into the next epoch's permutation when the
// current one ends. b larger than n repeats rows across epochs; n = 0
// gives no rows.
func (s *Sampler) Next(b int) []int {
	s.batch = s.batch[:0]
	if len(s.perm) == 0 {
		return s.batch
	}
	for len(s.batch) < b {
		s.batch = append(s.batch, s.NextInEpoch(b-len(s.batch))...)
	}
	return s.batch
}

// Rows is n, the number of rows sampled.
func (s *Sampler) Rows() int { return len(s.perm) }

// State is what a checkpoint keeps of the sampler (rng is the sampler's
// slice, valid until the next epoch begins): the generator's state
// when the current epoch's permutation was drawn, and the position in it.
func (s *Sampler) State() (rng []byte, pos int) { return s.epochRNG, s.pos }

// RestoreSampler rebuilds a sampler over n rows from State's figures: it
// replays the epoch's permutation and continues at pos.
func RestoreSampler(n int, rng []byte, pos int) (*Sampler, error) {
	if pos < 0 || pos > n {
		return nil, fmt.Errorf("solver: sampler position %d outside [0, %d]", pos, n)
	}
	s := &Sampler{pcg: &rand.PCG{}, perm: make([]int, n)}
	if err := s.pcg.UnmarshalBinary(rng); err != nil {
		return nil, fmt.Errorf("solver: checkpoint generator state: %w", err)
	}
	s.newEpoch()
	s.pos = pos
	return s, nil
}

// shuffle sets perm to a uniform random permutation of 0..len(perm)-1
// (Fisher-Yates with Lemire's unbiased bounded integers).
func shuffle(src *rand.PCG, perm []int) {
	for i := range perm {
		perm[i] = i
	}
	for i := len(perm) - 1; i > 0; i-- {
		j := boundedN(src, uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
}

// boundedN returns a uniform integer in [0, n), n > 0.
func boundedN(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
