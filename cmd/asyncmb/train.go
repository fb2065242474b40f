package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/problem"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

// commit is set at link time: -ldflags "-X main.commit=...".
var commit = ""

// trainFlags are the flags of a training run, shared by `train` (the
// launcher) and `rank` (one process of the run).
func trainFlags() []cli.Flag {
	return append(append(problemFlags(), stepFlags(64)...),
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
		&cli.StringFlag{Name: "mode", EnvVars: envs("mode"), Value: "async",
			Usage: "`M`: async (one update per arriving gradient, reply to its worker only), sync (wait for all P gradients, average, update once)" +
				" or bounded (async, but a worker whose next gradient could be more than --max-delay updates stale waits for fresh x)"},
		&cli.IntFlag{Name: "max-delay", EnvVars: envs("max-delay"), Usage: "the delay bound `K` of --mode bounded"},
		&cli.Int64Flag{Name: "sync-every", EnvVars: envs("sync-every"), Usage: "async/bounded: a barrier every `K` updates (every worker restarts from the same x); 0: never"},
		&cli.BoolFlag{Name: "pipeline", EnvVars: envs("pipeline"), Usage: "workers compute the next mini-batch while x is in flight (one more update of delay)"},
		&cli.BoolFlag{Name: "replicate", EnvVars: envs("replicate"), Usage: "every worker reads the whole file instead of its byte-range shard"},
		&cli.BoolFlag{Name: "reweight", EnvVars: envs("reweight"), Value: true,
			Usage: "with sharded data, scale worker k's gradients by (its share of the rows)/(its share of the gradients applied), so that" +
				" workers of different speeds do not bias the solution towards the fast workers' shards (clamped to [1/4, 4]); --reweight=false: plain steps"},
		&cli.StringFlag{Name: "update", EnvVars: envs("update"), Value: "auto",
			Usage: "the master's update `U`: lazy (O(nnz(g)): coordinates outside the gradient are brought up to date when next read; none, l1, l2, elastic)," +
				" eager (O(d) every step) or auto (lazy from d >= 1024, where it is faster)"},
		&cli.StringFlag{Name: "pull", EnvVars: envs("pull"), Value: "auto",
			Usage: "what a reply carries, `P`: keys (x on the features of the worker's next mini-batch only, O(batch nonzeros) whatever d), all (all of x: dense, its nonzeros or a delta)" +
				" or auto (keys for sparse data with d > 2048 when the keyed reply is the smaller)"},
		&cli.Int64Flag{Name: "iters", EnvVars: envs("iters"), Usage: "stop after `T` updates"},
		&cli.Float64Flag{Name: "epochs", EnvVars: envs("epochs"), Usage: "stop after `E` passes over the data (default 20 when no other rule is given)"},
		&cli.DurationFlag{Name: "time", EnvVars: envs("time"), Usage: "stop after `DURATION` of training (e.g. 30s)"},
		&cli.Float64Flag{Name: "target", EnvVars: envs("target"),
			Usage: "stop when the output reaches relative suboptimality (phi - phi*)/|phi*| <= `EPS`; phi* comes from the reference cache (computed first if missing);" +
				" the master then loads the whole data set and evaluates the output beside its update loop; a run that stops before reaching it exits 1 (see --max-epochs)"},
		&cli.BoolFlag{Name: "reference", EnvVars: envs("reference"), DefaultText: "on with --target, else off",
			Usage: "report suboptimality against phi* from the reference cache, solving for it first if it is missing (off: report phi only and start training at once)"},
		&cli.Float64Flag{Name: "phi-star", EnvVars: envs("phi-star"), Usage: "use `PHI` as the optimal value phi* (e.g. from a published table) instead of the reference cache"},
		cacheDirFlag(),
		&cli.Int64Flag{Name: "snapshot-every", EnvVars: envs("snapshot-every"), Usage: "record (t, time, x) to the trace every `K` updates; 0: at geometrically spaced t (1, 2, ..., 10, 11, 12, 13, 15, ...: about 25 per decade, for log-log plots)"},
		&cli.StringFlag{Name: "out", EnvVars: envs("out"), Usage: "output `DIR` (trace.csv, trace.bin, summary.json, model); default out/train-<time>"},
		&cli.StringSliceFlag{Name: "slow", EnvVars: envs("slow"), Usage: "`RANK=FACTOR`: worker RANK's compute takes FACTOR times longer (it sleeps the extra time); repeatable"},
		&cli.DurationFlag{Name: "jitter", EnvVars: envs("jitter"), Usage: "add a uniform random delay in [0, `D`) to every gradient of every worker"},
		&cli.Float64Flag{Name: "dilate", EnvVars: envs("dilate"), Value: 1,
			Usage: "time dilation `F` >= 1: every rank sleeps F-1 times what each unit of its work took (a worker's gradient, with --slow and --jitter; the master's update)," +
				" so that F x cores busy ranks fit on the cores with their relative speeds kept; times grow F-fold (asyncmb scale divides them back); --net-delay is not dilated"},
		&cli.DurationFlag{Name: "net-delay", EnvVars: envs("net-delay"), Usage: "hold every message a rank sends for `D` before it goes out (a slow network on loopback)"},
		&cli.DurationFlag{Name: "net-jitter", EnvVars: envs("net-jitter"), Usage: "hold every message for a further uniform random time in [0, `D`) (order kept)"},
		&cli.StringFlag{Name: "codec", EnvVars: envs("codec"), Value: "s2", Usage: "message compression `C`: none, s2 or zstd (used only where it shrinks a message)"},
		&cli.DurationFlag{Name: "heartbeat-timeout", EnvVars: envs("heartbeat-timeout"), Value: comm.DefaultHeartbeatTimeout, Usage: "declare a peer lost after `D` of silence"},
		&cli.DurationFlag{Name: "rendezvous-timeout", EnvVars: envs("rendezvous-timeout"), Value: comm.DefaultRendezvousTimeout, Usage: "give up when not every rank has arrived after `D`"},
		&cli.DurationFlag{Name: "checkpoint-every", EnvVars: envs("checkpoint-every"),
			Usage: "the master writes its state to --out/checkpoint every `D` (atomically; it always does when interrupted by SIGINT/SIGTERM)"},
		&cli.StringFlag{Name: "resume", EnvVars: envs("resume"),
			Usage: "continue the run whose checkpoint is in `DIR` (same flags): t continues from the checkpoint, the trace from DIR's; the workers start afresh"},
		&cli.IntFlag{Name: "min-workers", EnvVars: envs("min-workers"), Value: 1,
			Usage: "go on after workers die or are lost while at least `K` remain (the master logs each loss, releases what the worker held and" +
				" lists it in summary.json); below K the run fails with exit code 4"},
		&cli.StringFlag{Name: "progress", EnvVars: envs("progress"), Value: "auto",
			Usage: "the master's progress on stderr: `P` = auto (a live line on a terminal, a line a second otherwise), line, none"},
		&cli.Float64Flag{Name: "tol", EnvVars: envs("tol"),
			Usage: "stop when the relative change of phi(output) on the full data, per epoch, between evaluations at least an epoch apart, is at most `TOL`" +
				" (needs no phi*; the master then loads the whole data set and evaluates the output beside its update loop, as for --target)"},
		&cli.Float64Flag{Name: "max-epochs", EnvVars: envs("max-epochs"),
			DefaultText: "1000, once training has also run 60 s, with --target or --tol when no --epochs, --iters or --time is given, else none",
			Usage: "stop after `E` passes over the data whatever the other rules say; a --target run that stops before reaching its target" +
				" (by this cap, --epochs, --iters or --time) still writes its outputs, marked \"reached\": false, and exits 1"},
		&cli.StringFlag{Name: "test", EnvVars: envs("test"),
			Usage: "a held-out LIBSVM `FILE`: its loss and accuracy/AUC (classification) or RMSE (regression) at every snapshot go into trace.csv," +
				" and those of the model into summary.json (evaluated after the run, like the training objective)"},
		&cli.IntFlag{Name: "polish", EnvVars: envs("polish"), Value: solver.DefaultPolishIters,
			Usage: "l1, elastic, l1box and group: at most `N` accelerated full-data proximal gradient steps (step 1/L with backtracking, FISTA with restart)" +
				" from the model after the run, which zero the coordinates the optimum has at zero; the result is kept only if phi does not rise; 0: no polish"},
	)
}

