package launch

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Host is one line of a hostfile: a host and how many ranks it takes.
type Host struct {
	Name  string
	Slots int
}

// ParseHostfile reads a hostfile in MPI's format: one host per line,
// optionally followed by slots=K (default 1); blank lines and # comments
// are skipped. A repeated host adds its slots. Slots are bounded by
// MaxRanks in total.
func ParseHostfile(path string) ([]Host, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("launch: hostfile: %w", err)
	}
	defer f.Close()
	var hosts []Host
	total := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		h := Host{Name: fields[0], Slots: 1}
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			s, err := strconv.Atoi(v)
			if (k != "slots" && k != "max_slots" && k != "max-slots") || err != nil || s < 1 || s > MaxRanks {
				return nil, fmt.Errorf("launch: %s:%d: %q: want HOST [slots=K] with 1 <= K <= %d", path, n, kv, MaxRanks)
			}
			if k == "slots" {
				h.Slots = s
			}
		}
		if total += h.Slots; total > MaxRanks {
			return nil, fmt.Errorf("launch: %s:%d: more than %d slots in total", path, n, MaxRanks)
		}
		hosts = append(hosts, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("launch: hostfile %s: %w", path, err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("launch: hostfile %s names no host", path)
	}
	return hosts, nil
}

// Place assigns np ranks to the hosts' slots in order (the first host's
// slots first, as MPI's by-slot mapping); np 0 means every slot. More
// ranks than slots is an error.
func Place(hosts []Host, np int) ([]string, error) {
	total := 0
	for _, h := range hosts {
		total += h.Slots
	}
	if np == 0 {
		np = total
	}
	if np < 1 || np > total {
		return nil, fmt.Errorf("launch: %d ranks but the hostfile has %d slots", np, total)
	}
	out := make([]string, 0, np)
	for _, h := range hosts {
		for s := 0; s < h.Slots && len(out) < np; s++ {
			out = append(out, h.Name)
		}
	}
	return out, nil
}

// SSHSpec describes a job started over ssh.
type SSHSpec struct {
	// Spec's Path is the executable on the remote hosts (default this
	// program's path, i.e. a shared or identical installation); NP is
	// ignored (len(Hosts) ranks); Env is passed to the remote ranks;
	// Prefix and Grace as for Local.
	Spec
	// Hosts is each rank's host (see Place); rank 0 runs on Hosts[0].
	Hosts []string
	// SSH is the ssh command and its options (default "ssh"); BatchMode
	// is always on, so a host that asks for a password fails at once.
	SSH []string
	// SSHPort, if > 0, is passed as -p.
	SSHPort int
	// Dir is the remote working directory (default this one's).
	Dir string
	// Port is rank 0's port on Hosts[0]; 0 derives one from the job id
	// in DefaultPortRange.
	Port int
}

// SSH runs one rank per entry of spec.Hosts over ssh and supervises them
// as Local does: output streamed with a rank prefix, the first failure or
// ctx's cancellation stops every rank. The job secret is written to each
// ssh's stdin (never on a command line); a remote rank stops as on SIGTERM
// when its stdin closes, so stopping a rank is closing its stdin, and
// killing its ssh (after the grace period) drops the connection, which
// closes stdin too.
func SSH(ctx context.Context, spec SSHSpec) error {
	np := len(spec.Hosts)
	if np < 1 || np > MaxRanks {
		return fmt.Errorf("launch: ssh: %d ranks, want 1 to %d", np, MaxRanks)
	}
	if err := spec.defaults(); err != nil {
		return err
	}
	if len(spec.SSH) == 0 {
		spec.SSH = []string{"ssh"}
	}
	if spec.Dir == "" {
		d, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		spec.Dir = d
	}
	port := spec.Port
	if port == 0 {
		lo, hi, _ := ParsePortRange(DefaultPortRange)
		port = lo + int(nodeHash(spec.JobID)%uint64(hi-lo+1))
	}
	slots := map[string]int{}
	for _, h := range spec.Hosts {
		slots[h]++
	}
	secret := NewSecret()
	env := []string{
		EnvSize + "=" + strconv.Itoa(np),
		EnvJobID + "=" + spec.JobID,
		EnvAddr + "=" + net.JoinHostPort(spec.Hosts[0], strconv.Itoa(port)),
		EnvSecretIn + "=1",
		EnvLauncher + "=ssh",
		EnvNodes + "=" + strings.Join(spec.Hosts, ","),
	}
	env = append(env, spec.Env...)
	sv := newSupervisor(spec.Stdout, spec.Stderr, spec.Prefix, spec.Grace)
	sv.workersMayLeave = spec.WorkersMayLeave
	for r, host := range spec.Hosts {
		remote := remoteCommand(spec.Dir, append(env, EnvRank+"="+strconv.Itoa(r)), !hasVar(spec.Env, "GOMAXPROCS"), slots[host], spec.Path, spec.Args)
		args := append(append([]string(nil), spec.SSH[1:]...), "-o", "BatchMode=yes")
		if spec.SSHPort > 0 {
			args = append(args, "-p", strconv.Itoa(spec.SSHPort))
		}
		args = append(args, host, remote)
		cmd := exec.Command(spec.SSH[0], args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			sv.stopAll()
			return fmt.Errorf("launch: rank %d: %w", r, err)
		}
		if err := sv.start(r, cmd, func() { stdin.Close() }); err != nil {
			sv.stopAll()
			return fmt.Errorf("launch: starting rank %d on %s: %w", r, host, err)
		}
		io.WriteString(stdin, secret+"\n") // an error shows as the rank's failure
	}
	return sv.wait(ctx)
}

