package main

import (
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/urfave/cli/v2"
)

func init() {
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

func predictAction(c *cli.Context) error {
	mp, dp := c.String("model"), c.String("data")
	if mp == "" || dp == "" {
		return usagef("--model FILE and --data FILE are required")
	}
	return ranks.Predict(c.App.Writer, mp, dp)
}
