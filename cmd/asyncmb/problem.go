package main

import (
	"math"
	"strings"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

// This file holds the flags every command that defines a problem shares
// (reference, sgd, train, the benches), the flags of the step-size policies,
// and the functions that turn them into plain configs and a solver.Problem.

// problemFlags are the problem-defining flags: data, loss, regularizer and
// its parameters, bias and dimension.
func problemFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", EnvVars: envs("data"), Usage: "the LIBSVM training file `FILE` (required)"},
		&cli.StringFlag{Name: "loss", EnvVars: envs("loss"), Value: "logistic",
			Usage: "the loss `L`: logistic (log(1+exp(-y m)), labels mapped to -1/+1), squared ((m-y)^2/2) or sqhinge (max(0,1-y m)^2)"},
		&cli.StringFlag{Name: "reg", EnvVars: envs("reg"), Value: "l1",
			Usage: "the regularizer `R`: " + strings.Join(solver.RegNames(), ", ") +
				" (l1: lambda||x||_1, l2: lambda/2||x||^2, elastic: lambda||x||_1+lambda2/2||x||^2, box: lo<=x<=hi, nonneg: x>=0," +
				" ball: ||x||_2<=radius, l1box: l1 plus box, group: lambda sum_g ||x_g||_2, simplex: x>=0, sum x=1 with the entropic mirror step)"},
		&cli.Float64Flag{Name: "lambda", EnvVars: envs("lambda"), Usage: "the weight `LAMBDA` >= 0 of l1, l2, elastic (its L1 part), l1box and group (required for them)"},
		&cli.Float64Flag{Name: "lambda2", EnvVars: envs("lambda2"), Usage: "the weight `LAMBDA2` >= 0 of elastic's (lambda2/2)||x||^2 (required for elastic)"},
		&cli.Float64Flag{Name: "lo", EnvVars: envs("lo"), Usage: "the lower bound `LO` of box and l1box (required for them)"},
		&cli.Float64Flag{Name: "hi", EnvVars: envs("hi"), Usage: "the upper bound `HI` of box and l1box (required for them)"},
		&cli.Float64Flag{Name: "radius", EnvVars: envs("radius"), Usage: "the radius `R` > 0 of ball (required for it)"},
		&cli.StringFlag{Name: "groups", EnvVars: envs("groups"),
			Usage: "the groups `SPEC` of group lasso (required for it): G for contiguous groups of G features (the last one shorter)," +
				" or sizes s1,s2,... adding up to the number of features; with --bias the bias is a group of its own"},
		&cli.BoolFlag{Name: "bias", EnvVars: envs("bias"), Usage: "append a constant-1 feature (an intercept); it is regularized like the other weights, as liblinear -B does"},
		&cli.IntFlag{Name: "features", EnvVars: envs("features"), Usage: "fix the dimension to `N` (an index beyond it is an error); 0: the largest index in the file"},
		&cli.StringFlag{Name: "multiclass", EnvVars: envs("multiclass"), Value: "softmax",
			Usage: "the model `M` of a file with K > 2 integer labels and --loss logistic: softmax (one multinomial model W, d x K)" +
				" or ovr (K binary one-vs-rest problems in the same run); a two-class file is always binary"},
	}
}

// problemConfigFrom reads and checks problemFlags; a missing or bad value is
// a usage error naming the flag.
func problemConfigFrom(c *cli.Context) (problem.Config, error) {
	pc := problem.Config{Data: c.String("data"), GroupSpec: c.String("groups"), Bias: c.Bool("bias"), Features: c.Int("features")}
	var err error
	if pc.Loss, err = kernels.ParseLoss(c.String("loss")); err != nil {
		return pc, usagef("--loss: %v", err)
	}
	kind, err := solver.ParseRegKind(c.String("reg"))
	if err != nil {
		return pc, usagef("--reg: %v", err)
	}
	pc.Reg.Kind = kind
	for _, n := range kind.Params() {
		if !c.IsSet(n) {
			return pc, usagef("--reg %s needs --%s", kind, n)
		}
		if v := c.Float64(n); math.IsNaN(v) || math.IsInf(v, 0) {
			return pc, usagef("--%s %v: want a finite number", n, v)
		}
	}
	pc.Reg.Lambda, pc.Reg.Lambda2 = c.Float64("lambda"), c.Float64("lambda2")
	pc.Reg.Lo, pc.Reg.Hi, pc.Reg.Radius = c.Float64("lo"), c.Float64("hi"), c.Float64("radius")
	if kind == solver.RegGroup && pc.GroupSpec == "" {
		return pc, usagef("--reg group needs --groups SPEC")
	}
	if pc.OVR, err = multiclassFrom(c); err != nil {
		return pc, err
	}
	return pc, problemError(pc.Validate())
}

