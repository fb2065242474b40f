package main

import (
	"github.com/asyncmb/asyncmb/solver/solverbench"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:  "rates",
		Usage: "fit the log-log slope of the averaged iterate's suboptimality against t for the convex and strongly convex schedules",
		Description: "Runs serial prox-SGD (P = 1, tau = 0) with the general convex schedule and the uniform average on\n" +
			"l1-logistic, and with the strongly convex schedule and the (t+t0)-weighted average on l2-logistic, records\n" +
			"the mean over --seeds runs of phi(average) - phi* at log-spaced t, and fits log(subopt) = a + s log(t) by least\n" +
			"squares over t in [--fit-from epochs, --epochs]. The theorems bound s by -1/2 and -1. The constant step\n" +
			"1/L with the uniform average is run alongside as a baseline (its slope flattens at its noise floor).\n" +
			"phi* comes from the reference cache (FISTA, computed and cached if missing).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Value: "testdata/a9a", Usage: "the LIBSVM `FILE` (binary labels)"},
			&cli.Float64Flag{Name: "lambda-convex", EnvVars: envs("lambda-convex"), Value: 1e-4, Usage: "the L1 weight `LAMBDA` of the convex run"},
			&cli.Float64Flag{Name: "lambda-strong", EnvVars: envs("lambda-strong"), Value: 1e-4, Usage: "the L2 weight `LAMBDA` (= mu) of the strongly convex run"},
			&cli.IntFlag{Name: "batch", EnvVars: envs("batch"), Value: 8, Usage: "the mini-batch size `B`"},
			&cli.Float64Flag{Name: "epochs", EnvVars: envs("epochs"), Value: 20, Usage: "run `E` epochs; the fit window ends there"},
			&cli.Float64Flag{Name: "fit-from", EnvVars: envs("fit-from"), Value: 1, Usage: "the fit window starts after `E` epochs"},
			&cli.IntFlag{Name: "points", EnvVars: envs("points"), Value: 30, Usage: "`N` log-spaced measurements from t = 100 to the end"},
			&cli.IntFlag{Name: "seeds", EnvVars: envs("seeds"), Value: 5, Usage: "average the suboptimality over `N` seeds"},
			cacheDirFlag(),
		},
		Action: benchRatesAction,
	})
}

func benchRatesAction(c *cli.Context) error {
	o := solverbench.RatesOptions{Data: c.String("data"), LambdaConvex: c.Float64("lambda-convex"), LambdaStrong: c.Float64("lambda-strong"),
		Batch: c.Int("batch"), Epochs: c.Float64("epochs"), FitFrom: c.Float64("fit-from"), Points: c.Int("points"), Seeds: c.Int("seeds")}
	if err := o.Validate(); err != nil {
		return fieldError("bench rates", err, nil)
	}
	var err error
	if o.CacheDir, err = cacheDir(c); err != nil {
		return err
	}
	return solverbench.Rates(o, c.App.Writer)
}
