package main

import (
	"github.com/asyncmb/asyncmb/data"
	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name:  "gen",
		Usage: "write a synthetic LIBSVM data set (sparse or dense, classification or regression, Zipf feature popularity)",
		Description: "Each row has about density*features nonzeros drawn with popularity j^-zipf for feature j\n" +
			"(0: uniform, 1: like words in text), N(0,1) values scaled to unit norm; labels come from a\n" +
			"planted N(0,1) model plus Gaussian noise: sign(x.w + noise*N(0,1)) for classification (-1/+1),\n" +
			"x.w + noise*N(0,1) for regression, the argmax over c of x.W_c + noise*N(0,1) for multiclass (labels\n" +
			"1..K, W a planted N(0,1) features x K matrix). --density 1 writes dense rows. The output depends only on the\n" +
			"flags (the same seed gives the same bytes). --out is written to FILE.tmp and renamed when complete.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "rows", Value: 10000, EnvVars: envs("rows"), Usage: "number of samples `N` (>= 1)"},
			&cli.IntFlag{Name: "features", Value: 1000, EnvVars: envs("features"), Usage: "dimension `D` (>= 1)"},
			&cli.Float64Flag{Name: "density", Value: 0.01, EnvVars: envs("density"), Usage: "expected fraction `F` of nonzeros per row, 0 < F <= 1 (1: dense)"},
			&cli.Float64Flag{Name: "zipf", Value: 0, EnvVars: envs("zipf"), Usage: "feature popularity exponent `S` in [0, 10]: feature j is drawn with weight j^-S"},
			&cli.StringFlag{Name: "task", Value: "classification", EnvVars: envs("task"), Usage: "`TASK`: classification (labels -1/+1), regression or multiclass (labels 1..K, the argmax of K noisy planted margins)"},
			&cli.IntFlag{Name: "classes", Value: 10, EnvVars: envs("classes"), Usage: "the number of classes `K` (2..1000) of --task multiclass"},
			&cli.Float64Flag{Name: "noise", Value: 0.1, EnvVars: envs("noise"), Usage: "standard deviation `SIGMA` >= 0 of the Gaussian noise added to the planted margin"},
			&cli.Uint64Flag{Name: "seed", Value: 1, EnvVars: envs("seed"), Usage: "random seed `SEED`"},
			&cli.IntFlag{Name: "digits", Value: 6, EnvVars: envs("digits"), Usage: "significant digits `K` of values and targets, 1..17"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, EnvVars: envs("out"), Usage: "write to `FILE` instead of standard output"},
		},
		Action: genAction,
	})
}

// genFlags builds the generator config from the flags (usage errors for
// bad values).
func genFlags(c *cli.Context) (data.GenConfig, error) {
	if c.NArg() != 0 {
		return data.GenConfig{}, usagef("gen: unexpected arguments %v (use --out FILE)", c.Args().Slice())
	}
	task, err := data.ParseTask(c.String("task"))
	if err != nil {
		return data.GenConfig{}, usagef("gen: --task: %v", err)
	}
	cfg := data.GenConfig{
		Rows:     c.Int("rows"),
		Features: c.Int("features"),
		Density:  c.Float64("density"),
		Zipf:     c.Float64("zipf"),
		Task:     task,
		Classes:  c.Int("classes"),
		Noise:    c.Float64("noise"),
		Seed:     c.Uint64("seed"),
		Digits:   c.Int("digits"),
	}
	if cfg.Digits < 1 {
		return cfg, usagef("gen: --digits %d: want 1..17", cfg.Digits)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("%v", err)
	}
	return cfg, nil
}

func genAction(c *cli.Context) error {
	cfg, err := genFlags(c)
	if err != nil {
		return err
	}
	return data.GenerateFile(cfg, c.String("out"), c.App.Writer, c.App.ErrWriter)
}
