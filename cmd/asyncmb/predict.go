package main

import (
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name:      "predict",
		Usage:     "score a model (asyncmb's or liblinear-train's) on a LIBSVM file: accuracy, log-loss, AUC or RMSE",
		ArgsUsage: " ",
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

func predictAction(c *cli.Context) error {
	mp, dp := c.String("model"), c.String("data")
	if mp == "" || dp == "" {
		return usagef("--model FILE and --data FILE are required")
	}
	m, err := ranks.ReadModel(mp)
	if err != nil {
		return err
	}
	ds, err := data.Read(dp, data.Options{})
	if err != nil {
		return err
	}
	res, err := m.Evaluate(&ds.X, ds.Y)
	if err != nil {
		return fmt.Errorf("%s: %w", dp, err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "model     %s (%v, %d features, bias %v)\n", mp, m.Loss, m.Features, m.Bias)
	fmt.Fprintf(w, "data      %s (%d rows)\n", dp, res.Rows)
	if !m.Loss.Classification() {
		fmt.Fprintf(w, "rmse      %.6g\n", res.RMSE)
		return nil
	}
	fmt.Fprintf(w, "accuracy  %.4f%% (%d/%d)\n", 100*res.Accuracy, int(math.Round(res.Accuracy*float64(res.Rows))), res.Rows)
	if m.Classes > 0 {
		printMulti(w, res)
		return nil
	}
	if !math.IsNaN(res.LogLoss) {
		fmt.Fprintf(w, "log-loss  %.6g\n", res.LogLoss)
	}
	fmt.Fprintf(w, "auc       %.6g\n", res.AUC)
	return nil
}