// defaults fills in the fields SSH and Srun share with Local.
func (spec *Spec) defaults() error {
	if spec.Path == "" {
		p, err := os.Executable()
		if err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		spec.Path = p
	}
	if spec.JobID == "" {
		spec.JobID = "job-" + NewSecret()[:12]
	}
	if spec.Stdout == nil {
		spec.Stdout = os.Stdout
	}
	if spec.Stderr == nil {
		spec.Stderr = os.Stderr
	}
	if spec.Grace <= 0 {
		spec.Grace = 3 * time.Second
	}
	return nil
}

// remoteCommand is the shell command line one remote rank runs: cd to dir,
// then exec the rank with its environment (through env, so that the
// rank's own command line holds only path and args). With procs, it sets
// GOMAXPROCS to the host's CPUs divided by its ranks (at least 1).
func remoteCommand(dir string, env []string, procs bool, ranksOnHost int, path string, args []string) string {
	var b strings.Builder
	b.WriteString("cd " + shellQuote(dir) + " && ")
	if procs {
		fmt.Fprintf(&b, "g=$(( $(getconf _NPROCESSORS_ONLN) / %d )) && ", ranksOnHost)
	}
	b.WriteString("exec env")
	if procs {
		b.WriteString(" GOMAXPROCS=$(( g > 0 ? g : 1 ))")
	}
	for _, kv := range env {
		b.WriteString(" " + shellQuote(kv))
	}
	b.WriteString(" " + shellQuote(path))
	for _, a := range args {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SrunSpec describes a job step started with srun inside a Slurm
// allocation.
type SrunSpec struct {
	// Spec's NP is the number of tasks (0: the allocation's, srun's
	// default); Path, Args, Env and Grace as for Local; Prefix is srun's
	// --label.
	Spec
	// Srun is the srun command and its options (default "srun").
	Srun []string
}

// Srun runs `srun --kill-on-bad-exit=1 PATH ARGS...`: Slurm starts the
// ranks, which find each other from Slurm's variables (see Identify), and
// stops them all when one fails; the secret goes in the environment, which
// srun passes to the tasks. ctx's cancellation sends SIGTERM to srun,
// which forwards it to the tasks.
func Srun(ctx context.Context, spec SrunSpec) error {
	if spec.NP < 0 || spec.NP > MaxRanks {
		return fmt.Errorf("launch: srun: %d ranks, want 0 (the allocation's) to %d", spec.NP, MaxRanks)
	}
	if err := spec.defaults(); err != nil {
		return err
	}
	if len(spec.Srun) == 0 {
		spec.Srun = []string{"srun"}
	}
	args := append(append([]string(nil), spec.Srun[1:]...), "--kill-on-bad-exit=1")
	if spec.Prefix {
		args = append(args, "--label")
	}
	if spec.NP > 0 {
		args = append(args, "--ntasks="+strconv.Itoa(spec.NP))
	}
	args = append(append(args, spec.Path), spec.Args...)
	cmd := exec.Command(spec.Srun[0], args...)
	cmd.Env = append(WithoutEnv(os.Environ(), identityVars), spec.Env...)
	cmd.Env = append(cmd.Env, EnvSecret+"="+NewSecret(), EnvLauncher+"=srun")
	sv := newSupervisor(spec.Stdout, spec.Stderr, false, spec.Grace)
	if err := sv.startNamed(0, "srun", cmd, nil); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	return sv.wait(ctx)
}