// problemFields maps problem.Config's fields to their flags ("": the
// error says enough).
var problemFields = map[string]string{"GroupSpec": "groups", "Reg": ""}

// problemError is a problem.Config error as a usage error naming the flag
// (nil stays nil).
func problemError(err error) error {
	if err == nil {
		return nil
	}
	return fieldError("", err, problemFields)
}

// cacheDirFlag is the --cache-dir flag of the commands that read or write
// reference optima.
func cacheDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "cache-dir", EnvVars: envs("cache-dir"), DefaultText: "the user cache directory/asyncmb",
		Usage: "the `DIR` of cached reference optima phi* (one small JSON file per problem, keyed by the data's SHA-256 and the problem)"}
}

// cacheDir resolves --cache-dir (problem.CacheDir).
func cacheDir(c *cli.Context) (string, error) { return problem.CacheDir(c.String("cache-dir")) }

// stepFlags are the flags of the step-size policy, the mini-batch and the
// averaging, with the default mini-batch size batch (sgd: 8, train: 64).
func stepFlags(batch int) []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "batch", EnvVars: envs("batch"), Value: batch, Usage: "the mini-batch size `B` >= 1"},
		&cli.StringFlag{Name: "step", EnvVars: envs("step"), Value: "convex",
			Usage: "the step-size policy `P`: const (alpha0), invsqrt (alpha0/sqrt(t+1)), convex (1/(L (tau+1)^2 + beta sqrt(t+1))," +
				" beta = sigma/(R sqrt(B))) or strong (1/(mu (t+t0)), t0 = L (tau+1)^2/mu)"},
		&cli.Float64Flag{Name: "alpha0", EnvVars: envs("alpha0"), Usage: "the step `ALPHA0` > 0 of const and invsqrt (required for them)"},
		&cli.Float64Flag{Name: "lipschitz", EnvVars: envs("lipschitz"),
			Usage: "the Lipschitz constant `L` of grad f; 0: estimated by the power method on A^T A/n times the loss's curvature (1/4 logistic, 1 squared, 2 sqhinge)"},
		&cli.Float64Flag{Name: "sigma", EnvVars: envs("sigma"),
			Usage: "the per-sample gradient noise `SIGMA` of convex; 0: estimated at the starting point (sgd: from 32 mini-batches; train: exactly, from every row of the shards)"},
		&cli.Float64Flag{Name: "dist", EnvVars: envs("dist"), Usage: "the distance bound `R` >= ||x0 - x*|| of convex; 0: sqrt(d), i.e. x* assumed to have coordinates of size about 1"},
		&cli.Float64Flag{Name: "mu", EnvVars: envs("mu"), Usage: "the strong-convexity modulus `MU` of strong; 0: the regularizer's (lambda for l2, lambda2 for elastic)"},
		&cli.IntFlag{Name: "tau", EnvVars: envs("tau"), Value: -1, Usage: "the delay bound `TAU` in the convex and strong step sizes; -1: the number of workers (0 for serial sgd)"},
		&cli.Float64Flag{Name: "tau0", EnvVars: envs("tau0"), Usage: "> 0 makes the step delay-adaptive: the step of an update with delay tau(t) is alpha(t)/(1 + tau(t)/`TAU0`)"},
		&cli.StringFlag{Name: "average", EnvVars: envs("average"), Value: "auto",
			Usage: "the output `A`: last, uniform, weighted ((t+t0)-weighted), tail (the last half or more, restarted at powers of two) or auto (weighted for strong, else uniform)"},
		&cli.Uint64Flag{Name: "seed", EnvVars: envs("seed"), Value: 1, Usage: "the `SEED` of the mini-batch sampling and the estimates"},
	}
}

