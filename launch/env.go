package launch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/comm"
)

// More environment variables read by Identify.
const (
	EnvPort       = "ASYNCMB_PORT"       // rank 0's port under Slurm (default: derived from the job and step ids)
	EnvPortRange  = "ASYNCMB_PORT_RANGE" // LO-HI, the range of derived ports
	EnvRendezvous = "ASYNCMB_RENDEZVOUS" // auto, slurm or file://DIR
	EnvLauncher   = "ASYNCMB_LAUNCHER"   // set by the launchers: local, ssh, srun (recorded in summary.json)
	EnvNodes      = "ASYNCMB_NODES"      // comma-separated hosts of the ranks, set by the ssh launcher
	EnvSecretIn   = "ASYNCMB_SECRET_STDIN"
)

// DefaultPortRange is where ports derived from Slurm's job and step ids
// fall: below Linux's ephemeral ports (32768-60999) and above the usual
// services.
const DefaultPortRange = "20000-29999"

// SecretFileName is the secret file looked for in $SLURM_SUBMIT_DIR when
// neither ASYNCMB_SECRET nor ASYNCMB_SECRET_FILE is set.
const SecretFileName = ".asyncmb-secret"

// Identity is what a rank learned about itself from flags and the
// environment, with the provenance of rank 0's address for error messages.
type Identity struct {
	Config comm.Config
	// Launcher is ASYNCMB_LAUNCHER ("local", "ssh", "srun", "sbatch": set
	// by the launchers and slurm/asyncmb.sbatch), else "srun" under Slurm
	// (SLURM_PROCID set) and "manual" otherwise.
	Launcher string
	// SlurmJobID and SlurmStepID are Slurm's ids ("" outside Slurm).
	SlurmJobID, SlurmStepID string
	// Nodes are the hosts of the job (Slurm's step node list expanded, or
	// the ssh launcher's hosts).
	Nodes []string
	// Procs is the GOMAXPROCS a Slurm task should use (0: no advice):
	// SLURM_CPUS_PER_TASK, else the node's CPUs (SLURM_CPUS_ON_NODE, at
	// most this machine's) divided by the step's tasks on this node, at
	// least 1. Go's default, every CPU in every rank, lets idle threads
	// spinning for work steal CPU from the other ranks on the node.
	Procs int
	// AddrFrom says how rank 0's address was found ("--addr", "the
	// first node of SLURM_STEP_NODELIST=n[1-3] and ...").
	AddrFrom string
}

// Lookup returns the value of a variable and, if it came from a command
// line flag rather than the environment, the flag's name.
type Lookup func(name string) (value, flag string)

// EnvLookup reads the process environment.
func EnvLookup(name string) (string, string) { return os.Getenv(name), "" }

// Flag is a command-line flag's value standing in for a variable.
type Flag struct{ Name, Value string }

// FlagLookup reads the variables given as flags (by variable name) from
// flags, the others from the environment; a flag whose value is the
// variable's was set by it and is reported as from the environment.
func FlagLookup(flags map[string]Flag) Lookup {
	return func(name string) (string, string) {
		f, ok := flags[name]
		if !ok || os.Getenv(name) == f.Value {
			return os.Getenv(name), ""
		}
		return f.Value, f.Name
	}
}

// FromEnv builds a rank's comm.Config from the environment that a
// launcher set (getenv nil means os.Getenv); see Identify.
func FromEnv(getenv func(string) string) (comm.Config, error) {
	look := EnvLookup
	if getenv != nil {
		look = func(n string) (string, string) { return getenv(n), "" }
	}
	id, err := Identify(look)
	return id.Config, err
}

