package main

import (
	"errors"

	"github.com/asyncmb/asyncmb/study"
	"github.com/urfave/cli/v2"
)

// figuresFlag is train's --figures (not forwarded to the ranks).
func figuresFlag() cli.Flag {
	return &cli.BoolFlag{Name: "figures", EnvVars: envs("figures"), Value: true,
		Usage: "draw the run's figures into --out after it (subopt_time, subopt_updates, delay_hist; PNG and SVG); --figures=false: none"}
}

func init() {
	register(&cli.Command{
		Name: "plot", ArgsUsage: "DIR", Usage: "redraw the figures of a finished training run (train --out DIR) or sweep (scale --out DIR)",
		Description: "A sweep's directory (scale.csv) gets subopt_time, subopt_updates, speedup, delay_hist, async_vs_sync and\n" +
			"heterogeneity; a run's (trace.csv, summary.json) gets subopt_time, subopt_updates and delay_hist. PNG and SVG each.",
		Action: plotAction,
	})
}

func plotAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("plot takes one directory, got %d arguments", c.NArg())
	}
	if err := study.Plot(c.Args().First(), c.App.Writer); errors.Is(err, study.ErrNoRun) {
		return usageError{err}
	} else {
		return err
	}
}