// trainConfig is the validated content of trainFlags.
type trainConfig struct {
	cfg     ranks.Config
	comm    func(*comm.Config)
	problem problem.Config
	phiStar job.PhiStarFunc // nil: no phi* unless cfg.PhiStar
}

// trainFields maps ranks.Config's fields to their flags where the name
// does not say it ("": the error names its flags).
var trainFields = map[string]string{"Mode": "", "Method": "", "Metric": "", "Iters": "", "Tol": "", "PolishIters": "polish"}

// trainConfigFrom reads trainFlags and checks them once (ranks.Config's
// Validate; usage errors exit 2).
func trainConfigFrom(c *cli.Context) (*trainConfig, error) {
	pc, err := problemConfigFrom(c)
	if err != nil {
		return nil, err
	}
	tc := &trainConfig{problem: pc}
	cfg := &tc.cfg
	cfg.Data, cfg.Features, cfg.Bias, cfg.Loss, cfg.Reg, cfg.GroupSpec, cfg.OVR = pc.Data, pc.Features, pc.Bias, pc.Loss, pc.Reg, pc.GroupSpec, pc.OVR
	if cfg.Mode, err = algo.ParseMode(c.String("mode")); err != nil {
		return nil, usagef("--mode: %v", err)
	}
	if cfg.Update, err = algo.ParseUpdate(c.String("update")); err != nil {
		return nil, usagef("--update: %v", err)
	}
	if cfg.Pull, err = algo.ParsePull(c.String("pull")); err != nil {
		return nil, usagef("--pull: %v", err)
	}
	if cfg.Step, err = stepSpecFrom(c); err != nil {
		return nil, err
	}
	if err := methodFrom(c, cfg); err != nil {
		return nil, err
	}
	if cfg.Slow, err = ranks.ParseSlow(c.StringSlice("slow")); err != nil {
		return nil, fieldError("", err, nil)
	}
	cfg.MaxDelay, cfg.SyncEvery, cfg.Pipeline, cfg.Replicate = c.Int("max-delay"), c.Int64("sync-every"), c.Bool("pipeline"), c.Bool("replicate")
	cfg.NoReweight, cfg.Batch, cfg.BatchSet, cfg.Seed = !c.Bool("reweight"), c.Int("batch"), c.IsSet("batch"), c.Uint64("seed")
	cfg.Iters, cfg.Epochs, cfg.Time, cfg.Target = c.Int64("iters"), c.Float64("epochs"), c.Duration("time"), c.Float64("target")
	cfg.Tol, cfg.MaxEpochs, cfg.Test, cfg.PolishIters = c.Float64("tol"), c.Float64("max-epochs"), c.String("test"), c.Int("polish")
	cfg.SnapshotEvery, cfg.Jitter, cfg.Dilate, cfg.Out = c.Int64("snapshot-every"), c.Duration("jitter"), c.Float64("dilate"), c.String("out")
	cfg.CheckpointEvery, cfg.Resume, cfg.MinWorkers = c.Duration("checkpoint-every"), c.String("resume"), c.Int("min-workers")
	if c.IsSet("max-delay") && cfg.Mode != algo.ModeBounded {
		cfg.MaxDelay = max(cfg.MaxDelay, 1) // given without --mode bounded: refused by Validate
	}
	if err := cfg.Validate(); err != nil {
		return nil, fieldError("", err, trainFields)
	}
	tc.comm, err = job.Settle(cfg, job.Settings{MaxEpochsSet: c.IsSet("max-epochs"), Codec: c.String("codec"), Progress: c.String("progress"),
		HeartbeatTimeout: c.Duration("heartbeat-timeout"), RendezvousTimeout: c.Duration("rendezvous-timeout"),
		NetDelay: c.Duration("net-delay"), NetJitter: c.Duration("net-jitter")})
	if err != nil {
		return nil, err
	}
	if c.IsSet("phi-star") {
		if cfg.PhiStar = c.Float64("phi-star"); math.IsNaN(cfg.PhiStar) || math.IsInf(cfg.PhiStar, 0) {
			return nil, usagef("--phi-star %v: want a finite number", cfg.PhiStar)
		}
	} else if c.Bool("reference") || cfg.Target > 0 {
		cacheDir, err := cacheDir(c)
		if err != nil {
			return nil, err
		}
		tc.phiStar = func(ctx context.Context, p *solver.Problem, hash string) (float64, error) {
			return pc.Of(p, hash).PhiStar(ctx, cacheDir, c.App.ErrWriter)
		}
	}
	return tc, nil
}

