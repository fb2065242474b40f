package launch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/comm"
)

// FromEnv builds a rank's comm.Config from the environment that a
// launcher set (getenv nil means os.Getenv):
//
//   - rank and size from ASYNCMB_RANK and ASYNCMB_SIZE, else from Slurm's
//     SLURM_PROCID and SLURM_NTASKS;
//   - the job id from ASYNCMB_JOB_ID, else "slurm-$SLURM_JOB_ID";
//   - rank 0's address from ASYNCMB_ADDR and/or a rendezvous store from
//     ASYNCMB_STORE_DIR (file store) or ASYNCMB_STORE_ADDR (TCP store);
//   - the secret from ASYNCMB_SECRET, else from the file named by
//     ASYNCMB_SECRET_FILE (trailing newline trimmed);
//   - the bind address or interface from ASYNCMB_BIND;
//   - optionally the codec (ASYNCMB_CODEC), the heartbeat timeout
//     (ASYNCMB_HEARTBEAT_TIMEOUT, the interval becoming a tenth of it) and
//     the rendezvous timeout (ASYNCMB_RENDEZVOUS_TIMEOUT), as Go durations.
//
// The other fields keep comm's defaults; the caller may override them
// before comm.New.
func FromEnv(getenv func(string) string) (comm.Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	rank, err := envInt(getenv, EnvRank, "SLURM_PROCID")
	if err != nil {
		return comm.Config{}, err
	}
	size, err := envInt(getenv, EnvSize, "SLURM_NTASKS")
	if err != nil {
		return comm.Config{}, err
	}
	cfg := comm.DefaultConfig(rank, size)
	cfg.JobID = getenv(EnvJobID)
	if cfg.JobID == "" && getenv("SLURM_JOB_ID") != "" {
		cfg.JobID = "slurm-" + getenv("SLURM_JOB_ID")
	}
	cfg.Addr = getenv(EnvAddr)
	cfg.Bind = getenv(EnvBind)
	switch {
	case getenv(EnvStoreDir) != "":
		cfg.Store = comm.FileStore{Dir: getenv(EnvStoreDir)}
	case getenv(EnvStoreAddr) != "":
		cfg.Store = comm.TCPStore{Addr: getenv(EnvStoreAddr)}
	}
	if s := getenv(EnvSecret); s != "" {
		cfg.Secret = []byte(s)
	} else if f := getenv(EnvSecretFile); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return comm.Config{}, fmt.Errorf("launch: %s: %w", EnvSecretFile, err)
		}
		cfg.Secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if v := getenv(EnvCodec); v != "" {
		if cfg.Codec, err = comm.ParseCodec(v); err != nil {
			return comm.Config{}, fmt.Errorf("launch: %s: %w", EnvCodec, err)
		}
	}
	if v := getenv(EnvHeartbeatTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return comm.Config{}, fmt.Errorf("launch: %s=%q: want a positive duration", EnvHeartbeatTimeout, v)
		}
		cfg.HeartbeatTimeout, cfg.HeartbeatInterval = d, d/10
	}
	if v := getenv(EnvRendezvousTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return comm.Config{}, fmt.Errorf("launch: %s=%q: want a positive duration", EnvRendezvousTimeout, v)
		}
		cfg.RendezvousTimeout = d
	}
	if err := cfg.Validate(); err != nil {
		return comm.Config{}, fmt.Errorf("launch: configuration from the environment: %w", err)
	}
	return cfg, nil
}

func envInt(getenv func(string) string, names ...string) (int, error) {
	for _, n := range names {
		if v := getenv(n); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return 0, fmt.Errorf("launch: %s=%q is not an integer", n, v)
			}
			return i, nil
		}
	}
	return 0, fmt.Errorf("launch: none of %v is set (not started by a launcher?)", names)
}
