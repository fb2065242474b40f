package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Plan is a training job's choice of launcher, checked (Resolve) before
// anything starts.
type Plan struct {
	Kind      string // local, ssh or srun
	NP        int    // the number of ranks; 0 for srun: the allocation's tasks
	NPSet     bool   // NP was given (ssh and srun have defaults)
	Hostfile  string // ssh: the hostfile ("" with another launcher)
	SSH       []string
	SSHPort   int
	Port      int
	PortRange string
	Srun      []string
	Hosts     []string // ssh: each rank's host, set by Resolve
}

// Resolve checks the plan and fills in NP (bounded before any process
// starts: by the CPUs locally, by the hostfile's slots over ssh) and Hosts;
// an error starts with the name of the field.
func (p *Plan) Resolve() error {
	if p.Hostfile != "" && p.Kind != "ssh" {
		return errors.New("Hostfile needs --launcher ssh")
	}
	switch p.Kind {
	case "local":
		if err := CheckLocalNP(p.NP); err != nil {
			return fmt.Errorf("NP: %w", err)
		}
	case "ssh":
		if p.Hostfile == "" {
			return errors.New("Kind: --launcher ssh needs --hostfile FILE")
		}
		hosts, err := ParseHostfile(p.Hostfile)
		if err != nil {
			return fmt.Errorf("Hostfile: %w", err)
		}
		np := 0
		if p.NPSet {
			np = p.NP
		}
		if p.Hosts, err = Place(hosts, np); err != nil {
			return fmt.Errorf("NP: %w", err)
		}
		if p.NP = len(p.Hosts); p.NP < 2 {
			return errors.New("Kind: --launcher ssh runs 1 master + at least 1 worker: give --np >= 2 (--np 1 --launcher local runs serially here)")
		}
		if len(p.SSH) == 0 {
			return errors.New("SSH: empty command")
		}
		if p.SSHPort < 0 || p.SSHPort > 65535 {
			return fmt.Errorf("SSHPort %d: want 1-65535", p.SSHPort)
		}
	case "srun":
		if !p.NPSet {
			p.NP = 0
			if n, err := strconv.Atoi(os.Getenv("SLURM_NTASKS")); err == nil {
				p.NP = n
			}
		} else if p.NP < 1 || p.NP > MaxRanks {
			return fmt.Errorf("NP %d: want 1 to %d", p.NP, MaxRanks)
		}
		if len(p.Srun) == 0 {
			return errors.New("Srun: empty command")
		}
	default:
		return fmt.Errorf("Kind %q: want local, ssh or srun", p.Kind)
	}
	if p.Port < 0 || p.Port > 65535 {
		return fmt.Errorf("Port %d: want 1-65535", p.Port)
	}
	if _, _, err := ParsePortRange(p.PortRange); err != nil {
		return fmt.Errorf("PortRange: %w", err)
	}
	return nil
}

// Run starts the ranks with the chosen launcher: args are every rank's
// arguments ("rank" and the forwarded flags). All three share one
// supervisor: the first failure stops every rank and is named once.
func (p *Plan) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// On Ctrl-C the master still evaluates its trace and writes the outputs;
	// it gets up to 30 s before the launcher kills it.
	const grace = 30 * time.Second
	// A lost worker does not end a training job: the master goes on without
	// it (--min-workers), so the job ends as rank 0 does.
	spec := Spec{NP: p.NP, Args: args, Stdout: stdout, Stderr: stderr, Grace: grace, WorkersMayLeave: true}
	switch p.Kind {
	case "ssh":
		spec.Prefix = true
		return SSH(ctx, SSHSpec{Spec: spec, Hosts: p.Hosts, SSH: p.SSH, SSHPort: p.SSHPort, Port: p.Port})
	case "srun":
		spec.Prefix = true
		return Srun(ctx, SrunSpec{Spec: spec, Srun: p.Srun})
	}
	return Local(ctx, spec)
}

// CheckOutDir makes sure the output directory can be created before any
// rank starts (rank 0 would find out only after every rank had started).
func CheckOutDir(dir string) error {
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
		return err
	}
	f, err := os.CreateTemp(dir, ".asyncmb-check-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// StopOnEOF cancels ctx when eof is closed (nil: never), as SIGTERM does;
// a rank still running a minute later exits with code.
func StopOnEOF(ctx context.Context, eof <-chan struct{}, code int) (context.Context, context.CancelFunc) {
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
			os.Exit(code)
		}()
	}
	return ctx, cancel
}

// AddManifest adds the launcher, the job's nodes and Slurm's ids to
// summary.json's manifest m.
func (id Identity) AddManifest(m map[string]any) {
	m["launcher"] = id.Launcher
	if len(id.Nodes) > 0 {
		m["nodes"] = id.Nodes
	}
	if id.SlurmJobID != "" {
		m["slurm_job_id"] = id.SlurmJobID
		m["slurm_step_id"] = id.SlurmStepID
	}
}
