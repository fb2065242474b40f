package main

import (
	"fmt"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

// methodFlags are train's choice of algorithm and metric.
func methodFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "method", EnvVars: envs("method"), Value: "auto",
			Usage: "the algorithm `M`: sgd (the paper's asynchronous proximal SGD with --step's policy), svrg (variance-reduced: every" +
				" epoch-equivalent of updates a snapshot x~ and its full gradient mu~ from all workers; each update steps along" +
				" g_B(x) - g_B(x~) + mu~ with a constant step, 1/L at first (L in the metric), grown while phi(x~) decreases and halved" +
				" when it rises, output the last iterate; --step const --alpha0 A fixes the step;" +
				" see README \"Choosing a method\") or auto (sgd when --step or --mode sync is given, else svrg)"},
		&cli.StringFlag{Name: "metric", EnvVars: envs("metric"), Value: "auto",
			Usage: "svrg's distance `D`: diag (D(u,x) = 1/2 sum_j c_j (u_j-x_j)^2, c_j = the loss's curvature times mean_i a_ij^2; same problem," +
				" per-coordinate steps alpha/c_j), none (Euclidean) or auto (diag when the RMS of the columns' nonzero entries differs by more" +
				" than a factor " + fmt.Sprint(solver.MetricSpread) + " between columns; separable regularizers only, ball/group/simplex keep theirs)"},
	}
}

// methodFrom reads methodFlags into cfg (after the step flags).
func methodFrom(c *cli.Context, cfg *ranks.Config) error {
	cfg.Step.Default = !c.IsSet("step")
	switch m := c.String("method"); m {
	case "auto":
		cfg.Method = solver.MethodSVRG
		if !cfg.Step.Default || cfg.Mode == algo.ModeSync {
			cfg.Method = solver.MethodSGD
		}
	default:
		var err error
		if cfg.Method, err = solver.ParseMethod(m); err != nil {
			return usagef("--method: %v (or auto)", err)
		}
	}
	var err error
	if cfg.Metric, err = solver.ParseMetricMode(c.String("metric")); err != nil {
		return usagef("--metric: %v", err)
	}
	return nil
}
