package main

import (
	"slices"
	"testing"

	"errors"
	"github.com/urfave/cli/v2"
)

func TestPermuteArgs(t *testing.T) {
	app := &cli.App{Commands: []*cli.Command{
		{Name: "info", Flags: []cli.Flag{&cli.IntFlag{Name: "features"}, &cli.BoolFlag{Name: "json"}}},
		{Name: "bench", Subcommands: []*cli.Command{{Name: "parse", Flags: []cli.Flag{&cli.IntFlag{Name: "reps"}}}}},
	}}
	for _, c := range []struct{ in, want []string }{
		{[]string{"a", "info", "F", "--features", "9"}, []string{"a", "info", "--features", "9", "F"}},
		{[]string{"a", "info", "F", "--json", "G"}, []string{"a", "info", "--json", "F", "G"}},
		{[]string{"a", "info", "F", "--features=9"}, []string{"a", "info", "--features=9", "F"}},
		{[]string{"a", "info", "--", "-F", "--json"}, []string{"a", "info", "--", "-F", "--json"}},
		{[]string{"a", "bench", "parse", "F", "--reps", "3"}, []string{"a", "bench", "parse", "--reps", "3", "F"}},
		{[]string{"a", "unknown", "F", "--x"}, []string{"a", "unknown", "F", "--x"}},
		{[]string{"a", "--help"}, []string{"a", "--help"}},
	} {
		if got := permuteArgs(app, c.in); !slices.Equal(got, c.want) {
			t.Errorf("permuteArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFieldError: a config's field error is reported with its flag: the
// given name, else the field in kebab case, or no name for "".
func TestFieldError(t *testing.T) {
	flags := map[string]string{"NP": "np", "Reg": ""}
	for _, tc := range []struct{ in, want string }{
		{"MaxDelay 3: want K >= 0", "train: --max-delay 3: want K >= 0"},
		{"NP: too many", "train: --np: too many"},
		{"Reg: solver: bad lambda", "train: solver: bad lambda"},
		{"not a field", "train: not a field"},
	} {
		err := fieldError("train", errors.New(tc.in), flags)
		if err.Error() != tc.want || exitCode(err) != exitUsage {
			t.Errorf("%q: %q (exit %d), want %q (exit 2)", tc.in, err, exitCode(err), tc.want)
		}
	}
}