// stepSpecFrom reads the step flags into the ranks' spec (L and sigma are
// estimated by the ranks on their shards when not given).
func stepSpecFrom(c *cli.Context) (ranks.StepSpec, error) {
	kind, err := stepKindFrom(c)
	if err != nil {
		return ranks.StepSpec{}, err
	}
	sp := ranks.StepSpec{Kind: kind, Alpha0: c.Float64("alpha0"), L: c.Float64("lipschitz"), Sigma: c.Float64("sigma"),
		R: c.Float64("dist"), Mu: c.Float64("mu"), Tau: c.Int("tau"), Tau0: c.Float64("tau0")}
	if sp.Tau < -1 {
		return sp, usagef("--tau %d: want TAU >= 0 (or -1: the number of workers)", sp.Tau)
	}
	if (kind == solver.StepConst || kind == solver.StepInvSqrt) && sp.Alpha0 == 0 {
		return sp, usagef("--step %s needs --alpha0 > 0", kind)
	}
	if a := c.String("average"); a != "auto" {
		if _, err := solver.ParseAvgKind(a); err != nil {
			return sp, usagef("--average: %v", err)
		}
		sp.Average = a
	}
	return sp, nil
}

// manifest is what summary.json records of the command line.
func manifest(c *cli.Context) map[string]any {
	host, _ := os.Hostname()
	return map[string]any{"version": version, "commit": commit, "command": c.Command.Name,
		"flags": forwardFlags(c), "host": host, "gomaxprocs": os.Getenv("GOMAXPROCS")}
}

