package launch

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var hostlistCases = []struct {
	list string
	want []string // nil: an error
	// scontrol: what `scontrol show hostnames` (22.05) does with it: same
	// (the same names, or refuses it too when want is nil), refuses, or
	// "" (not compared: our size bound, or its lenient reading of
	// unmatched brackets such as "n[1-2" -> "n]").
	scontrol string
}{
	{"n1", []string{"n1"}, "same"},
	{"n[1-3]", []string{"n1", "n2", "n3"}, "same"},
	{"n[01-03,07],gpu[1,5]", []string{"n01", "n02", "n03", "n07", "gpu1", "gpu5"}, "same"},
	{"n[9-11]", []string{"n9", "n10", "n11"}, "same"},
	{"n[009-011]", []string{"n009", "n010", "n011"}, "same"},
	{"n[01-3]", []string{"n01", "n02", "n03"}, "same"},
	{"n[1-03]", []string{"n1", "n2", "n3"}, "same"},
	{"n[0-2]", []string{"n0", "n1", "n2"}, "same"},
	{"a[1-2]b[3-4]", []string{"a1b3", "a1b4", "a2b3", "a2b4"}, "same"},
	{"rack[1-2]-n[01-02]", []string{"rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"}, "same"},
	{"a,b[1-2],c", []string{"a", "b1", "b2", "c"}, "same"},
	{"n1,n1", []string{"n1", "n1"}, "same"},
	{"n[1-2],,m", []string{"n1", "n2", "m"}, "same"},
	{"a-[1-2]", []string{"a-1", "a-2"}, "same"},
	{"n[1-3]x[4]", []string{"n1x4", "n2x4", "n3x4"}, "same"},
	{"", []string{}, ""},
	// Suffixes after the last group: Slurm 22.05's scontrol refuses them.
	{"n[01-03,07],gpu[1,5]-ib", []string{"n01", "n02", "n03", "n07", "gpu1-ib", "gpu5-ib"}, "refuses"},
	{"n[3-1]", nil, "same"},
	{"n[a-b]", nil, "same"},
	{"n[1-2", nil, ""},
	{"n1-2]", nil, ""},
	{"n[[1]]", nil, ""},
	{"n[1-999999999]", nil, ""},
	{"n[1-300]x[1-300]", nil, ""},
}

func TestExpandHostlist(t *testing.T) {
	for _, tc := range hostlistCases {
		got, err := ExpandHostlist(tc.list)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: %v, want an error", tc.list, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
			t.Errorf("%q: %v, %v; want %v", tc.list, got, err, tc.want)
		}
	}
}

// TestHostlistMatchesScontrol compares the expander with
// `scontrol show hostnames` on every case that scontrol accepts (it needs
// only a minimal slurm.conf, no running cluster). Skipped without
// scontrol unless ASYNCMB_REQUIRE_TOOLS=1.
func TestHostlistMatchesScontrol(t *testing.T) {
	if _, err := exec.LookPath("scontrol"); err != nil {
		if os.Getenv("ASYNCMB_REQUIRE_TOOLS") == "1" {
			t.Fatal("scontrol (Debian's slurm-client) is required")
		}
		t.Skip("scontrol not installed")
	}
	conf := filepath.Join(t.TempDir(), "slurm.conf")
	os.WriteFile(conf, []byte("ClusterName=hostlisttest\nSlurmctldHost=localhost\n"), 0o644)
	compared := 0
	for _, tc := range hostlistCases {
		if tc.scontrol == "" {
			continue
		}
		cmd := exec.Command("scontrol", "show", "hostnames", tc.list)
		cmd.Env = append(os.Environ(), "SLURM_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scontrol show hostnames %q: %v\n%.300s", tc.list, err, out)
		}
		text := string(out)
		refused := strings.Contains(text, "Invalid hostlist")
		switch {
		case tc.scontrol == "refuses" || tc.want == nil:
			if !refused {
				t.Errorf("%q: scontrol gives %.200s, want it refused", tc.list, text)
			}
		case refused:
			t.Errorf("%q: scontrol refuses it: %.200s", tc.list, text)
		case !slices.Equal(strings.Fields(text), tc.want):
			t.Errorf("%q: scontrol gives %.200v, we %.200v", tc.list, strings.Fields(text), tc.want)
		}
		compared++
	}
	if compared < 10 {
		t.Errorf("only %d cases compared with scontrol", compared)
	}
}

// FuzzExpandHostlist: whatever the input, the expander neither panics nor
// exceeds its limit; every name it returns is plain (no brackets or
// commas), so the names joined by commas expand to themselves.
func FuzzExpandHostlist(f *testing.F) {
	for _, tc := range hostlistCases {
		f.Add(tc.list)
	}
	f.Fuzz(func(t *testing.T, list string) {
		names, err := ExpandHostlist(list)
		if err != nil {
			return
		}
		if len(names) > maxHostlist {
			t.Fatalf("%q: %d names, over the limit %d", list, len(names), maxHostlist)
		}
		for _, n := range names {
			if n == "" || strings.ContainsAny(n, "[],") {
				t.Fatalf("%q: name %q is not plain", list, n)
			}
		}
		if len(names) == 0 || len(names) > 1000 {
			return
		}
		again, err := ExpandHostlist(strings.Join(names, ","))
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("%q: the expanded names %v expand to %v, %v", list, names, again, err)
		}
	})
}
