package data

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// maxListedLabels is the number of distinct labels info lists one by one;
// beyond it the labels are summarized as regression targets.
const maxListedLabels = 10

// Info reads the LIBSVM file at path (with Options.Features features) and
// prints its description (WriteInfo) to w.
func Info(w io.Writer, path string, features int) error {
	d, err := Read(path, Options{Features: features})
	if err != nil {
		return err
	}
	hash, err := FileHash(path)
	if err != nil {
		return err
	}
	return WriteInfo(w, d, hash, features)
}

// WriteInfo prints the description of d (read with Options.Features
// features) for `asyncmb info`: size, hash, shape, density, the labels and
// their binary mapping.
func WriteInfo(w io.Writer, d *Dataset, hash string, features int) error {
	var b strings.Builder
	row := func(key, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", key, fmt.Sprintf(format, args...))
	}
	row("file", "%s", d.Path)
	row("size", "%d bytes (%s)", d.Size, HumanBytes(d.Size))
	row("sha256", "%s", hash)
	row("samples", "%d", d.X.Rows)
	if features > 0 {
		row("features", "%d (--features; largest index %d)", d.X.Cols, d.MaxIndex)
	} else {
		row("features", "%d (largest index)", d.MaxIndex)
	}
	nnz := d.X.NNZ()
	row("nonzeros", "%d", nnz)
	density := 0.0
	if d.X.Cols > 0 {
		density = float64(nnz) / float64(d.X.Rows) / float64(d.X.Cols)
	}
	row("density", "%.6g (%.2f nonzeros per row)", density, float64(nnz)/float64(d.X.Rows))

	counts := map[float64]int{}
	for _, y := range d.Y {
		counts[y]++
	}
	values := make([]float64, 0, len(counts))
	for v := range counts {
		values = append(values, v)
	}
	slices.Sort(values)
	integer := !slices.ContainsFunc(values, func(v float64) bool { return v != math.Trunc(v) })
	switch {
	case len(values) > 2 && integer && len(values) <= LabelCap:
		row("labels", "multiclass: %d labels: %s", len(values), classCounts(values, counts))
	case len(values) > maxListedLabels:
		row("labels", "regression: %d distinct targets, min %g, max %g, mean %.6g",
			len(values), values[0], values[len(values)-1], mean(d.Y))
	default:
		parts := make([]string, len(values))
		for i, v := range values {
			parts[i] = fmt.Sprintf("%g (%s)", v, plural(counts[v], "row"))
		}
		row("labels", "%s: %s", plural(len(values), "value"), strings.Join(parts, ", "))
	}
	m, err := BinaryMap(values)
	switch {
	case err == nil:
		row("binary", "%g -> -1, %g -> +1", m.Neg, m.Pos)
	case len(values) == 1:
		row("binary", "undefined: one class only (a test set can use its training set's mapping)")
	case len(values) > 2 && integer && len(values) <= LabelCap:
		row("binary", "none: %d classes (--loss logistic trains one softmax model, --multiclass ovr %d one-vs-rest problems;"+
			" a regression loss reads them as targets: min %g, max %g, mean %.6g)", len(values), len(values), values[0], values[len(values)-1], mean(d.Y))
	default:
		row("binary", "none: %d distinct labels (a classification loss needs exactly two, or more than two integer labels)", len(values))
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// plural formats n and a noun: "1 row", "2 rows".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func mean(y []float64) float64 {
	var s float64
	for _, v := range y {
		s += v
	}
	return s / float64(len(y))
}

// HumanBytes formats n bytes with a binary unit (KiB, MiB, ...).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	exp := min(int(math.Log(f)/math.Log(unit)), 6)
	return fmt.Sprintf("%.1f %ciB", f/math.Pow(unit, float64(exp)), "KMGTPE"[exp-1])
}

// maxListedClasses is the number of classes info lists with their counts.
const maxListedClasses = 20

// classCounts lists the first maxListedClasses values with their counts.
func classCounts(values []float64, counts map[float64]int) string {
	parts := make([]string, 0, min(len(values), maxListedClasses)+1)
	for _, v := range values[:min(len(values), maxListedClasses)] {
		parts = append(parts, fmt.Sprintf("%g (%s)", v, plural(counts[v], "row")))
	}
	if len(values) > maxListedClasses {
		parts = append(parts, fmt.Sprintf("... (%d more)", len(values)-maxListedClasses))
	}
	return strings.Join(parts, ", ")
}