// npFlag is --np: train's number of processes (rank accepts and ignores it,
// so that train can forward its flags unchanged).
func npFlag() cli.Flag {
	return &cli.IntFlag{Name: "np", EnvVars: envs("np"), Value: 4,
		Usage: "the number of processes `N`: 1 master + N-1 workers (local: on this machine over loopback TCP, at most 64 per CPU; 1: serial prox-SGD in this process;" +
			" ssh: default the hostfile's slots; srun: default the allocation's tasks)"}
}

// identityFlags tell a rank who it is, as the launchers' environment
// variables do (a flag beats the variable); the job secret is never a flag.
func identityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rank", EnvVars: []string{launch.EnvRank}, Usage: "this process's `RANK` (else SLURM_PROCID)"},
		&cli.StringFlag{Name: "size", EnvVars: []string{launch.EnvSize}, Usage: "the number of ranks `N` (else SLURM_NTASKS)"},
		&cli.StringFlag{Name: "job-id", EnvVars: []string{launch.EnvJobID}, Usage: "the job `ID` (ranks of other jobs are refused; else slurm-$SLURM_JOB_ID)"},
		&cli.StringFlag{Name: "addr", EnvVars: []string{launch.EnvAddr}, Usage: "rank 0's rendezvous address `HOST:PORT` (rank 0 listens on it)"},
		&cli.StringFlag{Name: "store-dir", EnvVars: []string{launch.EnvStoreDir}, Usage: "a shared `DIR` through which rank 0 publishes its address (with --addr port 0)"},
		&cli.StringFlag{Name: "bind", EnvVars: []string{launch.EnvBind}, Usage: "the local `ADDRESS` or interface to use on hosts with several networks"},
	}
}

