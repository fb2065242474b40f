package algo

import (
	"math/bits"
	"slices"
)

// KeySet computes the keys of a mini-batch: the sorted union of the column
// indices of its rows in a CSR matrix, which are the coordinates of x its
// gradient reads (see keyed.go). It keeps a stamp per feature (4d bytes,
// allocated once): building the union is O(nnz(batch)), and sorting it an
// LSD radix sort of the k keys in ceil(bits(d)/11) passes of O(k + 2048):
// no sort of d and no O(d) sweep. Not safe for concurrent use.
type KeySet struct {
	stamp     []uint32 // stamp[j] == cur: j is in the union being built
	cur       uint32
	keys, tmp []int32
	count     [1 << radixBits]int32
	passes    int
}

const radixBits = 11

// NewKeySet returns a KeySet for d features.
func NewKeySet(d int) *KeySet {
	return &KeySet{stamp: make([]uint32, d), passes: (bits.Len(uint(max(d-1, 1))) + radixBits - 1) / radixBits}
}

// Keys returns the sorted union of indices[indptr[i]:indptr[i+1]] over the
// rows (a slice owned by s, valid until the next call). Row indices must be
// valid and column indices within [0, d) (a caller bug otherwise: it
// panics).
func (s *KeySet) Keys(indptr []int64, indices []int32, rows []int) []int32 {
	s.cur++
	if s.cur == 0 { // wrapped: forget every stamp once every 2^32 calls
		clear(s.stamp)
		s.cur = 1
	}
	cur, stamp, keys := s.cur, s.stamp, s.keys[:0]
	for _, i := range rows {
		for _, j := range indices[indptr[i]:indptr[i+1]] {
			if stamp[j] != cur {
				stamp[j] = cur
				keys = append(keys, j)
			}
		}
	}
	s.keys = keys
	s.sort()
	return s.keys
}

// sort puts s.keys in increasing order (radix for many keys).
func (s *KeySet) sort() {
	if len(s.keys) < 256 {
		slices.Sort(s.keys)
		return
	}
	src := s.keys
	dst := slices.Grow(s.tmp[:0], len(src))[:len(src)]
	for p := range s.passes {
		shift := uint(p * radixBits)
		clear(s.count[:])
		for _, j := range src {
			s.count[uint32(j)>>shift&(1<<radixBits-1)]++
		}
		var sum int32
		for b, c := range s.count {
			s.count[b] = sum
			sum += c
		}
		for _, j := range src {
			b := uint32(j) >> shift & (1<<radixBits - 1)
			dst[s.count[b]] = j
			s.count[b]++
		}
		src, dst = dst, src
	}
	s.keys, s.tmp = src, dst
}

// Ahead draws a worker's mini-batches ahead of their use, so that a batch's
// keys can go out with the gradient before it, while the batches used are
// exactly the sampler's sequence. Not safe for concurrent use.
type Ahead struct {
	s    *Sampler
	b    int
	q    [][]int // batches drawn and not yet used, oldest first (copies)
	cur  []int   // the batch Next returned last
	free [][]int
}

// NewAhead draws batches of b rows from s.
func NewAhead(s *Sampler, b int) *Ahead { return &Ahead{s: s, b: b} }

// SetSampler makes later draws come from s; the batches already drawn stay
// queued (a worker that adopts a shard appends its rows to its own, so they
// keep their meaning).
func (a *Ahead) SetSampler(s *Sampler) { a.s = s }

// Next returns the next batch to use (valid until the next call of Next).
func (a *Ahead) Next() []int {
	if a.cur != nil {
		a.free = append(a.free, a.cur)
	}
	a.fill(1)
	a.cur = a.q[0]
	a.q = append(a.q[:0], a.q[1:]...)
	return a.cur
}

// Peek returns the k-th batch after the one Next returned last (k >= 1),
// drawing it if need be; it stays valid until Next returns it and once more.
func (a *Ahead) Peek(k int) []int {
	a.fill(k)
	return a.q[k-1]
}

func (a *Ahead) fill(k int) {
	for len(a.q) < k {
		var b []int
		if n := len(a.free); n > 0 {
			b, a.free = a.free[n-1][:0], a.free[:n-1]
		}
		a.q = append(a.q, append(b, a.s.Next(a.b)...))
	}
}

// KeyFunc returns the keys of a batch of a worker's shard (see
// WorkerConfig.Keys).
type KeyFunc func(rows []int) []int32

// setKeys gives the gradient about to be sent the keys of the batch that
// the reply to it will be used for: the next one drawn, or without a
// refresh part in between the one after it when pipelining (the reply
// then serves the computation after the next, which is already under way
// at the x held). A refresh part draws no batch and reads no x, so the
// keys that go with it only need to be those of the batch after it; and
// whether the next computation is one is known when the gradient is sent
// (the snapshot came before the reply that triggers the send).
func (w *Worker) setKeys() {
	w.g.Keys = nil
	if w.cfg.Keys == nil {
		return
	}
	ahead := 1
	if w.cfg.Pipeline && (w.vr == nil || !w.vr.needFull) {
		ahead = 2
	}
	w.g.Keys = w.cfg.Keys(w.ahead.Peek(ahead))
}