// Identify works out a rank's identity, in this order for each part
// (look gives flags first, then the environment):
//
//   - rank and size from ASYNCMB_RANK and ASYNCMB_SIZE, else Slurm's
//     SLURM_PROCID and SLURM_NTASKS;
//   - the job id from ASYNCMB_JOB_ID, else slurm-$SLURM_JOB_ID.$SLURM_STEP_ID;
//   - rank 0's address: ASYNCMB_ADDR; else a store named by
//     ASYNCMB_STORE_DIR or ASYNCMB_STORE_ADDR; else ASYNCMB_RENDEZVOUS
//     file://DIR (rank 0 writes its address to DIR/<job id>/, the others
//     poll for it); else, under Slurm, the first host of
//     SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST) with port ASYNCMB_PORT
//     or one derived from the job and step ids within ASYNCMB_PORT_RANGE
//     (see SlurmPort);
//   - the secret from ASYNCMB_SECRET, else the file ASYNCMB_SECRET_FILE,
//     else $SLURM_SUBMIT_DIR/.asyncmb-secret; a secret file must not be
//     readable by group or others;
//   - the bind address or interface from ASYNCMB_BIND;
//   - optionally the codec (ASYNCMB_CODEC), the heartbeat timeout
//     (ASYNCMB_HEARTBEAT_TIMEOUT, the interval becoming a tenth of it) and
//     the rendezvous timeout (ASYNCMB_RENDEZVOUS_TIMEOUT), as Go durations.
//
// With ASYNCMB_SECRET_STDIN=1 the caller reads the secret (ReadSecret)
// and sets Config.Secret before Validate. Identify does no network I/O;
// Resolve completes the address of a rank other than 0.
func Identify(look Lookup) (Identity, error) {
	get := func(n string) string { v, _ := look(n); return v }
	var id Identity
	rank, err := lookInt(look, EnvRank, "SLURM_PROCID")
	if err != nil {
		return id, err
	}
	size, err := lookInt(look, EnvSize, "SLURM_NTASKS")
	if err != nil {
		return id, err
	}
	if size > MaxRanks {
		return id, fmt.Errorf("launch: size %d: at most %d ranks", size, MaxRanks)
	}
	cfg := comm.DefaultConfig(rank, size)
	id.SlurmJobID, id.SlurmStepID = get("SLURM_JOB_ID"), get("SLURM_STEP_ID")
	cfg.JobID = get(EnvJobID)
	if cfg.JobID == "" && id.SlurmJobID != "" {
		cfg.JobID = "slurm-" + id.SlurmJobID
		if id.SlurmStepID != "" {
			cfg.JobID += "." + id.SlurmStepID
		}
	}
	id.Launcher = get(EnvLauncher)
	if id.Launcher == "" {
		id.Launcher = "manual"
		if id.SlurmJobID != "" && get("SLURM_PROCID") != "" {
			id.Launcher = "srun"
		}
	}
	if n := get(EnvNodes); n != "" {
		id.Nodes = strings.Split(n, ",")
	} else if list := slurmNodelist(get); list != "" {
		if id.Nodes, err = ExpandHostlist(list); err != nil {
			return id, err
		}
	}
	id.Procs = slurmProcs(get)
	cfg.Bind = get(EnvBind)
	if err := id.rendezvous(look, &cfg); err != nil {
		return id, err
	}
	if get(EnvSecretIn) != "1" {
		if cfg.Secret, err = secretFrom(look); err != nil {
			return id, err
		}
	}
	if v := get(EnvCodec); v != "" {
		if cfg.Codec, err = comm.ParseCodec(v); err != nil {
			return id, fmt.Errorf("launch: %s: %w", EnvCodec, err)
		}
	}
	if v := get(EnvHeartbeatTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return id, fmt.Errorf("launch: %s=%q: want a positive duration", EnvHeartbeatTimeout, v)
		}
		cfg.HeartbeatTimeout, cfg.HeartbeatInterval = d, d/10
	}
	if v := get(EnvRendezvousTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return id, fmt.Errorf("launch: %s=%q: want a positive duration", EnvRendezvousTimeout, v)
		}
		cfg.RendezvousTimeout = d
	}
	id.Config = cfg
	if get(EnvSecretIn) != "1" {
		if err := cfg.Validate(); err != nil {
			return id, fmt.Errorf("launch: configuration from the environment: %w", err)
		}
	}
	return id, nil
}

