package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/comm/commbench"
	"github.com/asyncmb/asyncmb/job"
	"github.com/asyncmb/asyncmb/launch"
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
		Name:   "comm-rank",
		Hidden: true,
		Usage:  "one rank of `asyncmb bench comm` (started by it, identity from the environment)",
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
}

func benchCommAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usagef("bench comm: takes no arguments, got %q", c.Args().Slice())
	}
	bind := c.String("bind")
	cfg := commbench.Options{N: c.Int("n"), Reps: c.Int("reps"), Rounds: c.Int("rounds"), MPI: c.String("mpi"), MPISrc: c.String("mpi-src"),
		Launch: func(ctx context.Context, np int, args []string, stdout io.Writer) error {
			return launch.Local(ctx, launch.Spec{NP: np, Args: args, Env: []string{launch.EnvBind + "=" + bind}, Stdout: stdout, Stderr: c.App.ErrWriter, Prefix: true})
		}}
	for _, f := range strings.Split(c.String("np"), ",") {
		np, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return usagef("bench comm: --np %q: want comma-separated integers in [2, 64]", c.String("np"))
		}
		cfg.NPs = append(cfg.NPs, np)
	}
	var err error
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
	n, reps := c.Int("n"), c.Int("reps")
	if n < 1 || reps < 1 {
		return usagef("bench comm-rank: --n %d --reps %d: want both >= 1", n, reps)
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
	return commbench.Rank(ctx, cm, commbench.RankOptions{PointToPoint: c.Bool("pt2pt"), Compress: c.Bool("compress"), N: n, Reps: reps}, c.App.Writer)
}
