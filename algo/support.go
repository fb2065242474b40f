package algo

import "math/bits"

// support is a set of coordinates of [0, d) that holds every coordinate
// where some vectors may be nonzero: a bitmap of d bits, growing only,
// listed in increasing order. The svrg master keeps one for x (the
// coordinates its steps touched) and one for the full gradients (their
// parts' supports), so that a snapshot copies, clears and repacks those
// coordinates instead of all d: at d = 2^24 the bitmap is 2 MB and
// listing it O(d/64 + members). A dense write makes it every coordinate
// (all), after which its users fall back to their O(d) loops.
type support struct {
	words []uint64
	all   bool
	list  []int32 // the members in increasing order, valid while !stale
	stale bool
}

func newSupport(d int) support {
	return support{words: make([]uint64, (d+63)/64), stale: true}
}

// add adds idx (each in [0, d)). O(len(idx)).
func (s *support) add(idx []int32) {
	if s.all || len(idx) == 0 {
		return
	}
	w := s.words
	for _, j := range idx {
		w[uint32(j)>>6] |= 1 << (uint32(j) & 63)
	}
	s.stale = true
}

// addNonzeros adds the coordinates where x is nonzero. O(len(x)).
func (s *support) addNonzeros(x []float64) {
	if s.all {
		return
	}
	for j, v := range x {
		if v != 0 {
			s.words[j>>6] |= 1 << (uint(j) & 63)
			s.stale = true
		}
	}
}

// setAll makes the set every coordinate.
func (s *support) setAll() { s.all, s.list = true, nil }

// members returns the set in increasing order, or ok = false when it is
// every coordinate. The list is valid until the next add.
func (s *support) members() (idx []int32, ok bool) {
	if s.all {
		return nil, false
	}
	if s.stale {
		s.list = s.list[:0]
		for k, w := range s.words {
			for w != 0 {
				s.list = append(s.list, int32(k<<6|bits.TrailingZeros64(w)))
				w &= w - 1
			}
		}
		s.stale = false
	}
	return s.list, true
}
