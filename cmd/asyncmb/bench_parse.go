package main

import (
	"os"

	"github.com/asyncmb/asyncmb/data/parsebench"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:      "parse",
		Usage:     "time the LIBSVM reader against scikit-learn's load_svmlight_file on the same files, in the same run",
		ArgsUsage: "[FILE...]",
		Description: "For each FILE (default testdata/a9a testdata/rcv1_small) it times data.Read with one goroutine and\n" +
			"with GOMAXPROCS goroutines, then runs bench/svmlight_sklearn.py under Debian's python3 timing\n" +
			"sklearn.datasets.load_svmlight_file on the same file. Every figure is the best of --reps reads from\n" +
			"the page cache after one warm-up; MB/s is the file size over that time. It checks that both parsers\n" +
			"read the same rows, nonzeros, largest index and sums, and prints the ratios to sklearn.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "reps", Value: 5, EnvVars: envs("reps"), Usage: "timed reads `N` per parser and file (>= 1)"},
			&cli.StringFlag{Name: "python", Value: "/usr/bin/python3", EnvVars: envs("python"), Usage: "`PYTHON` with numpy, scipy and sklearn (Debian: python3-sklearn)"},
			&cli.StringFlag{Name: "sklearn-script", Value: "bench/svmlight_sklearn.py", EnvVars: envs("sklearn-script"), Usage: "the baseline script `FILE` (relative to the repository root)"},
		},
		Action: benchParseAction,
	})
}

func benchParseAction(c *cli.Context) error {
	o := parsebench.Options{Files: c.Args().Slice(), Reps: c.Int("reps"), Python: c.String("python"), Script: c.String("sklearn-script")}
	if err := o.Validate(); err != nil {
		return fieldError("bench parse", err, nil)
	}
	if len(o.Files) == 0 {
		o.Files = []string{"testdata/a9a", "testdata/rcv1_small"}
	}
	if _, err := os.Stat(o.Script); err != nil {
		return usagef("bench parse: baseline script: %v (run from the repository root or set --sklearn-script)", err)
	}
	return parsebench.Run(o, c.App.Writer)
}
