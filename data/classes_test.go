package data

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestClassMap: labels map to class indices in the order given; shards'
// first-seen lists merge, in shard order, to the file's first-seen order;
// too few, repeated or fractional labels are refused.
func TestClassMap(t *testing.T) {
	d := &Dataset{Y: []float64{5, 3, 5, 9, 3, -0.0}, Path: "f"}
	got := d.LabelsFirstSeen()
	if !slices.Equal(got, []float64{5, 3, 9, 0}) {
		t.Fatalf("first seen %v", got)
	}
	if m := MergeFirstSeen([]float64{5, 3}, []float64{3, 9, 5}, []float64{0, 9}); !slices.Equal(m, []float64{5, 3, 9, 0}) {
		t.Fatalf("merged %v", m)
	}
	cm, err := d.ToClasses()
	if err != nil {
		t.Fatal(err)
	}
	if cm.K() != 4 || !slices.Equal(d.Y, []float64{0, 1, 0, 2, 1, 3}) {
		t.Fatalf("map %v, classes %v", cm, d.Y)
	}
	if err := (&Dataset{Y: []float64{5, 4}}).ApplyClasses(cm); !errors.Is(err, ErrLabels) {
		t.Errorf("a label outside the map: %v", err)
	}
	for _, bad := range [][]float64{{1}, {1, 2, 1}, {1, 2.5, 3}} {
		if _, err := NewClassMap(bad); !errors.Is(err, ErrLabels) {
			t.Errorf("NewClassMap(%v): %v", bad, err)
		}
	}
}

// TestGenerateMulticlass: labels are 1..K, every class occurs, the output
// does not depend on the number of goroutines, and the planted W explains
// the labels: with little noise the argmax of x.W recovers most of them.
func TestGenerateMulticlass(t *testing.T) {
	c := GenConfig{Rows: 3000, Features: 200, Density: 0.05, Zipf: 1, Noise: 0.01, Seed: 3, Task: Multiclass, Classes: 7}
	a := generate(t, c)
	c.Workers = 3
	if b := generate(t, c); !bytes.Equal(a, b) {
		t.Fatal("output depends on the number of workers")
	}
	d := readGenerated(t, a, Options{})
	vals := d.LabelValues()
	if !slices.Equal(vals, []float64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("labels %v, want 1..7", vals)
	}
	// The planted W is the first Features*K normals of the model stream.
	mr := rand.New(rand.NewPCG(c.Seed, 0))
	w := make([]float64, c.Features*c.Classes)
	for j := range w {
		w[j] = mr.NormFloat64()
	}
	agree := 0
	for i := 0; i < d.X.Rows; i++ {
		idx, val := d.X.Row(i)
		m := make([]float64, c.Classes)
		for k, j := range idx {
			for cl := range m {
				m[cl] += val[k] * w[int(j)*c.Classes+cl]
			}
		}
		best := 0
		for cl := range m {
			if m[cl] > m[best] {
				best = cl
			}
		}
		if float64(best+1) == d.Y[i] {
			agree++
		}
	}
	if frac := float64(agree) / float64(d.X.Rows); frac < 0.9 {
		t.Errorf("argmax of the planted W matches %.3f of the labels, want > 0.9", frac)
	}
	if err := (GenConfig{Rows: 1, Features: 1, Density: 1, Task: Multiclass, Classes: 1}).Validate(); err == nil {
		t.Error("one class accepted")
	}
}
