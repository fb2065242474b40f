package job

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/ranks"
)

// TestRankExit: the exit-code table of a rank's outcome.
func TestRankExit(t *testing.T) {
	live := context.Background()
	stopped, cancel := context.WithCancel(live)
	cancel()
	boom := errors.New("boom")
	for _, c := range []struct {
		name string
		ctx  context.Context
		rank int
		err  error
		code int // 0: nil error
		msg  string
	}{
		{"ok", live, 0, nil, 0, ""},
		{"signal master", stopped, 0, nil, ExitInterrupt, "interrupted (the outputs of what was trained are written)"},
		{"signal worker", stopped, 2, boom, ExitInterrupt, "interrupted"},
		{"reported elsewhere", live, 1, fmt.Errorf("x: %w", ranks.ErrReported), ExitFailure, ""},
		{"own failure", live, 3, boom, -1, "rank 3: boom"},
	} {
		err := RankExit(c.ctx, c.rank, c.err)
		if c.code == 0 {
			if err != nil {
				t.Errorf("%s: %v, want nil", c.name, err)
			}
			continue
		}
		var ee ExitError
		switch {
		case c.code < 0:
			if errors.As(err, &ee) || err == nil || err.Error() != c.msg {
				t.Errorf("%s: %v, want the rank's error %q", c.name, err, c.msg)
			}
		case !errors.As(err, &ee) || ee.Code != c.code:
			t.Errorf("%s: %v, want exit %d", c.name, err, c.code)
		case c.msg != "" && err.Error() != c.msg:
			t.Errorf("%s: %q, want %q", c.name, err, c.msg)
		case c.code == ExitFailure && !ee.Quiet:
			t.Errorf("%s: not quiet", c.name)
		}
	}
}

// TestSettle: the defaults and the network settings, and errors that
// start with the field at fault.
func TestSettle(t *testing.T) {
	good := Settings{Codec: "s2", HeartbeatTimeout: 10 * time.Second, RendezvousTimeout: time.Minute, Progress: "line"}
	cfg := ranks.Config{Target: 1e-3}
	apply, err := Settle(&cfg, good)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxEpochs != DefaultMaxEpochs || cfg.Epochs != 0 || !strings.HasPrefix(cfg.Out, "out/train-") || !math.IsNaN(cfg.PhiStar) {
		t.Errorf("target run: MaxEpochs %v Epochs %v Out %q PhiStar %v", cfg.MaxEpochs, cfg.Epochs, cfg.Out, cfg.PhiStar)
	}
	var cc comm.Config
	apply(&cc)
	if cc.HeartbeatTimeout != good.HeartbeatTimeout || cc.RendezvousTimeout != good.RendezvousTimeout {
		t.Errorf("comm config %+v", cc)
	}
	plain := ranks.Config{Out: "o"}
	if _, err := Settle(&plain, good); err != nil || plain.Epochs != 20 || plain.MaxEpochs != 0 || plain.Out != "o" {
		t.Errorf("no rule: %v, Epochs %v MaxEpochs %v Out %q", err, plain.Epochs, plain.MaxEpochs, plain.Out)
	}
	for field, s := range map[string]Settings{
		"Codec":            {Codec: "lz4", HeartbeatTimeout: good.HeartbeatTimeout, RendezvousTimeout: time.Minute, Progress: "line"},
		"HeartbeatTimeout": {Codec: "s2", HeartbeatTimeout: time.Millisecond, RendezvousTimeout: time.Minute, Progress: "line"},
		"NetDelay":         {Codec: "s2", HeartbeatTimeout: good.HeartbeatTimeout, RendezvousTimeout: time.Minute, NetJitter: -1, Progress: "line"},
		"Progress":         {Codec: "s2", HeartbeatTimeout: good.HeartbeatTimeout, RendezvousTimeout: time.Minute, Progress: "loud"},
	} {
		_, err := Settle(&ranks.Config{Out: "o"}, s)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.ExitCode() != ExitUsage || !strings.HasPrefix(err.Error(), field) {
			t.Errorf("%s: %v, want a UsageError starting with the field", field, err)
		}
	}
}
