package data

import "math/rand/v2"

// aliasTable is Vose's alias method: O(1) draws of index j with probability
// proportional to weights[j], with replacement. It is read-only after
// construction and shared by all generator workers.
type aliasTable struct {
	weights []float64
	prob    []float64 // chance of keeping the column drawn
	alias   []int32   // the index taken otherwise
}

func newAliasTable(weights []float64) *aliasTable {
	n := len(weights)
	a := &aliasTable{weights: weights, prob: make([]float64, n), alias: make([]int32, n)}
	var sum float64
	for _, w := range weights {
		sum += w
	}
	p := make([]float64, n)
	var small, large []int32
	for j, w := range weights {
		p[j] = w * float64(n) / sum
		if p[j] < 1 {
			small = append(small, int32(j))
		} else {
			large = append(large, int32(j))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small, large = small[:len(small)-1], large[:len(large)-1]
		a.prob[s], a.alias[s] = p[s], l
		p[l] += p[s] - 1
		if p[l] < 1 {
			small = append(small, l)
		} else {
			large = append(large, l)
		}
	}
	for _, j := range append(small, large...) { // 1 up to rounding
		a.prob[j], a.alias[j] = 1, j
	}
	return a
}

func (a *aliasTable) draw(r *rand.Rand) int {
	j := r.IntN(len(a.prob))
	if r.Float64() < a.prob[j] {
		return j
	}
	return int(a.alias[j])
}

// distinctSampler draws k distinct indices, each with probability
// proportional to its weight among those not drawn yet (successive
// sampling). It draws from the alias table and rejects indices already in
// the row (marked in stamp); when rejections pile up (a skewed Zipf and a
// dense row) it finishes the row with a sum tree, which needs no
// rejection. Both give the same distribution. One per worker.
type distinctSampler struct {
	a     *aliasTable
	stamp []uint32 // stamp[j] == row: j is already in the current row
	row   uint32
	tree  *sumTree // built on first need
}

func newDistinctSampler(a *aliasTable) *distinctSampler {
	return &distinctSampler{a: a, stamp: make([]uint32, len(a.prob))}
}

// draw appends k distinct indices (k <= number of positive weights) to dst.
func (s *distinctSampler) draw(r *rand.Rand, k int, dst []int32) []int32 {
	s.row++
	if s.row == 0 {
		clear(s.stamp)
		s.row = 1
	}
	start := len(dst)
	rejects := 4*k + 64
	for len(dst)-start < k {
		j := s.a.draw(r)
		if s.stamp[j] != s.row {
			s.stamp[j] = s.row
			dst = append(dst, int32(j))
			continue
		}
		if rejects--; rejects == 0 {
			if s.tree == nil {
				s.tree = newSumTree(s.a.weights)
			}
			return s.tree.drawMore(r, k, dst, start)
		}
	}
	return dst
}

// sumTree draws indices with probability proportional to their weights,
// without replacement within one drawMore call, in O(log n) per draw: a
// complete binary tree whose leaves are the weights and whose inner nodes
// are the sums of their children.
type sumTree struct {
	size    int       // number of leaves, a power of two
	tree    []float64 // tree[1] is the root, leaves are tree[size:size+n]
	weights []float64 // the weights, to restore leaves after a draw
}

func newSumTree(weights []float64) *sumTree {
	size := nextPow2(len(weights))
	s := &sumTree{size: size, tree: make([]float64, 2*size), weights: weights}
	copy(s.tree[size:], weights)
	for i := size - 1; i >= 1; i-- {
		s.tree[i] = s.tree[2*i] + s.tree[2*i+1]
	}
	return s
}

// set sets leaf j to w and recomputes the sums above it. Because each sum
// is recomputed from its children, restoring every changed leaf gives back
// the same tree bit for bit.
func (s *sumTree) set(j int, w float64) {
	i := j + s.size
	s.tree[i] = w
	for i >>= 1; i >= 1; i >>= 1 {
		s.tree[i] = s.tree[2*i] + s.tree[2*i+1]
	}
}

// drawMore draws indices until dst[start:] holds k distinct ones: the
// indices already in dst[start:] are removed from the tree first. It
// restores the tree before returning.
func (s *sumTree) drawMore(r *rand.Rand, k int, dst []int32, start int) []int32 {
	for _, j := range dst[start:] {
		s.set(int(j), 0)
	}
	for len(dst)-start < k {
		x := r.Float64() * s.tree[1]
		i := 1
		for i < s.size {
			if l := s.tree[2*i]; x < l {
				i = 2 * i
			} else {
				x -= l
				i = 2*i + 1
			}
		}
		if s.tree[i] == 0 {
			continue // rounding led to a drawn or padding leaf: draw again
		}
		j := i - s.size
		dst = append(dst, int32(j))
		s.set(j, 0)
	}
	for _, j := range dst[start:] {
		s.set(int(j), s.weights[j])
	}
	return dst
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}
