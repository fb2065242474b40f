package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/asyncmb/asyncmb/data"
	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name:      "info",
		Usage:     "describe a LIBSVM file: samples, features, nonzeros, density, labels and their -1/+1 mapping, size and SHA-256",
		ArgsUsage: "FILE",
		Description: "Reads the whole file (and checks every token: a defect is reported as FILE:LINE:COL and exit code 1).\n" +
			"Labels: up to 10 distinct values are listed with their counts; two values give the binary mapping\n" +
			"a classification loss uses (smaller -> -1, larger -> +1); more than two integer labels are a multiclass file\n" +
			"(\"multiclass: K labels\", the first 20 listed with their counts); non-integer targets are reported as\n" +
			"regression targets.",
		Flags: []cli.Flag{
			&cli.IntFlag{
				Name:    "features",
				EnvVars: envs("features"),
				Usage:   "fix the dimension to `N` (an index beyond it is an error); 0: the largest index in the file",
			},
		},
		Action: infoAction,
	})
}

func infoAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("info: want exactly one FILE, got %d arguments", c.NArg())
	}
	features := c.Int("features")
	if features < 0 {
		return usagef("info: --features %d: want N >= 0", features)
	}
	path := c.Args().First()
	d, err := data.Read(path, data.Options{Features: features})
	if err != nil {
		return err
	}
	hash, err := data.FileHash(path)
	if err != nil {
		return err
	}
	return writeInfo(c.App.Writer, d, hash, features)
}

// maxListedLabels is the number of distinct labels info lists one by one;
// beyond it the labels are summarized as regression targets.
const maxListedLabels = 10

// writeInfo prints the description of d (read with --features features).
func writeInfo(w io.Writer, d *data.Dataset, hash string, features int) error {
	var b strings.Builder
	row := func(key, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s %s\n", key, fmt.Sprintf(format, args...))
	}
	row("file", "%s", d.Path)
	row("size", "%d bytes (%s)", d.Size, humanBytes(d.Size))
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
	case len(values) > 2 && integer && len(values) <= data.LabelCap:
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
	m, err := data.BinaryMap(values)
	switch {
	case err == nil:
		row("binary", "%g -> -1, %g -> +1", m.Neg, m.Pos)
	case len(values) == 1:
		row("binary", "undefined: one class only (a test set can use its training set's mapping)")
	case len(values) > 2 && integer && len(values) <= data.LabelCap:
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

// humanBytes formats n bytes with a binary unit (KiB, MiB, ...).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	exp := min(int(math.Log(f)/math.Log(unit)), 6)
	return fmt.Sprintf("%.1f %ciB", f/math.Pow(unit, float64(exp)), "KMGTPE"[exp-1])
}
