package main

import (
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name: "info", ArgsUsage: "FILE", Usage: "describe a LIBSVM file: samples, features, nonzeros, density, labels and their -1/+1 mapping, size and SHA-256",
		Description: "Reads the whole file (and checks every token: a defect is reported as FILE:LINE:COL and exit code 1).\n" +
			"Labels: up to 10 distinct values are listed with their counts; two values give the binary mapping\n" +
			"a classification loss uses (smaller -> -1, larger -> +1); more than two integer labels are a multiclass file\n" +
			"(\"multiclass: K labels\", the first 20 listed with their counts); non-integer targets are reported as\n" +
			"regression targets.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "features", EnvVars: envs("features"), Usage: "fix the dimension to `N` (an index beyond it is an error); 0: the largest index in the file"},
		},
		Action: infoAction,
	})
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
	register(&cli.Command{
		Name: "predict", ArgsUsage: " ", Usage: "score a model (asyncmb's or liblinear-train's) on a LIBSVM file: accuracy, log-loss, AUC or RMSE",
		Description: "Reads a linear model in LIBLINEAR's format and a LIBSVM test file (features beyond the model's are\n" +
			"ignored, as liblinear-predict does). Classification models: accuracy, log-loss (logistic models) and AUC;\n" +
			"K-class models (nr_class K > 2, predicting the argmax class): accuracy, per-class precision and recall,\n" +
			"the confusion matrix and the multinomial log-loss (of the softmax of the K scores); regression models\n" +
			"(squared loss): RMSE.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", EnvVars: envs("model"), Usage: "the model `FILE` (required)"},
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Usage: "the LIBSVM test `FILE` (required)"},
		},
		Action: predictAction,
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
	return data.Info(c.App.Writer, c.Args().First(), features)
}

// genAction writes the data set the flags describe (usage errors for bad
// values).
func genAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("gen: unexpected arguments %v (use --out FILE)", c.Args().Slice())
	}
	task, err := data.ParseTask(c.String("task"))
	if err != nil {
		return usagef("gen: --task: %v", err)
	}
	cfg := data.GenConfig{Rows: c.Int("rows"), Features: c.Int("features"), Density: c.Float64("density"), Zipf: c.Float64("zipf"), Task: task,
		Classes: c.Int("classes"), Noise: c.Float64("noise"), Seed: c.Uint64("seed"), Digits: c.Int("digits")}
	if cfg.Digits < 1 {
		return usagef("gen: --digits %d: want 1..17", cfg.Digits)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	return data.GenerateFile(cfg, c.String("out"), c.App.Writer, c.App.ErrWriter)
}

func predictAction(c *cli.Context) error {
	mp, dp := c.String("model"), c.String("data")
	if mp == "" || dp == "" {
		return usagef("--model FILE and --data FILE are required")
	}
	return ranks.Predict(c.App.Writer, mp, dp)
}
