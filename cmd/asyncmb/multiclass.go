package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

// multiclassFlag is --multiclass, shared by the problem-defining commands.
func multiclassFlag() cli.Flag {
	return &cli.StringFlag{Name: "multiclass", EnvVars: envs("multiclass"), Value: "softmax",
		Usage: "the model `M` of a file with K > 2 integer labels and --loss logistic: softmax (one multinomial model W, d x K)" +
			" or ovr (K binary one-vs-rest problems in the same run); a two-class file is always binary"}
}

// multiclassFrom reads --multiclass: true for ovr.
func multiclassFrom(c *cli.Context) (bool, error) {
	switch v := c.String("multiclass"); v {
	case "softmax":
		return false, nil
	case "ovr":
		return true, nil
	default:
		return false, usagef("--multiclass %q: want softmax or ovr", v)
	}
}

// multiclassLabels decides whether ds is a K-class file (more than two
// distinct labels) for a classification loss; if so it maps the labels to
// class indices in LIBLINEAR's order (first appearance) and returns the map.
func multiclassLabels(ds *data.Dataset, loss kernels.Loss) (data.ClassMap, bool, error) {
	labels := ds.LabelsFirstSeen()
	if len(labels) <= 2 {
		return data.ClassMap{}, false, nil
	}
	if loss != kernels.Logistic {
		return data.ClassMap{}, false, fmt.Errorf("%s: %d distinct labels: the %v loss is binary only; train K classes with --loss logistic (softmax or --multiclass ovr), or use --loss squared for regression targets",
			ds.Path, len(labels), loss)
	}
	cm, err := data.NewClassMap(labels)
	if err != nil {
		return cm, false, fmt.Errorf("%s: %w", ds.Path, err)
	}
	return cm, true, ds.ApplyClasses(cm)
}

// multiOf is the K-class loss of a problem config for K classes.
func (pc problemConfig) multiOf(k int) kernels.Multi { return kernels.Multi{K: k, OVR: pc.OVR} }

// loadMulti builds the K-class problem of lp (labels already mapped): W is
// features x K, flat; group lasso groups are given over features and cover
// the K weights of each of their features.
func (pc problemConfig) loadMulti(lp *loadedProblem) error {
	ds := lp.Data
	a := &ds.X
	reg := pc.Reg
	mc := pc.multiOf(lp.Classes.K())
	if reg.Kind == solver.RegGroup {
		g, err := solver.ParseGroups(pc.GroupSpec, a.Cols)
		if err != nil {
			return usagef("--groups: %v", err)
		}
		if pc.Bias {
			g = append(g, a.Cols+1)
		}
		reg.Groups = solver.ScaleGroups(g, mc.K)
	}
	if pc.Bias {
		a = solver.AppendBias(a)
	}
	p, err := solver.NewMultiProblem(a, ds.Y, mc, reg, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	lp.Problem = p
	lp.Key = solver.MultiProblemKey(lp.Hash, a.Cols, pc.Bias, mc, reg)
	return nil
}

// printMulti prints a K-class model's figures after the accuracy: the
// multinomial log-loss, per-class precision and recall, and the confusion
// matrix (rows: true class, columns: predicted).
func printMulti(w io.Writer, res ranks.Metrics) {
	fmt.Fprintf(w, "log-loss  %.6g (multinomial, softmax of the scores)\n", res.LogLoss)
	fmt.Fprintf(w, "%-10s %9s %9s %7s\n", "class", "precision", "recall", "rows")
	for c, l := range res.Labels {
		rows := 0
		for _, v := range res.Confusion[c] {
			rows += v
		}
		fmt.Fprintf(w, "%-10g %9.4f %9.4f %7d\n", l, res.Precision[c], res.Recall[c], rows)
	}
	fmt.Fprintf(w, "confusion (rows: true class, columns: predicted)\n%-8s", "")
	for _, l := range res.Labels {
		fmt.Fprintf(w, " %6g", l)
	}
	fmt.Fprintln(w)
	for c, l := range res.Labels {
		fmt.Fprintf(w, "%-8g", l)
		for _, v := range res.Confusion[c] {
			fmt.Fprintf(w, " %6d", v)
		}
		fmt.Fprintln(w)
	}
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
