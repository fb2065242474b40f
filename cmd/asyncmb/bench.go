package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/comm/commbench"
	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/data/parsebench"
	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/kernels/kernelbench"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/ranks/trainbench"
	"github.com/asyncmb/asyncmb/sim/simbench"
	"github.com/asyncmb/asyncmb/solver/solverbench"
	"github.com/asyncmb/asyncmb/study"
	"github.com/urfave/cli/v2"
)

func init() {
	registerBench(&cli.Command{
		Name:  "comm",
		Usage: "time our TCP communicator against raw TCP and Open MPI, with ranks as local processes",
		Description: "Launches ranks as local processes over loopback (as `asyncmb train --np N` will) and\n" +
			"measures, in one run: ping-pong round trips of 8 B to 4 MiB (p50/p99) and one-way\n" +
			"throughput of 4 MiB messages between ranks 0 and 1, each next to the same exchange on a\n" +
			"plain TCP connection (net.Conn, no framing) between the same two processes; Bcast and\n" +
			"Allreduce of --n float64 for every --np, each next to Open MPI's (bench/mpi/collectives.c\n" +
			"built with mpicc and run with mpirun --mca btl tcp,self) when mpicc and mpirun are found;\n" +
			"and the wire size and speed of each codec on realistic payloads (dense and L1-sparse\n" +
			"logistic-regression iterates and a mini-batch gradient on rcv1-like synthetic data).\n" +
			"It prints every figure with its ratio to the baseline and checks the targets.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "np", Value: "2,4,8", EnvVars: envs("np"), Usage: "comma-separated numbers of ranks `N,...` for the collectives (each >= 2); the first run also does the point-to-point part"},
			&cli.StringFlag{Name: "codec", Value: "s2", EnvVars: envs("codec"), Usage: "compression `CODEC` of the communicator: none, s2 or zstd"},
			&cli.IntFlag{Name: "n", Value: 1 << 20, EnvVars: envs("n"), Usage: "float64 `COUNT` of the Bcast and Allreduce vectors"},
			&cli.IntFlag{Name: "reps", Value: 20, EnvVars: envs("reps"), Usage: "timed repetitions `N` of each collective (p50 reported)"},
			&cli.IntFlag{Name: "rounds", Value: 3, EnvVars: envs("rounds"), Usage: "alternating rounds `N` of ours and Open MPI's collectives per rank count (medians and the median per-round ratio are reported)"},
			&cli.StringFlag{Name: "mpi", Value: "auto", EnvVars: envs("mpi"), Usage: "Open MPI baseline `MODE`: auto (when mpicc and mpirun are found), on (fail without them) or off"},
			&cli.StringFlag{Name: "bind", Value: "127.0.0.1", EnvVars: envs("bind"), Usage: "local `ADDRESS` or interface name the ranks listen and dial on (multi-homed hosts)"},
			&cli.StringFlag{Name: "mpi-src", EnvVars: envs("mpi-src"), DefaultText: "bench/mpi/collectives.c, else ../bench/mpi/collectives.c next to the binary", Usage: "C source `PATH` of the Open MPI baseline"},
		},
		Action: benchCommAction,
	})
	registerBench(&cli.Command{
		Name: "comm-rank", Hidden: true,
		Usage: "one rank of `asyncmb bench comm` (started by it, identity from the environment)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "pt2pt", EnvVars: envs("pt2pt"), Usage: "run the point-to-point part (ranks 0 and 1)"},
			&cli.BoolFlag{Name: "compress", EnvVars: envs("compress"), Usage: "run the compression part (rank 0)"},
			&cli.StringFlag{Name: "codec", Value: "s2", EnvVars: envs("codec"), Usage: "compression `CODEC`"},
			&cli.IntFlag{Name: "n", Value: 1 << 20, EnvVars: envs("n"), Usage: "float64 `COUNT` of the collectives"},
			&cli.IntFlag{Name: "reps", Value: 20, EnvVars: envs("reps"), Usage: "timed repetitions `N` of each collective"},
			&cli.StringFlag{Name: "cpuprofile", EnvVars: envs("cpuprofile"), Usage: "write each rank's CPU profile to `DIR`/rank-N.prof"},
		},
		Action: benchCommRankAction,
	})
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
	registerBench(&cli.Command{
		Name: "parse", ArgsUsage: "[FILE...]", Usage: "time the LIBSVM reader against scikit-learn's load_svmlight_file on the same files, in the same run",
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
	registerBench(&cli.Command{
		Name: "simulate", ArgsUsage: " ", Usage: "check asyncmb simulate against real runs: time to target and mean delay, per P",
		Description: "For each P and round: a real run goes to --target; the simulator, calibrated from that run's summary.json (its\n" +
			"mean compute, service and idle times: sim.Calibrate) or with --calib-iters from a separate short run, predicts its\n" +
			"time to target and mean delay (the updates it needs come from the simulated algorithm, not the run). Prints per P the\n" +
			"medians over the rounds of the real and simulated time to target and mean delay and their ratios; the simulator\n" +
			"agrees when the time is within 25% and the mean delay within 20%. l1-logistic on --data, async, batch 64,\n" +
			"--tau 0 --average tail (what make run uses).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: envs("data"), Value: "testdata/a9a", Usage: "the LIBSVM `FILE`"},
			&cli.Float64Flag{Name: "lambda", EnvVars: envs("lambda"), Value: 1e-4, Usage: "the l1 weight `LAMBDA`"},
			&cli.Float64Flag{Name: "phi-star", EnvVars: envs("phi-star"), Value: simbench.A9aL1PhiStar, Usage: "phi* `PHI` of the problem (default: a9a, lambda 1e-4, from testdata/reference.jsonl)"},
			&cli.StringFlag{Name: "workers", EnvVars: envs("workers"), Value: "1,2,4,8", Usage: "the numbers of workers `P,...`"},
			&cli.IntFlag{Name: "rounds", EnvVars: envs("rounds"), Value: 3, Usage: "`N` rounds (seeds) per P; the medians are shown"},
			&cli.Float64Flag{Name: "target", EnvVars: envs("target"), Value: 1e-3, Usage: "the relative suboptimality `EPS` to time"},
			&cli.Int64Flag{Name: "calib-iters", EnvVars: envs("calib-iters"),
				Usage: "calibrate from separate real runs of `T` updates; 0: from the compared run's own summary.json (its mean compute, service and idle times)"},
			&cli.Float64Flag{Name: "tau0", EnvVars: envs("tau0"), Usage: "delay-adaptive steps alpha(t)/(1 + tau(t)/`T0`) in both (0: off)"},
			&cli.Float64Flag{Name: "dilate", EnvVars: envs("dilate"), Value: 1, Usage: "run the real ranks with time dilation `F` (times are divided by it)"},
		},
		Action: benchSimulateAction,
	})
	registerBench(&cli.Command{
		Name: "train", ArgsUsage: " ", Usage: "time asyncmb train end to end against liblinear-train and against itself (sync vs async, stragglers, compression, pipelining)",
		Description: "Runs `asyncmb train` as separate processes, each configuration --rounds times (the median is shown), on this\n" +
			"machine over loopback, and in the same run liblinear-train -s 6 (C = 1/(n lambda)) at ever smaller -e until its\n" +
			"model reaches the same suboptimality. Every time is wall time of the whole command: starting the processes,\n" +
			"reading the data, rendezvous, training to phi <= phi*(1+REL), as the user sees it; the training time alone\n" +
			"(target.wall_s in summary.json) is shown beside it.\n\n" +
			"(a) time to target, async with P = 2 and 4 workers and serial (--np 1), against liblinear-train;\n" +
			"(b) one worker slowed 4x (--slow 1=4): async against sync;\n" +
			"(c) updates/s at the master, its busy fraction and capacity (updates per busy second), bytes per update with\n" +
			"    and without compression, on a9a and rcv1_small;\n" +
			"(d) --pipeline against the plain loop;\n" +
			"(e) per method (the paper's sgd with theorem steps, the best plain sgd, the svrg default): epochs and wall time to\n" +
			"    1e-3 and 1e-6 on a9a, rcv1_small and a1a_unscaled against liblinear-train at the first -e that gets there;\n" +
			"(f) --part sparse only: keyed pull against the full reply on generated text-like data, 200000 rows of 100\n" +
			"    nonzeros at d = 1M and 16M (kept in the temporary directory): updates/s, master busy, bytes per update, peak RSS.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", EnvVars: envs("data-dir"), Value: "testdata", Usage: "the `DIR` holding a9a and rcv1_small"},
			&cli.Float64Flag{Name: "rel", EnvVars: envs("rel"), Value: 1e-3, Usage: "the target relative suboptimality `REL`"},
			&cli.IntFlag{Name: "rounds", EnvVars: envs("rounds"), Value: 3, Usage: "repeat every configuration `N` times and report the median"},
			&cli.Int64Flag{Name: "iters", EnvVars: envs("iters"), Value: 50000, Usage: "updates `T` of the throughput runs (c)"},
			&cli.StringFlag{Name: "part", EnvVars: envs("part"), Value: "all", Usage: "`P`: all, methods (only part (e): epochs and time to 1e-3 and 1e-6 per method) or sparse (only part (f): keyed pull at d = 1M and 16M)"},
			cacheDirFlag(),
		},
		Action: benchTrainAction,
	})
}

func benchCommAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("bench comm: takes no arguments, got %q", c.Args().Slice())
	}
	cfg := commbench.Options{N: c.Int("n"), Reps: c.Int("reps"), Rounds: c.Int("rounds"), MPI: c.String("mpi"), MPISrc: c.String("mpi-src"),
		Launch: func(ctx context.Context, np int, args []string, stdout io.Writer) error {
			return launch.Local(ctx, launch.Spec{NP: np, Args: args, Env: []string{launch.EnvBind + "=" + c.String("bind")}, Stdout: stdout, Stderr: c.App.ErrWriter, Prefix: true})
		}}
	var err error
	if cfg.NPs, err = commbench.ParseNPs(c.String("np")); err != nil {
		return usagef("bench comm: %v", err)
	}
	if cfg.Codec, err = comm.ParseCodec(c.String("codec")); err != nil {
		return usagef("bench comm: --codec: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return fieldError("bench comm", err, map[string]string{"NPs": "np", "MPI": "mpi"})
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return commbench.Run(ctx, cfg, c.App.Writer, c.App.ErrWriter)
}

// benchCommRankAction is one rank of the benchmark: it joins the job
// described by the environment and runs its parts; rank 0 prints results.
func benchCommRankAction(c *cli.Context) error {
	codec, err := comm.ParseCodec(c.String("codec"))
	if err != nil {
		return usagef("bench comm-rank: --codec: %v", err)
	}
	o := commbench.RankOptions{PointToPoint: c.Bool("pt2pt"), Compress: c.Bool("compress"), N: c.Int("n"), Reps: c.Int("reps")}
	if err := o.Validate(); err != nil {
		return usagef("bench comm-rank: %v", err)
	}
	cfg, err := launch.FromEnv(nil)
	if err != nil {
		return err
	}
	cfg.Codec = codec
	if dir := c.String("cpuprofile"); dir != "" {
		stop, err := job.StartCPUProfile(filepath.Join(dir, fmt.Sprintf("rank-%d.prof", cfg.Rank)))
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cm, err := comm.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer cm.Close()
	return commbench.Rank(ctx, cm, o, c.App.Writer)
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
		ds, err := data.ReadBinary(path)
		if err != nil {
			return fmt.Errorf("bench kernels: %w", err)
		}
		cfg.Cases = append(cfg.Cases, kernelbench.Case{Name: name, Path: path, M: kernels.Matrix{CSR: &ds.X}, Y: ds.Y})
	}
	return kernelbench.Run(cfg, c.App.Writer)
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

func benchRatesAction(c *cli.Context) error {
	o := solverbench.RatesOptions{Data: c.String("data"), LambdaConvex: c.Float64("lambda-convex"), LambdaStrong: c.Float64("lambda-strong"),
		Batch: c.Int("batch"), Epochs: c.Float64("epochs"), FitFrom: c.Float64("fit-from"), Points: c.Int("points"), Seeds: c.Int("seeds")}
	err := o.Validate()
	if err != nil {
		return fieldError("bench rates", err, nil)
	}
	if o.CacheDir, err = cacheDir(c); err != nil {
		return err
	}
	return solverbench.Rates(o, c.App.Writer)
}

func benchSimulateAction(c *cli.Context) error {
	workers, err := study.ParseInts("workers", c.String("workers"))
	if err != nil {
		return usageError{err}
	}
	o := simbench.Options{Data: c.String("data"), Lambda: c.Float64("lambda"), PhiStar: c.Float64("phi-star"), Workers: workers,
		Rounds: c.Int("rounds"), Target: c.Float64("target"), CalibIters: c.Int64("calib-iters"), Tau0: c.Float64("tau0"), Dilate: c.Float64("dilate")}
	if err := o.Validate(); err != nil {
		return fieldError("bench simulate", err, nil)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return job.Interrupted(ctx, simbench.Run(ctx, o, c.App.Writer, c.App.ErrWriter))
}

func benchTrainAction(c *cli.Context) error {
	o := trainbench.Options{DataDir: c.String("data-dir"), Rel: c.Float64("rel"), Rounds: c.Int("rounds"), Iters: c.Int64("iters"), Part: c.String("part")}
	err := o.Validate()
	if err != nil {
		return fieldError("bench train", err, nil)
	}
	if o.Part == "all" {
		if o.CacheDir, err = cacheDir(c); err != nil {
			return err
		}
	}
	return trainbench.Run(o, c.App.Writer)
}
