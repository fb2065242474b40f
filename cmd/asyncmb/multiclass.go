package main

import (
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
