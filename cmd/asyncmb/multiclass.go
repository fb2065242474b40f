package main

import (
	"fmt"
	"io"

	"github.com/asyncmb/asyncmb/ranks"
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
