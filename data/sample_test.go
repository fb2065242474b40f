package data

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSamplersAgree checks that the alias-with-rejection sampler and the
// sum tree draw k distinct indices with the same inclusion frequencies, and
// that the first index drawn has probability proportional to its weight.
func TestSamplersAgree(t *testing.T) {
	const n, k, trials = 20, 6, 40000
	weights := make([]float64, n)
	var sum float64
	for j := range weights {
		weights[j] = math.Pow(float64(j+1), -1.2)
		sum += weights[j]
	}
	table := newAliasTable(weights)
	ds := newDistinctSampler(table)
	tree := newSumTree(weights)
	r := rand.New(rand.NewPCG(1, 2))
	var inAlias, inTree, firstAlias [n]float64
	var dst []int32
	for range trials {
		dst = ds.draw(r, k, dst[:0])
		seen := map[int32]bool{}
		for _, j := range dst {
			if seen[j] {
				t.Fatalf("index %d drawn twice: %v", j, dst)
			}
			seen[j] = true
			inAlias[j]++
		}
		firstAlias[dst[0]]++
		dst = tree.drawMore(r, k, dst[:0], 0)
		for _, j := range dst {
			inTree[j]++
		}
	}
	for j := range n {
		// Binomial standard deviations; 5 sigma bounds.
		pa, pt := inAlias[j]/trials, inTree[j]/trials
		sd := math.Sqrt(pa*(1-pa)/trials + pt*(1-pt)/trials)
		if math.Abs(pa-pt) > 5*sd+1e-9 {
			t.Errorf("index %d: included %.4f (alias) vs %.4f (tree)", j, pa, pt)
		}
		p1, want := firstAlias[j]/trials, weights[j]/sum
		if math.Abs(p1-want) > 5*math.Sqrt(want*(1-want)/trials) {
			t.Errorf("index %d drawn first %.4f, want %.4f", j, p1, want)
		}
	}
	// The tree is restored bit for bit after each draw.
	fresh := newSumTree(weights)
	for i := range fresh.tree {
		if fresh.tree[i] != tree.tree[i] {
			t.Fatalf("tree node %d: %v after draws, %v fresh", i, tree.tree[i], fresh.tree[i])
		}
	}
}

// TestSamplerFallback draws all but one index with a very skewed weight
// so that rejection gives up and the tree finishes the row.
func TestSamplerFallback(t *testing.T) {
	weights := make([]float64, 300)
	for j := range weights {
		weights[j] = math.Pow(float64(j+1), -4)
	}
	ds := newDistinctSampler(newAliasTable(weights))
	r := rand.New(rand.NewPCG(3, 4))
	dst := ds.draw(r, 299, nil)
	if ds.tree == nil {
		t.Fatal("the tree was not used")
	}
	seen := map[int32]bool{}
	for _, j := range dst {
		if seen[j] || j < 0 || j >= 300 {
			t.Fatalf("bad or repeated index %d", j)
		}
		seen[j] = true
	}
	if len(dst) != 299 {
		t.Fatalf("%d indices", len(dst))
	}
}
