package data

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// ClassMap maps K >= 2 distinct raw labels to the class indices 0..K-1:
// Labels[c] is the raw label of class c. NewClassMap keeps the order it is
// given; LIBLINEAR numbers classes in the order of their first appearance
// in the training file (LabelsFirstSeen), and so do we, so that the label
// line of a model file is the one liblinear-train writes.
type ClassMap struct{ Labels []float64 }

// K is the number of classes.
func (m ClassMap) K() int { return len(m.Labels) }

func (m ClassMap) String() string {
	parts := make([]string, len(m.Labels))
	for c, v := range m.Labels {
		parts[c] = fmt.Sprintf("%g -> %d", v, c)
	}
	return strings.Join(parts, ", ")
}

// NewClassMap checks a class map's labels: at least two, distinct, and
// integers (a file whose labels have fractions holds regression targets),
// at most LabelCap of them.
func NewClassMap(labels []float64) (ClassMap, error) {
	switch {
	case len(labels) < 2:
		return ClassMap{}, fmt.Errorf("%w: %d distinct labels; a classification loss needs at least two classes", ErrLabels, len(labels))
	case len(labels) > LabelCap:
		return ClassMap{}, fmt.Errorf("%w: more than %d distinct labels; these look like regression targets (use a regression loss)", ErrLabels, LabelCap)
	}
	seen := make(map[float64]bool, len(labels))
	for _, v := range labels {
		if v != math.Trunc(v) {
			return ClassMap{}, fmt.Errorf("%w: label %g is not an integer; these look like regression targets (use a regression loss)", ErrLabels, v)
		}
		if seen[v] {
			return ClassMap{}, fmt.Errorf("%w: label %g listed twice in a class map", ErrLabels, v)
		}
		seen[v] = true
	}
	return ClassMap{Labels: slices.Clone(labels)}, nil
}

// Index returns the class of raw label v, and false if v is none of them.
func (m ClassMap) Index(v float64) (int, bool) {
	for c, l := range m.Labels {
		if l == v {
			return c, true
		}
	}
	return 0, false
}

// ApplyClasses maps Y in place to class indices (as float64). A label that
// is not in m is an error (ErrLabels) naming its row, and Y is left
// unchanged.
func (d *Dataset) ApplyClasses(m ClassMap) error {
	idx := make(map[float64]float64, len(m.Labels))
	for c, l := range m.Labels {
		idx[l] = float64(c)
	}
	for i, y := range d.Y {
		if _, ok := idx[y]; !ok {
			return fmt.Errorf("%w: %s: row %d has label %g, which is none of the %d classes %v",
				ErrLabels, d.Path, i+1, y, len(m.Labels), m.Labels)
		}
	}
	for i, y := range d.Y {
		d.Y[i] = idx[y]
	}
	return nil
}

// LabelsFirstSeen returns the distinct raw labels in the order of their
// first appearance (LIBLINEAR's class order), stopping after LabelCap+1 of
// them as LabelValues does. Concatenating the shards' lists in shard order
// and dropping repeats (MergeFirstSeen) gives the whole file's list.
func (d *Dataset) LabelsFirstSeen() []float64 {
	var vals []float64
	seen := map[float64]struct{}{}
	for _, y := range d.Y {
		if len(vals) <= 4 && slices.Contains(vals, y) {
			continue
		}
		if _, ok := seen[y]; ok {
			continue
		}
		seen[y] = struct{}{}
		vals = append(vals, y)
		if len(vals) > LabelCap {
			break
		}
	}
	return vals
}

// MergeFirstSeen concatenates lists of labels in order, keeping the first
// occurrence of each value.
func MergeFirstSeen(lists ...[]float64) []float64 {
	var out []float64
	seen := map[float64]bool{}
	for _, l := range lists {
		for _, v := range l {
			if v == 0 {
				v = 0 // -0 and +0 are one label
			}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// ToClasses is NewClassMap(LabelsFirstSeen()) followed by ApplyClasses.
func (d *Dataset) ToClasses() (ClassMap, error) {
	m, err := NewClassMap(MergeFirstSeen(d.LabelsFirstSeen()))
	if err != nil {
		return m, fmt.Errorf("%s: %w", d.Path, err)
	}
	return m, d.ApplyClasses(m)
}
