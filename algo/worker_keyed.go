package algo

import (
	"math/bits"
	"slices"

	"github.com/asyncmb/asyncmb/kernels"
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

// LocalBatch is a mini-batch in local form, built when its keys are (see
// WorkerConfig.Keys) by a Localizer: its rows, its keys (the sorted union
// of their columns, what KeySet.Keys gives) and a copy of its rows whose
// columns are positions among the keys, with their labels. With them its
// gradient is computed on vectors of length len(Keys) (x gathered on the
// keys, kernels.GradBatchLocal), whatever d is, from data in cache, and
// comes out on the keys: no scratch of d and no sort after the
// computation.
type LocalBatch struct {
	Rows []int   // the batch's rows (a copy)
	Keys []int32 // the sorted union of their columns
	// M holds the rows in order, M.Cols = len(Keys): Keys[M.Indices[e]]
	// is the column of their e-th entry, M.Data[e] its value; Y are their
	// labels.
	M kernels.CSR
	Y []float64
	A *kernels.CSR // the matrix it was built from
}

// Matches reports whether lb was built for exactly these rows of a.
func (lb *LocalBatch) Matches(a *kernels.CSR, rows []int) bool {
	return lb.A == a && slices.Equal(lb.Rows, rows)
}

// Localizer builds LocalBatches of d-column matrices with a two-level
// bitmap of the columns in use: a bit per column (d/64 words), a bit per
// word of those (d/4096 words), and a word's first position among the keys
// (d/64 int32): 0.19 bytes per feature, kept clear between calls. Marking
// the batch's columns is an OR per entry, and one per word in use in the
// upper level; listing the words in use from the upper level yields the
// keys in order without sorting them, in O(keys + d/4096); an entry's
// position is its word's first position plus the bits below it in the
// word (a popcount). Not safe for concurrent use.
type Localizer struct {
	top, words []uint64
	first      []int32
	used       []uint32 // the words marked, in the order they were first
	// touch and ftouch keep what touchRows reads, so that the loads it
	// makes to start the rows' cache misses are not dropped.
	touch  int32
	ftouch float64
}

// NewLocalizer returns a Localizer for d columns.
func NewLocalizer(d int) *Localizer {
	w := (d + 63) / 64
	return &Localizer{top: make([]uint64, (w+63)/64), words: make([]uint64, w), first: make([]int32, w)}
}

// Build makes lb the local form of rows of a, with labels y, reusing lb's
// slices. Row indices must be valid and columns within [0, d) (a caller
// bug otherwise: it panics).
func (z *Localizer) Build(a *kernels.CSR, y []float64, rows []int, lb *LocalBatch) {
	lb.A = a
	lb.Rows = append(lb.Rows[:0], rows...)
	z.touchRows(a, y, rows)
	ip, ind, val := a.Indptr, a.Indices, a.Data
	m := &lb.M
	m.Rows = len(rows)
	m.Indptr = append(m.Indptr[:0], 0)
	m.Data, m.Indices = m.Data[:0], m.Indices[:0]
	lb.Y = lb.Y[:0]
	// The rows' columns go to m.Indices, where their positions replace
	// them: the passes below read contiguous memory, not the rows. Copying
	// a row whole streams it in from memory; marking straight from the rows
	// (saving this copy) was slower out of cache.
	for _, i := range rows {
		m.Data = append(m.Data, val[ip[i]:ip[i+1]]...)
		m.Indices = append(m.Indices, ind[ip[i]:ip[i+1]]...)
		m.Indptr = append(m.Indptr, int64(len(m.Data)))
		lb.Y = append(lb.Y, y[i])
	}
	used := z.mark(m.Indices)
	keys := z.list(lb.Keys, len(m.Indices))
	words, first := z.words, z.first
	for e, j := range m.Indices {
		w := uint32(j) >> 6
		m.Indices[e] = first[w] + int32(bits.OnesCount64(words[w]&(1<<(uint32(j)&63)-1)))
	}
	for _, w := range used {
		words[w] = 0
	}
	clear(z.top)
	lb.Keys, m.Cols = keys, len(keys)
}

// mark sets the bits of the columns and returns the words that were
// clear before, with their bits set in the upper level. The upper level is
// marked once per word from that list, not once per entry: with text-like
// popularity most of a batch's entries fall in the first upper word, and
// an OR per entry into it makes each entry's load wait for the previous
// entry's store.
func (z *Localizer) mark(cols []int32) []uint32 {
	words := z.words
	used := slices.Grow(z.used[:0], len(cols))[:len(cols)]
	n := 0
	for _, j := range cols {
		w := &words[uint32(j)>>6]
		old := *w
		*w = old | 1<<(uint32(j)&63)
		used[n] = uint32(j) >> 6
		if old == 0 { // a conditional move, not a branch: no misprediction
			n++
		}
	}
	z.used = used
	used = used[:n]
	top := z.top
	for _, w := range used {
		top[w>>6] |= 1 << (w & 63)
	}
	return used
}

// list returns the keys in order, in keys' array if it holds them, and
// sets the words' first positions. A word's keys are written four at a time
// whatever its count, which only advances the end: the loop that extracts
// a word's bits one by one would mispredict its exit on most words.
func (z *Localizer) list(keys []int32, entries int) []int32 {
	const unroll = 4
	top, words, first := z.top, z.words, z.first
	// At most one key per entry, and room for a word's writes past the end.
	keys = slices.Grow(keys[:0], entries+unroll)[:entries+unroll]
	k := 0
	for t, tw := range top {
		for ; tw != 0; tw &= tw - 1 {
			w := t<<6 | bits.TrailingZeros64(tw)
			first[w] = int32(k)
			word, base := words[w], int32(w<<6)
			end := k + bits.OnesCount64(word)
			for ; k < end; k += unroll {
				// TrailingZeros64(0) = 64: keys past end are junk, overwritten
				// by the next word's or cut off.
				kk := keys[k : k+unroll : k+unroll]
				kk[0] = base + int32(bits.TrailingZeros64(word))
				word &= word - 1
				kk[1] = base + int32(bits.TrailingZeros64(word))
				word &= word - 1
				kk[2] = base + int32(bits.TrailingZeros64(word))
				word &= word - 1
				kk[3] = base + int32(bits.TrailingZeros64(word))
				word &= word - 1
			}
			k = end
		}
	}
	return keys[:k]
}

// touchRows reads the first cache line of each row's columns and values,
// and its label: the rows sit anywhere in a shard far larger than the
// caches, and their misses then overlap (a load each, independent of one
// another) instead of following each other in the passes that use them;
// the hardware prefetcher streams the rest of each row once its first line
// is asked for (touching every line gained nothing measurable).
func (z *Localizer) touchRows(a *kernels.CSR, y []float64, rows []int) {
	ip, ind, val := a.Indptr, a.Indices, a.Data
	var touch int32
	var ftouch float64
	for _, i := range rows {
		ftouch += y[i]
		if lo := ip[i]; lo < ip[i+1] {
			touch += ind[lo]
			ftouch += val[lo]
		}
	}
	z.touch, z.ftouch = touch, ftouch
}
