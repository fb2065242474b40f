package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlanResolve: a bad plan is refused naming its field; ssh places the
// ranks on the hostfile's slots.
func TestPlanResolve(t *testing.T) {
	hf := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hf, []byte("a slots=2\nb slots=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Plan{Kind: "ssh", Hostfile: hf, SSH: []string{"ssh"}, PortRange: DefaultPortRange}
	if err := p.Resolve(); err != nil || p.NP != 3 || len(p.Hosts) != 3 {
		t.Fatalf("ssh plan: %v, NP %d, hosts %v", err, p.NP, p.Hosts)
	}
	for _, tc := range []struct {
		field string
		p     Plan
	}{
		{"Hostfile", Plan{Kind: "local", NP: 2, Hostfile: hf}},
		{"Kind", Plan{Kind: "ssh"}},
		{"Kind", Plan{Kind: "mpirun"}},
		{"NP", Plan{Kind: "local", NP: 0}},
		{"NP", Plan{Kind: "srun", NP: MaxRanks + 1, NPSet: true, Srun: []string{"srun"}}},
		{"SSH", Plan{Kind: "ssh", Hostfile: hf}},
		{"Srun", Plan{Kind: "srun", NP: 2, NPSet: true}},
		{"Port", Plan{Kind: "local", NP: 2, Port: 70000, PortRange: DefaultPortRange}},
		{"PortRange", Plan{Kind: "local", NP: 2, PortRange: "9-1"}},
	} {
		if err := tc.p.Resolve(); err == nil || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want an error naming %s", tc.field, err, tc.field)
		}
	}
}