// rendezvous fills in cfg.Addr and cfg.Store and id.AddrFrom.
func (id *Identity) rendezvous(look Lookup, cfg *comm.Config) error {
	get := func(n string) string { v, _ := look(n); return v }
	if a := get(EnvAddr); a != "" {
		cfg.Addr, id.AddrFrom = a, origin(look, EnvAddr)
	}
	switch {
	case get(EnvStoreDir) != "":
		cfg.Store = comm.FileStore{Dir: get(EnvStoreDir)}
		if cfg.Addr == "" || isPortZero(cfg.Addr) {
			id.AddrFrom = "the file store " + origin(look, EnvStoreDir)
		}
		return nil
	case get(EnvStoreAddr) != "":
		cfg.Store = comm.TCPStore{Addr: get(EnvStoreAddr)}
		if cfg.Addr == "" || isPortZero(cfg.Addr) {
			id.AddrFrom = "the TCP store " + origin(look, EnvStoreAddr)
		}
		return nil
	}
	if cfg.Addr != "" {
		return nil
	}
	rv := get(EnvRendezvous)
	switch {
	case strings.HasPrefix(rv, "file://"):
		dir := strings.TrimPrefix(rv, "file://")
		if dir == "" || cfg.JobID == "" {
			return fmt.Errorf("launch: %s: want file://DIR and a job id (ASYNCMB_JOB_ID or Slurm's)", origin(look, EnvRendezvous))
		}
		// One subdirectory per job (and step), so that an old job's file
		// is never read.
		sub := filepath.Join(dir, sanitize(cfg.JobID))
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return fmt.Errorf("launch: %s: %w", origin(look, EnvRendezvous), err)
		}
		cfg.Store = comm.FileStore{Dir: sub}
		id.AddrFrom = "the file " + filepath.Join(sub, comm.AddrKey) + " (" + origin(look, EnvRendezvous) + ")"
		if cfg.Rank == 0 {
			// Listen on the address other hosts reach us at.
			host := outwardIP(cfg.Bind)
			cfg.Addr = net.JoinHostPort(host, "0")
			if p := get(EnvPort); p != "" {
				cfg.Addr = net.JoinHostPort(host, p)
			}
		}
		return nil
	case rv == "" || rv == "auto" || rv == "slurm":
	default:
		return fmt.Errorf("launch: %s: want auto, slurm or file://DIR", origin(look, EnvRendezvous))
	}
	list := slurmNodelist(get)
	listVar := "SLURM_STEP_NODELIST"
	if get(listVar) == "" {
		listVar = "SLURM_JOB_NODELIST"
	}
	if list == "" {
		if rv == "slurm" {
			return fmt.Errorf("launch: %s: not inside a Slurm job step (no SLURM_STEP_NODELIST)", origin(look, EnvRendezvous))
		}
		return nil // comm.Validate reports the missing address
	}
	hosts, err := ExpandHostlist(list)
	if err != nil || len(hosts) == 0 {
		return fmt.Errorf("launch: %s=%q: %v", listVar, list, err)
	}
	var port int
	var how string
	if p := get(EnvPort); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("launch: %s: want a port 1-65535", origin(look, EnvPort))
		}
		how = "port " + origin(look, EnvPort)
	} else {
		pr := get(EnvPortRange)
		prFrom := origin(look, EnvPortRange)
		if pr == "" {
			pr, prFrom = DefaultPortRange, "the default range "+DefaultPortRange
		}
		lo, hi, err := ParsePortRange(pr)
		if err != nil {
			return fmt.Errorf("launch: %s: %w", prFrom, err)
		}
		job, err1 := strconv.ParseUint(id.SlurmJobID, 10, 64)
		step, err2 := strconv.ParseUint(id.SlurmStepID, 10, 64)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("launch: under Slurm without --port, rank 0's port is derived from SLURM_JOB_ID and SLURM_STEP_ID, but they are %q and %q",
				id.SlurmJobID, id.SlurmStepID)
		}
		port = SlurmPort(job, step, lo, hi)
		how = fmt.Sprintf("port %d derived from SLURM_JOB_ID=%d and SLURM_STEP_ID=%d in %s", port, job, step, prFrom)
	}
	cfg.Addr = net.JoinHostPort(hosts[0], strconv.Itoa(port))
	id.AddrFrom = fmt.Sprintf("the first host of %s=%s and %s", listVar, list, how)
	return nil
}

// slurmNodelist is the step's node list, else the job's.
func slurmNodelist(get func(string) string) string {
	if l := get("SLURM_STEP_NODELIST"); l != "" {
		return l
	}
	return get("SLURM_JOB_NODELIST")
}

// slurmProcs computes Identity.Procs.
func slurmProcs(get func(string) string) int {
	if n, err := strconv.Atoi(get("SLURM_CPUS_PER_TASK")); err == nil && n > 0 {
		return n
	}
	cpus, err1 := strconv.Atoi(get("SLURM_CPUS_ON_NODE"))
	node, err2 := strconv.Atoi(get("SLURM_NODEID"))
	tasks := TasksOnNode(get("SLURM_STEP_TASKS_PER_NODE"), node)
	if err1 != nil || err2 != nil || cpus < 1 || tasks < 1 {
		return 0
	}
	return max(1, min(cpus, runtime.NumCPU())/tasks)
}

