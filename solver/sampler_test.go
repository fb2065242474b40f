package solver

import (
	"slices"
	"testing"
)

// TestSampler: every epoch is a permutation of the rows; Next completes a
// batch across an epoch's end from the next permutation, NextInEpoch cuts
// it there; the same seed gives the same batches, another seed others;
// State and RestoreSampler continue the sequence exactly.
func TestSampler(t *testing.T) {
	const n, b = 10, 4
	a, c := NewSampler(n, 7), NewSampler(n, 8)
	var seq, other []int
	for range 3 * n / b * 2 {
		seq = append(seq, a.Next(b)...)
		other = append(other, c.Next(b)...)
	}
	for e := 0; e+n <= len(seq); e += n {
		ep := slices.Sorted(slices.Values(seq[e : e+n]))
		for i, r := range ep {
			if r != i {
				t.Fatalf("epoch %d is not a permutation: %v", e/n, seq[e:e+n])
			}
		}
	}
	if slices.Equal(seq, other) {
		t.Error("seeds 7 and 8 draw the same batches")
	}
	if again := NewSampler(n, 7); !slices.Equal(again.Next(b*3), seq[:b*3]) {
		t.Error("the same seed drew other batches")
	}
	// NextInEpoch: 4, 4, then the 2 rows left; the same permutation.
	s := NewSampler(n, 7)
	var sizes []int
	var rows []int
	for range 3 {
		r := s.NextInEpoch(b)
		sizes, rows = append(sizes, len(r)), append(rows, r...)
	}
	if !slices.Equal(sizes, []int{4, 4, 2}) || !slices.Equal(rows, seq[:n]) || s.Epoch != 0 {
		t.Fatalf("NextInEpoch sizes %v rows %v epoch %d, want 4,4,2 of %v in epoch 0", sizes, rows, s.Epoch, seq[:n])
	}
	// Restore mid-epoch continues the sequence.
	s = NewSampler(n, 7)
	s.Next(b)
	s.Next(b)
	s.Next(b) // into the second epoch
	rng, pos := s.State()
	r, err := RestoreSampler(n, rng, pos)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Next(b*2), s.Next(b*2); !slices.Equal(got, want) || !slices.Equal(want, seq[3*b:5*b]) {
		t.Fatalf("restored sampler draws %v, the original %v, want %v", got, want, seq[3*b:5*b])
	}
	if _, err := RestoreSampler(n, rng, n+1); err == nil {
		t.Error("a position beyond the rows was restored")
	}
}
