package problem

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

var heart = filepath.Join("..", "testdata", "heart_scale")

// TestConfigValidate: a bad field is named at the start of the error.
func TestConfigValidate(t *testing.T) {
	ok := Config{Data: heart, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: 1e-3}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		field string
		bad   func(*Config)
	}{
		{"Data", func(c *Config) { c.Data = "" }},
		{"GroupSpec", func(c *Config) { c.Reg = solver.Reg{Kind: solver.RegGroup, Lambda: 1} }},
		{"GroupSpec", func(c *Config) { c.Reg, c.GroupSpec = solver.Reg{Kind: solver.RegGroup, Lambda: 1}, "3,x" }},
		{"Reg", func(c *Config) { c.Reg.Lambda = -1 }},
		{"Features", func(c *Config) { c.Features = -1 }},
	} {
		c := ok
		tc.bad(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming %s", tc.field, err, tc.field)
		}
	}
}

// TestLoad: heart_scale (270 rows, 13 features) loads with -1/+1 labels,
// the bias adds a column, groups that do not cover the dimension are a
// FieldError, and Of rebuilds the same cache key from the problem.
func TestLoad(t *testing.T) {
	pc := Config{Data: heart, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegL1, Lambda: 1e-3}, Bias: true}
	lp, err := pc.Load()
	if err != nil {
		t.Fatal(err)
	}
	if n, d := lp.Problem.Dims(); n != 270 || d != 14 || lp.LabelMap == nil {
		t.Fatalf("dims %d x %d, label map %v; want 270 x 14 with a map", n, d, lp.LabelMap)
	}
	if got := pc.Of(lp.Problem, lp.Hash).Key; got != lp.Key {
		t.Errorf("Of's key %q, Load's %q", got, lp.Key)
	}
	if !strings.Contains(lp.Describe(), "heart_scale: n=270 d=14") {
		t.Errorf("Describe: %s", lp.Describe())
	}
	pc = Config{Data: heart, Loss: kernels.Logistic, Reg: solver.Reg{Kind: solver.RegGroup, Lambda: 1e-3}, GroupSpec: "5,5"}
	var fe *FieldError
	if _, err := pc.Load(); !errors.As(err, &fe) || fe.Field != "GroupSpec" {
		t.Errorf("groups 5,5 over 13 features: %v, want a GroupSpec FieldError", err)
	}
}
