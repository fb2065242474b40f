package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/launch"
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

// launchPlan is the checked choice of launcher, made before anything starts.
type launchPlan struct {
	kind  string
	np    int      // 0 for srun: the allocation's number of tasks
	hosts []string // ssh: each rank's host
}

// planLaunch checks the launcher flags and --np (bounded before any process
// starts: by the CPUs locally, by the hostfile's slots over ssh).
func planLaunch(c *cli.Context) (*launchPlan, error) {
	p := &launchPlan{kind: c.String("launcher"), np: c.Int("np")}
	if c.IsSet("hostfile") && p.kind != "ssh" {
		return nil, usagef("--hostfile needs --launcher ssh")
	}
	switch p.kind {
	case "local":
		if err := launch.CheckLocalNP(p.np); err != nil {
			return nil, usagef("--np: %v", err)
		}
	case "ssh":
		if !c.IsSet("hostfile") {
			return nil, usagef("--launcher ssh needs --hostfile FILE")
		}
		hosts, err := launch.ParseHostfile(c.String("hostfile"))
		if err != nil {
			return nil, usagef("--hostfile: %v", err)
		}
		np := 0
		if c.IsSet("np") {
			np = p.np
		}
		if p.hosts, err = launch.Place(hosts, np); err != nil {
			return nil, usagef("--np: %v", err)
		}
		if p.np = len(p.hosts); p.np < 2 {
			return nil, usagef("--launcher ssh runs 1 master + at least 1 worker: give --np >= 2 (--np 1 --launcher local runs serially here)")
		}
		if len(strings.Fields(c.String("ssh"))) == 0 {
			return nil, usagef("--ssh: empty command")
		}
		if sp := c.Int("ssh-port"); sp < 0 || sp > 65535 {
			return nil, usagef("--ssh-port %d: want 1-65535", sp)
		}
	case "srun":
		if !c.IsSet("np") {
			p.np = 0
			if n, err := strconv.Atoi(os.Getenv("SLURM_NTASKS")); err == nil {
				p.np = n
			}
		} else if p.np < 1 || p.np > launch.MaxRanks {
			return nil, usagef("--np %d: want 1 to %d", p.np, launch.MaxRanks)
		}
		if len(strings.Fields(c.String("srun"))) == 0 {
			return nil, usagef("--srun: empty command")
		}
	default:
		return nil, usagef("--launcher %q: want local, ssh or srun", p.kind)
	}
	if port := c.Int("port"); port < 0 || port > 65535 {
		return nil, usagef("--port %d: want 1-65535", port)
	}
	if _, _, err := launch.ParsePortRange(c.String("port-range")); err != nil {
		return nil, usagef("--port-range: %v", err)
	}
	return p, nil
}

// checkOutDir makes sure the output directory can be created before any
// rank starts (rank 0 would find out only after every rank had started).
func checkOutDir(dir string) error {
	// The directories this check creates are removed again (deepest first),
	// so that a run stopped before it writes anything leaves nothing behind.
	var made []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		made = append(made, d)
	}
	defer func() {
		for _, d := range made {
			os.Remove(d)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usagef("--out: %v", err)
	}
	f, err := os.CreateTemp(dir, ".asyncmb-check-*")
	if err != nil {
		return usagef("--out: cannot write in %s: %v", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// run starts the ranks with the chosen launcher: args are every rank's
// arguments ("rank" and the forwarded flags). All three share one
// supervisor: the first failure stops every rank and is named once.
func (p *launchPlan) run(ctx context.Context, c *cli.Context, args []string, stdout, stderr io.Writer) error {
	// On Ctrl-C the master still evaluates its trace and writes the outputs;
	// it gets up to 30 s before the launcher kills it.
	const grace = 30 * time.Second
	// A lost worker does not end a training job: the master goes on without
	// it (--min-workers), so the job ends as rank 0 does.
	spec := launch.Spec{NP: p.np, Args: args, Stdout: stdout, Stderr: stderr, Grace: grace, WorkersMayLeave: true}
	switch p.kind {
	case "ssh":
		spec.Prefix = true
		return launch.SSH(ctx, launch.SSHSpec{Spec: spec, Hosts: p.hosts, SSH: strings.Fields(c.String("ssh")),
			SSHPort: c.Int("ssh-port"), Port: c.Int("port")})
	case "srun":
		spec.Prefix = true
		return launch.Srun(ctx, launch.SrunSpec{Spec: spec, Srun: strings.Fields(c.String("srun"))})
	}
	return launch.Local(ctx, spec)
}

// rankIdentity reads a rank's identity from its flags, then the
// environment (see launch.Identify), and the secret from stdin when the
// ssh launcher sends it there; the channel, not nil then, is closed when
// stdin closes (the launcher's way to stop the rank).
func rankIdentity(c *cli.Context) (launch.Identity, <-chan struct{}, error) {
	flagOf := map[string]string{launch.EnvRank: "rank", launch.EnvSize: "size", launch.EnvJobID: "job-id",
		launch.EnvAddr: "addr", launch.EnvStoreDir: "store-dir", launch.EnvBind: "bind",
		launch.EnvRendezvous: "rendezvous", launch.EnvPort: "port", launch.EnvPortRange: "port-range"}
	look := func(k string) (string, string) {
		f, ok := flagOf[k]
		if !ok || !c.IsSet(f) {
			return os.Getenv(k), ""
		}
		v := c.String(f)
		if k == launch.EnvPort {
			v = strconv.Itoa(c.Int(f))
		}
		if os.Getenv(k) == v {
			return v, "" // set by the environment variable
		}
		return v, f
	}
	id, err := launch.Identify(look)
	if err != nil {
		return id, nil, usagef("%v", err)
	}
	if id.Procs > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(id.Procs)
	}
	var eof <-chan struct{}
	if os.Getenv(launch.EnvSecretIn) == "1" {
		if id.Config.Secret, eof, err = launch.ReadSecret(os.Stdin); err != nil {
			return id, nil, err
		}
		if err := id.Config.Validate(); err != nil {
			return id, nil, usagef("launch: %v", err)
		}
	}
	return id, eof, nil
}

// stopOnEOF cancels ctx when eof is closed (nil: never), as SIGTERM does;
// a rank still running a minute later exits with 130.
func stopOnEOF(ctx context.Context, eof <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if eof != nil {
		go func() {
			select {
			case <-eof:
			case <-ctx.Done():
				return
			}
			cancel()
			time.Sleep(time.Minute)
			fmt.Fprintln(os.Stderr, "asyncmb: stdin closed a minute ago and the rank has not stopped: exiting")
			os.Exit(exitInterrupt)
		}()
	}
	return ctx, cancel
}

// launchManifest adds the launcher, the job's nodes and Slurm's ids to
// summary.json's manifest.
func launchManifest(m map[string]any, id launch.Identity) {
	m["launcher"] = id.Launcher
	if len(id.Nodes) > 0 {
		m["nodes"] = id.Nodes
	}
	if id.SlurmJobID != "" {
		m["slurm_job_id"] = id.SlurmJobID
		m["slurm_step_id"] = id.SlurmStepID
	}
}