// stepKindFrom reads --step and checks the numeric step flags (shared by
// sgd's stepConfigFrom and train's stepSpecFrom).
func stepKindFrom(c *cli.Context) (solver.StepKind, error) {
	kind, err := solver.ParseStepKind(c.String("step"))
	if err != nil {
		return kind, usagef("--step: %v", err)
	}
	for _, n := range []string{"alpha0", "lipschitz", "sigma", "dist", "mu", "tau0"} {
		if v := c.Float64(n); !(v >= 0) || math.IsInf(v, 0) {
			return kind, usagef("--%s %v: want a finite number >= 0", n, v)
		}
	}
	return kind, nil
}

// stepConfig is the validated content of stepFlags (estimates resolved).
type stepConfig struct {
	Batch    int
	Schedule solver.Schedule
	Average  solver.Averager
	Seed     uint64
	Sigma, R float64 // as used by convex (0 otherwise)
}

// stepConfigFrom reads stepFlags for problem p; defaultTau is the delay
// bound when --tau is -1 (0 for serial SGD, the number of workers for the
// asynchronous algorithm). L and sigma are estimated where not given.
func stepConfigFrom(c *cli.Context, p *solver.Problem, defaultTau int) (stepConfig, error) {
	sc := stepConfig{Batch: c.Int("batch"), Seed: c.Uint64("seed")}
	if sc.Batch < 1 {
		return sc, usagef("--batch %d: want B >= 1", sc.Batch)
	}
	tau := c.Int("tau")
	switch {
	case tau == -1:
		tau = defaultTau
	case tau < 0:
		return sc, usagef("--tau %d: want TAU >= 0 (or -1 for the default)", tau)
	}
	kind, err := stepKindFrom(c)
	if err != nil {
		return sc, err
	}
	_, d := p.Dims()
	L := c.Float64("lipschitz")
	if L == 0 && (kind == solver.StepConvex || kind == solver.StepStrong) {
		L = p.EstimateL(100, sc.Seed)
	}
	spec := solver.ScheduleSpec{Kind: kind, Alpha0: c.Float64("alpha0"), R: c.Float64("dist"), Mu: c.Float64("mu"),
		Tau0: c.Float64("tau0"), Average: c.String("average")}
	if a := spec.Average; a != "auto" {
		if _, err := solver.ParseAvgKind(a); err != nil {
			return sc, usagef("--average: %v", err)
		}
	}
	switch kind {
	case solver.StepConst, solver.StepInvSqrt:
		if !c.IsSet("alpha0") || c.Float64("alpha0") == 0 {
			return sc, usagef("--step %s needs --alpha0 > 0", kind)
		}
	case solver.StepConvex:
		x0 := make([]float64, d)
		p.Reg.Init(x0)
		sc.Sigma = c.Float64("sigma")
		if sc.Sigma == 0 {
			sc.Sigma = p.EstimateSigma(x0, sc.Batch, 32, sc.Seed)
		}
		if sc.R = spec.R; sc.R == 0 {
			sc.R = math.Sqrt(float64(d))
		}
	case solver.StepStrong:
		if spec.Mu == 0 && p.Reg.Mu() == 0 {
			return sc, usagef("--step strong needs a strongly convex regularizer (l2, elastic with lambda2 > 0) or --mu > 0")
		}
	}
	sc.Schedule, sc.Average, err = solver.BuildSchedule(spec, solver.ScheduleFacts{L: L, Sigma: sc.Sigma, Tau: tau, Batch: sc.Batch, D: d, Reg: p.Reg})
	if err != nil {
		return sc, usagef("%v", err)
	}
	return sc, nil
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