func init() {
	register(&cli.Command{
		Name: "train", ArgsUsage: " ", Usage: "train a model with the asynchronous mini-batch algorithm: 1 master + N-1 worker processes on this machine",
		Description: "Starts rank 0 (the master) and ranks 1..N-1 (the workers) as child processes of this one, over loopback TCP with a\n" +
			"fresh job secret. Each worker reads its byte-range shard of --data and loops: read x, sample a mini-batch (without\n" +
			"replacement, reshuffled every pass over the shard), compute the gradient, send it. The master applies one regularized\n" +
			"step per arriving gradient and answers that worker only. Ctrl-C or a failing rank stops every rank.\n\n" +
			"Outputs in --out: trace.csv (phi of the last and the averaged iterate against t and time), trace.bin (the snapshots),\n" +
			"summary.json (manifest and figures: delays, updates/s, per-worker compute and idle time, bytes on the wire), model\n" +
			"(LIBLINEAR's format: liblinear-predict reads it). --launcher ssh (with --hostfile) or srun (inside a Slurm allocation)\n" +
			"starts the ranks on other hosts; any other launcher can start `asyncmb rank` with the same flags in every process.",
		Flags: append(append(append(trainFlags(), npFlag(), figuresFlag()), launchFlags()...), rendezvousFlags()...), Action: trainAction,
	})
	register(&cli.Command{
		Name: "rank", ArgsUsage: " ", Usage: "one process of a training run (started by `asyncmb train`, srun or another launcher)",
		Description: "Takes part in a training run as the rank its environment names: ASYNCMB_RANK/ASYNCMB_SIZE (or Slurm's SLURM_PROCID/\n" +
			"SLURM_NTASKS), ASYNCMB_JOB_ID, rank 0's address ASYNCMB_ADDR or a rendezvous store ASYNCMB_STORE_DIR/ASYNCMB_STORE_ADDR,\n" +
			"else --rendezvous file://DIR, else under Slurm the first host of SLURM_STEP_NODELIST on --port or a port derived from\n" +
			"SLURM_JOB_ID and SLURM_STEP_ID; the job secret ASYNCMB_SECRET, ASYNCMB_SECRET_FILE or $SLURM_SUBMIT_DIR/.asyncmb-secret\n" +
			"(mode 0600; never on the command line), ASYNCMB_BIND (default: the address this host reaches rank 0 from). Every rank must get\n" +
			"the same training flags; --np is ignored (the size comes from the environment).",
		Flags: append(append(append(append(trainFlags(), npFlag()), identityFlags()...), rendezvousFlags()...),
			&cli.BoolFlag{Name: "join", EnvVars: envs("join"),
				Usage: "join a running job in place of a worker that left it (died, was lost or stopped): same flags, rank and secret;" +
					" the worker reads its shard, gets the current x and contributes until the run ends"}), Action: rankAction,
	})
}

func trainAction(c *cli.Context) error {
	tc, err := trainConfigFrom(c)
	if err != nil {
		return err
	}
	plan, err := planLaunch(c)
	if err != nil {
		return err
	}
	t := job.Train{Config: &tc.cfg, Problem: tc.problem, Plan: plan, PhiStar: tc.phiStar, Figures: c.Bool("figures"), Manifest: manifest(c),
		RankArgs: append([]string{"rank"}, forwardFlags(c, append([]string{"figures"}, launchOnly...)...)...), Stdout: c.App.Writer, Stderr: c.App.ErrWriter}
	return t.Run(c.Context)
}

// forwardFlags renders the flags set on c (on the command line or in the
// environment) as --name=value arguments, except skip.
func forwardFlags(c *cli.Context, skip ...string) []string {
	var out []string
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !c.IsSet(name) || slices.Contains(skip, name) {
			continue
		}
		v := c.Value(name)
		if ss, ok := v.(cli.StringSlice); ok {
			v = ss.Value()
		}
		switch v := v.(type) {
		case []string:
			for _, s := range v {
				out = append(out, "--"+name+"="+s)
			}
		case float64:
			out = append(out, "--"+name+"="+strconv.FormatFloat(v, 'g', -1, 64))
		default:
			out = append(out, fmt.Sprintf("--%s=%v", name, v))
		}
	}
	return out
}

func rankAction(c *cli.Context) error {
	tc, err := trainConfigFrom(c)
	if err != nil {
		return err
	}
	id, err := rankIdentity(c)
	if err != nil {
		return err
	}
	r := job.Rank{Config: &tc.cfg, Identity: id, Comm: tc.comm, Join: c.Bool("join"), Progress: c.String("progress"), PhiStar: tc.phiStar,
		Manifest: manifest(c), CPUProfile: os.Getenv("ASYNCMB_CPUPROFILE"), Stdout: c.App.Writer, Stderr: c.App.ErrWriter}
	return r.Run(c.Context)
}
