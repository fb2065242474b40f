package main

import (
	"strconv"
	"strings"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/launch"
	"github.com/asyncmb/asyncmb/ranks"
	"github.com/asyncmb/asyncmb/solver"
	"github.com/urfave/cli/v2"
)

// launchFlags choose how `train` starts its ranks (train only: they are
// not forwarded to the ranks).
func launchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "launcher", EnvVars: envs("launcher"), Value: "local",
			Usage: "how the ranks start: `L` = local (child processes of this one), ssh (one per --hostfile slot, over ssh)" +
				" or srun (inside a Slurm allocation: srun asyncmb rank ..., the ranks meet through Slurm's variables)"},
		&cli.StringFlag{Name: "hostfile", EnvVars: envs("hostfile"),
			Usage: "--launcher ssh: `FILE` with one `host [slots=K]` per line (as MPI's); ranks fill the slots in order, rank 0 on the first host;" +
				" --np defaults to the number of slots"},
		&cli.StringFlag{Name: "ssh", EnvVars: envs("ssh"), Value: "ssh",
			Usage: "--launcher ssh: the ssh `COMMAND` and its options (split at spaces), e.g. \"ssh -i key -F config\"; BatchMode=yes is always added"},
		&cli.IntFlag{Name: "ssh-port", EnvVars: envs("ssh-port"), DefaultText: "ssh's", Usage: "--launcher ssh: the ssh server's `PORT`"},
		&cli.StringFlag{Name: "srun", EnvVars: envs("srun"), Value: "srun",
			Usage: "--launcher srun: the srun `COMMAND` and its options (split at spaces); --kill-on-bad-exit=1 and --label are always added"},
	}
}

// launchOnly are the flags of launchFlags and --np, which train does not
// forward to its ranks.
var launchOnly = []string{"np", "out", "launcher", "hostfile", "ssh", "ssh-port", "srun"}

// rendezvousFlags tell a rank how to find rank 0 when no --addr is given;
// train forwards them to its ranks.
func rendezvousFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rendezvous", EnvVars: []string{launch.EnvRendezvous}, Value: "auto",
			Usage: "how ranks find rank 0 without --addr: `R` = auto (Slurm's variables when present), slurm (rank 0 is the first host of" +
				" SLURM_STEP_NODELIST, on --port or a port derived from the job and step ids) or file://DIR (a directory all hosts share:" +
				" rank 0 writes its address there, the others poll; for clusters whose node names do not resolve)"},
		&cli.IntFlag{Name: "port", EnvVars: []string{launch.EnvPort}, DefaultText: "derived",
			Usage: "rank 0's `PORT` under Slurm (default: derived from SLURM_JOB_ID and SLURM_STEP_ID within --port-range) or over ssh (default: derived from the job id)"},
		&cli.StringFlag{Name: "port-range", EnvVars: []string{launch.EnvPortRange}, Value: launch.DefaultPortRange,
			Usage: "the `LO-HI` range of derived ports (steps 0-15 of one job, and of 625 consecutive jobs with the default, get distinct ports)"},
	}
}

// planLaunch reads the launcher flags and --np into a checked launch.Plan.
func planLaunch(c *cli.Context) (*launch.Plan, error) {
	p := &launch.Plan{Kind: c.String("launcher"), NP: c.Int("np"), NPSet: c.IsSet("np"), Hostfile: c.String("hostfile"),
		SSH: strings.Fields(c.String("ssh")), SSHPort: c.Int("ssh-port"), Port: c.Int("port"), PortRange: c.String("port-range"),
		Srun: strings.Fields(c.String("srun"))}
	if err := p.Resolve(); err != nil {
		return nil, fieldError("", err, map[string]string{"Kind": "", "NP": "np", "SSH": "ssh", "SSHPort": "ssh-port"})
	}
	return p, nil
}

// rankIdentity reads a rank's identity from its flags, then the
// environment (see launch.Identify).
func rankIdentity(c *cli.Context) (launch.Identity, error) {
	flags := map[string]launch.Flag{}
	for k, f := range map[string]string{launch.EnvRank: "rank", launch.EnvSize: "size", launch.EnvJobID: "job-id", launch.EnvAddr: "addr",
		launch.EnvStoreDir: "store-dir", launch.EnvBind: "bind", launch.EnvRendezvous: "rendezvous", launch.EnvPort: "port", launch.EnvPortRange: "port-range"} {
		if v := c.String(f); c.IsSet(f) {
			if f == "port" {
				v = strconv.Itoa(c.Int(f))
			}
			flags[k] = launch.Flag{Name: f, Value: v}
		}
	}
	id, err := launch.Identify(launch.FlagLookup(flags))
	if err != nil {
		return id, usagef("%v", err)
	}
	return id, nil
}

// methodFrom reads methodFlags into cfg (after the step flags).
func methodFrom(c *cli.Context, cfg *ranks.Config) (err error) {
	cfg.Step.Default = !c.IsSet("step")
	if m := c.String("method"); m != "auto" {
		if cfg.Method, err = solver.ParseMethod(m); err != nil {
			return usagef("--method: %v (or auto)", err)
		}
	} else if cfg.Method = solver.MethodSVRG; !cfg.Step.Default || cfg.Mode == algo.ModeSync {
		cfg.Method = solver.MethodSGD
	}
	if cfg.Metric, err = solver.ParseMetricMode(c.String("metric")); err != nil {
		return usagef("--metric: %v", err)
	}
	return nil
}
