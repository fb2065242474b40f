package launch

import (
	"slices"
	"testing"
)

// TestFlagsFirst: flags move ahead of the positional arguments with their
// values; "--name=value" and "--" are kept whole.
func TestFlagsFirst(t *testing.T) {
	takes := func(name string) bool { return name == "features" || name == "o" }
	for _, c := range []struct{ in, want []string }{
		{[]string{"F", "--features", "3"}, []string{"--features", "3", "F"}},
		{[]string{"F", "--bias", "G"}, []string{"--bias", "F", "G"}},
		{[]string{"F", "--features=3", "G"}, []string{"--features=3", "F", "G"}},
		{[]string{"F", "--", "--features", "3"}, []string{"F", "--", "--features", "3"}},
		{[]string{"-o", "x", "F", "--features"}, []string{"-o", "x", "--features", "F"}},
	} {
		if got := FlagsFirst(c.in, takes); !slices.Equal(got, c.want) {
			t.Errorf("FlagsFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
