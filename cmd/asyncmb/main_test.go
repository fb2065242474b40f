package main

import (
	"slices"
	"testing"

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