// TasksOnNode reads the tasks of node (0-based) from Slurm's compressed
// tasks-per-node list, e.g. "2(x3),1" (0 if it cannot be told).
func TasksOnNode(list string, node int) int {
	for _, part := range strings.Split(list, ",") {
		n, rep := part, 1
		if i := strings.Index(part, "(x"); i >= 0 && strings.HasSuffix(part, ")") {
			r, err := strconv.Atoi(part[i+2 : len(part)-1])
			if err != nil {
				return 0
			}
			n, rep = part[:i], r
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			return 0
		}
		if node < rep {
			return v
		}
		node -= rep
	}
	return 0
}

// origin names where variable name's value came from.
func origin(look Lookup, name string) string {
	v, flag := look(name)
	if flag != "" {
		return fmt.Sprintf("--%s %s", flag, v)
	}
	return name + "=" + v
}

func isPortZero(addr string) bool {
	_, p, err := net.SplitHostPort(addr)
	return err == nil && p == "0"
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// stepsPerJob is how many consecutive step ids of one job get distinct
// ports before they wrap; consecutive jobs' ports are that far apart.
const stepsPerJob = 16

// SlurmPort derives rank 0's port from Slurm's job and step ids within
// [lo, hi]: lo + (job*16 + step mod 16) mod (hi-lo+1). Steps 0-15 of one
// job get distinct ports, and so do all steps below 16 of up to
// (hi-lo+1)/16 consecutive jobs (625 with the default range): two job
// steps sharing a node collide only if their jobs are that far apart.
// Special step ids (batch, extern: 2^32-2, 2^32-1) map like any other.
func SlurmPort(job, step uint64, lo, hi int) int {
	n := uint64(hi - lo + 1)
	return lo + int((job%n*stepsPerJob+step%stepsPerJob)%n)
}

// ParsePortRange parses "LO-HI" (1 <= LO <= HI <= 65535).
func ParsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("port range %q: want LO-HI with 1 <= LO <= HI <= 65535", s)
	}
	return lo, hi, nil
}

// secretFrom reads the job secret.
func secretFrom(look Lookup) ([]byte, error) {
	if s, _ := look(EnvSecret); s != "" {
		return []byte(s), nil
	}
	f, _ := look(EnvSecretFile)
	from := EnvSecretFile
	if f == "" {
		dir, _ := look("SLURM_SUBMIT_DIR")
		if dir == "" {
			return nil, nil
		}
		f = filepath.Join(dir, SecretFileName)
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		from = "$SLURM_SUBMIT_DIR/" + SecretFileName
	}
	return ReadSecretFile(f, from)
}

