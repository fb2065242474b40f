package ranks

import (
	"strings"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/solver"
)

// TestConfigValidate: each bad setting is refused with an error that
// starts with the field at fault (the command maps it to its flag), and a
// command line's defaults pass.
func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		return Config{Data: "d", Batch: 64, MinWorkers: 1, Dilate: 1, Epochs: 20, Step: StepSpec{Default: true}}
	}
	if c := ok(); c.Validate() != nil {
		t.Fatalf("defaults refused: %v", c.Validate())
	}
	for _, tc := range []struct {
		field string
		bad   func(*Config)
	}{
		{"MaxDelay", func(c *Config) { c.MaxDelay = 3 }}, // without algo.ModeBounded
		{"MaxDelay", func(c *Config) { c.Mode, c.MaxDelay = algo.ModeBounded, -1 }},
		{"SyncEvery", func(c *Config) { c.SyncEvery = -1 }},
		{"Batch", func(c *Config) { c.Batch = 0 }},
		{"Method", func(c *Config) { c.Method, c.Step = solver.MethodSVRG, StepSpec{Kind: solver.StepConvex} }},
		{"Method", func(c *Config) { c.Method, c.Mode = solver.MethodSVRG, algo.ModeSync }},
		{"Metric", func(c *Config) { c.Metric = solver.MetricDiag }},
		{"Iters", func(c *Config) { c.Time = -time.Second }},
		{"Tol", func(c *Config) { c.Tol = -1 }},
		{"PolishIters", func(c *Config) { c.PolishIters = -1 }},
		{"SnapshotEvery", func(c *Config) { c.SnapshotEvery = -1 }},
		{"Jitter", func(c *Config) { c.Jitter = -time.Millisecond }},
		{"CheckpointEvery", func(c *Config) { c.CheckpointEvery = -time.Second }},
		{"MinWorkers", func(c *Config) { c.MinWorkers = 0 }},
		{"Mode", func(c *Config) { c.Mode, c.Pipeline = algo.ModeSync, true }},
		{"Dilate", func(c *Config) { c.Dilate = 0.5 }},
	} {
		c := ok()
		tc.bad(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming %s", tc.field, err, tc.field)
		}
	}
}

func TestParseSlow(t *testing.T) {
	m, err := ParseSlow([]string{"1=4", "3=1.5"})
	if err != nil || len(m) != 2 || m[1] != 4 || m[3] != 1.5 {
		t.Fatalf("ParseSlow: %v, %v", m, err)
	}
	for _, bad := range []string{"0=2", "1=0.5", "x=2", "1", "1=inf"} {
		if _, err := ParseSlow([]string{bad}); err == nil || !strings.HasPrefix(err.Error(), "Slow") {
			t.Errorf("%q: got %v, want an error naming Slow", bad, err)
		}
	}
}
