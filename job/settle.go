package job

import (
	"math"
	"path/filepath"
	"time"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/ranks"
)

// DefaultMaxEpochs caps a target or tolerance run that gives no epochs,
// iterations or time: a run that cannot reach its target stops there and
// fails instead of running for ever. The default cap binds only after
// DefaultMaxEpochsMinTime of training, so that small data sets, whose
// epochs take milliseconds (digits and wine need 1300-5300 epochs, 1-7 s),
// are not cut short.
const (
	DefaultMaxEpochs        = 1000
	DefaultMaxEpochsMinTime = 60 * time.Second
)

// Settings are a training job's settings that ranks.Config does not hold
// or whose default depends on the others.
type Settings struct {
	MaxEpochsSet bool // MaxEpochs was given (else the default cap applies)
	Codec        string
	// HeartbeatTimeout and RendezvousTimeout are comm's; NetDelay and
	// NetJitter hold every message sent (a slow network on loopback).
	HeartbeatTimeout, RendezvousTimeout, NetDelay, NetJitter time.Duration
	Progress                                                 string // auto, line or none
}

// Settle checks s and cfg's batch against its data (cfg already passed
// Validate), fills cfg's defaults (the stopping rule, Out, PhiStar NaN)
// and returns the function that applies the network settings to a rank's
// comm.Config. Errors are UsageErrors naming the field.
func Settle(cfg *ranks.Config, s Settings) (func(*comm.Config), error) {
	if cfg.BatchSet {
		if err := CheckBatchBound(cfg.Data, cfg.Batch); err != nil {
			return nil, err
		}
	}
	if !s.MaxEpochsSet && (cfg.Target > 0 || cfg.Tol > 0) && cfg.Epochs == 0 && cfg.Iters == 0 && cfg.Time == 0 {
		cfg.MaxEpochs, cfg.MaxEpochsMinTime = DefaultMaxEpochs, DefaultMaxEpochsMinTime
	}
	if cfg.Iters == 0 && cfg.Epochs == 0 && cfg.Time == 0 && cfg.Target == 0 && cfg.Tol == 0 && cfg.MaxEpochs == 0 {
		cfg.Epochs = 20
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join("out", "train-"+time.Now().UTC().Format("20060102-150405"))
	}
	cfg.PhiStar = math.NaN()
	codec, err := comm.ParseCodec(s.Codec)
	if err != nil {
		return nil, usagef("Codec: %v", err)
	}
	hb, rv := s.HeartbeatTimeout, s.RendezvousTimeout
	if hb <= comm.DefaultHeartbeatInterval || rv <= 0 {
		return nil, usagef("HeartbeatTimeout must exceed %v and --rendezvous-timeout must be > 0", comm.DefaultHeartbeatInterval)
	}
	nd, nj := s.NetDelay, s.NetJitter
	if nd < 0 || nj < 0 {
		return nil, usagef("NetDelay and --net-jitter must be >= 0")
	}
	switch s.Progress {
	case "auto", "line", "none":
	default:
		return nil, usagef("Progress %q: want auto, line or none", s.Progress)
	}
	return func(cc *comm.Config) {
		cc.Codec, cc.HeartbeatTimeout, cc.RendezvousTimeout = codec, hb, rv
		cc.NetDelay, cc.NetJitter = nd, nj
	}, nil
}