// ReadSecretFile reads a secret file (trailing newline trimmed), refusing
// one that group or others may read.
func ReadSecretFile(path, from string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("launch: %s: %w", from, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("launch: %s: %s has mode %04o: the job secret must be readable by its owner only (chmod 600 %s)",
			from, path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("launch: %s: %w", from, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return nil, fmt.Errorf("launch: %s: %s is empty", from, path)
	}
	return []byte(s), nil
}

// Resolve completes the address of rank 0 for a rank other than 0: it
// reads a store if the address is not known yet (within the rendezvous
// timeout), and, when no --bind is given, binds this rank to the local
// address it uses to reach rank 0, so that it does not listen on every
// interface. Errors say which address was tried and where it came from.
func (id *Identity) Resolve(ctx context.Context) error {
	cfg := &id.Config
	if cfg.Rank == 0 || cfg.Size == 1 {
		return nil
	}
	if (cfg.Addr == "" || isPortZero(cfg.Addr)) && cfg.Store != nil {
		ctx, cancel := context.WithTimeout(ctx, cfg.RendezvousTimeout)
		defer cancel()
		b, err := cfg.Store.Get(ctx, comm.AddrKey)
		if err != nil {
			return &RendezvousError{Rank: cfg.Rank, From: id.AddrFrom, Err: fmt.Errorf("rank 0 never published its address: %w", err)}
		}
		cfg.Addr = string(b)
	}
	if cfg.Bind == "" {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return &RendezvousError{Rank: cfg.Rank, Addr: cfg.Addr, From: id.AddrFrom, Err: err}
		}
		if ip := localIPToward(host, port); ip != "" {
			cfg.Bind = ip
		}
	}
	return nil
}

// Explain adds the address tried and its provenance to a rendezvous error
// (comm's *RendezvousError or a refused handshake); other errors pass
// unchanged.
func (id *Identity) Explain(err error) error {
	var re *comm.RendezvousError
	if err == nil || id.Config.Rank == 0 || !errors.As(err, &re) {
		return err
	}
	return &RendezvousError{Rank: id.Config.Rank, Addr: id.Config.Addr, From: id.AddrFrom, Err: err}
}

// RendezvousError is a rank's failure to reach rank 0, naming the address
// and how it was found. Exit code 3.
type RendezvousError struct {
	Rank int
	Addr string // the address tried, if known
	From string // how it was found
	Err  error
}

func (e *RendezvousError) Error() string {
	where := "rank 0"
	if e.Addr != "" {
		where += " at " + e.Addr
	}
	if e.From != "" {
		where += " (from " + e.From + ")"
	}
	return fmt.Sprintf("launch: rank %d could not reach %s: %v", e.Rank, where, e.Err)
}

func (e *RendezvousError) Unwrap() error { return e.Err }

// ExitCode is 3, as for comm's rendezvous timeout.
func (e *RendezvousError) ExitCode() int { return 3 }

// localIPToward returns the local IP address this host would use to reach
// host (no packet is sent), or "" if that cannot be told (then comm
// listens on every interface).
func localIPToward(host, port string) string {
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return ""
	}
	ip := ips[0]
	for _, c := range ips {
		if c.To4() != nil {
			ip = c
			break
		}
	}
	if ip.IsLoopback() {
		if ip.To4() != nil {
			return "127.0.0.1"
		}
		return "::1"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		return ""
	}
	defer conn.Close()
	a, _ := conn.LocalAddr().(*net.UDPAddr)
	if a == nil {
		return ""
	}
	return a.IP.String()
}

// outwardIP is the address rank 0 listens on and publishes for a file
// rendezvous: --bind if given, else the first address of this host's name
// that is not a loopback, else 127.0.0.1 (a one-host job).
func outwardIP(bind string) string {
	if bind != "" {
		if h, _, err := net.SplitHostPort(bind); err == nil {
			return h
		}
		if net.ParseIP(bind) != nil {
			return bind
		}
		if ifi, err := net.InterfaceByName(bind); err == nil {
			if addrs, err := ifi.Addrs(); err == nil {
				for _, a := range addrs {
					if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
						return ipn.IP.String()
					}
				}
			}
		}
	}
	if h, err := os.Hostname(); err == nil {
		if ips, err := net.LookupIP(h); err == nil {
			for _, ip := range ips {
				if !ip.IsLoopback() && ip.To4() != nil {
					return ip.String()
				}
			}
		}
	}
	return "127.0.0.1"
}

func lookInt(look Lookup, names ...string) (int, error) {
	for _, n := range names {
		if v, _ := look(n); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return 0, fmt.Errorf("launch: %s is not an integer", origin(look, n))
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("launch: none of %v is set (not started by a launcher?)", names)
}

// ReadSecret reads the job secret from the first line of r (the ssh
// launcher writes it to the remote rank's stdin). The returned channel is
// closed when r reaches end of file or fails afterwards: the launcher
// closes stdin (or its connection drops) to stop the rank.
func ReadSecret(r interface{ Read([]byte) (int, error) }) ([]byte, <-chan struct{}, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) >= 4096 {
				return nil, nil, errors.New("launch: secret on stdin: no newline within 4096 bytes")
			}
			line = append(line, b[0])
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("launch: secret on stdin (%s=1): %w", EnvSecretIn, err)
		}
	}
	s := strings.TrimRight(string(line), "\r")
	if s == "" {
		return nil, nil, fmt.Errorf("launch: empty secret on stdin (%s=1)", EnvSecretIn)
	}
	eof := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := r.Read(buf); err != nil {
				close(eof)
				return
			}
		}
	}()
	return []byte(s), eof, nil
}

// nodeHash is a stable hash of a job id, for the ssh launcher's default
// port.
func nodeHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
