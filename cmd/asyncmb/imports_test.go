package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph keeps the architecture visible (STYLE rule 1): kernels
// and comm import nothing of ours, solver only kernels, data only kernels,
// launch at most comm, ranks joins comm, data, kernels and solver, and only
// cmd/asyncmb imports urfave/cli. Test files are not counted.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/asyncmb/asyncmb/"
	gonum, compress, sys := "gonum.org/v1/gonum", "github.com/klauspost/compress", "golang.org/x/sys"
	for pkg, allowed := range map[string][]string{
		"kernels": {gonum},
		"data":    {mod + "kernels", gonum},
		"solver":  {mod + "kernels", gonum},
		"comm":    {compress, sys},
		"launch":  {mod + "comm", compress, sys},
		"ranks":   {mod + "comm", mod + "data", mod + "kernels", mod + "solver", gonum, compress, sys},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+pkg {
				continue
			}
			ok := false
			for _, a := range allowed {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
