package main

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/kernels/kernelbench"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:  "kernels",
		Usage: "time the loss/gradient kernels on a9a, rcv1_small and a dense matrix against scipy.sparse and numpy",
		Description: "Loads a9a and rcv1_small from --data-dir and builds a random dense matrix (--dense), times\n" +
			"A x, A^T r (one goroutine and --workers goroutines), the logistic mini-batch gradient\n" +
			"(b = 64 and 256, dense and sparse output) and the full loss+gradient, each as the median of\n" +
			"--reps runs after --warmup runs, and prints ns per stored entry, GB/s of data the kernel must\n" +
			"move, and the ratio of that to the streaming-read bandwidth measured in the same run by\n" +
			"summing a 128 MiB array. Then it runs --script with --python (Debian's python3 with\n" +
			"scipy, numpy and scikit-learn) on the same files and shape, with OPENBLAS_CORETYPE and\n" +
			"OPENBLAS_L2_SIZE removed from its environment, and prints our time / theirs for each\n" +
			"product (below 1: we are faster). All this is repeated --rounds times and each figure is\n" +
			"the smallest median of the rounds. Without python or scipy it says so and prints our\n" +
			"figures only.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: "testdata", EnvVars: envs("data-dir"), Usage: "read a9a and rcv1_small from `DIR`"},
			&cli.StringFlag{Name: "dense", Value: "4096x1024", EnvVars: envs("dense"), Usage: "shape `ROWSxCOLS` of the random dense matrix"},
			&cli.IntFlag{Name: "reps", Value: 200, EnvVars: envs("reps"), Usage: "timed repetitions `N` per kernel (the median is reported)"},
			&cli.IntFlag{Name: "rounds", Value: 3, EnvVars: envs("rounds"), Usage: "rounds `N` of (all kernels, then the baseline); the smallest median of the rounds is shown"},
			&cli.IntFlag{Name: "warmup", Value: 5, EnvVars: envs("warmup"), Usage: "untimed runs `N` before the timed ones"},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), DefaultText: "number of CPUs", EnvVars: envs("workers"), Usage: "goroutines `N` for the parallel products and the full gradient"},
			&cli.StringFlag{Name: "python", Value: "/usr/bin/python3", EnvVars: envs("python"), Usage: "python interpreter `PATH` for the scipy/numpy baseline; empty: skip the baseline"},
			&cli.StringFlag{Name: "script", EnvVars: envs("script"), DefaultText: "bench/kernels_scipy.py, else ../bench/kernels_scipy.py next to the binary", Usage: "baseline script `PATH`"},
		},
		Action: benchKernelsAction,
	})
}

func benchKernelsAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("bench kernels: takes no arguments, got %q", c.Args().Slice())
	}
	cfg := kernelbench.Options{Reps: c.Int("reps"), Warmup: c.Int("warmup"), Rounds: c.Int("rounds"),
		Workers: c.Int("workers"), Python: c.String("python"), Script: c.String("script")}
	var err error
	if cfg.DenseRows, cfg.DenseCols, err = kernelbench.ParseShape(c.String("dense")); err != nil {
		return usagef("bench kernels: --dense %q: %v", c.String("dense"), err)
	}
	if err := cfg.Validate(); err != nil {
		return fieldError("bench kernels", err, nil)
	}
	if cfg.Python != "" && cfg.Script == "" {
		cfg.Script = kernelbench.FindScript("bench/kernels_scipy.py")
	}
	for _, name := range []string{"a9a", "rcv1_small"} {
		path := filepath.Join(c.String("data-dir"), name)
		ds, err := data.Read(path, data.Options{})
		if err != nil {
			return fmt.Errorf("bench kernels: %w", err)
		}
		if _, err := ds.ToBinary(); err != nil {
			return fmt.Errorf("bench kernels: %s: %w", path, err)
		}
		cfg.Cases = append(cfg.Cases, kernelbench.Case{Name: name, Path: path, M: kernels.Matrix{CSR: &ds.X}, Y: ds.Y})
	}
	return kernelbench.Run(cfg, c.App.Writer)
}
