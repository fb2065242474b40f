package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// plotDeps are gonum/plot's own dependencies.
var plotDeps = []string{"gonum.org/v1/plot", "codeberg.org/go-fonts", "codeberg.org/go-latex", "codeberg.org/go-pdf",
	"git.sr.ht/~sbinet/gg", "github.com/ajstarks/svgo", "github.com/golang/freetype", "golang.org/x/image", "golang.org/x/text"}

// TestImportGraph keeps the architecture visible (STYLE rule 1): kernels
// and comm import nothing of ours, solver only kernels, data only kernels,
// algo only solver and kernels, memnet only algo and what it may, problem joins data and solver, launch at
// most comm, ranks joins algo, comm, data, kernels and solver, the bench
// packages sit beside what they time, job joins launch, ranks, problem and
// study for a training job, and only cmd/asyncmb imports
// urfave/cli. Test files are not counted.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/asyncmb/asyncmb/"
	gonum, compress, sys := "gonum.org/v1/gonum", "github.com/klauspost/compress", "golang.org/x/sys"
	ranksDeps := []string{mod + "ranks", mod + "algo", mod + "comm", mod + "data", mod + "kernels", mod + "solver", gonum, compress, sys}
	// simDeps: the simulator runs on memnet and takes its settings from ranks.
	simDeps := append([]string{mod + "sim", mod + "memnet"}, ranksDeps...)
	for pkg, allowed := range map[string][]string{
		"kernels": {gonum},
		"data":    {mod + "kernels", gonum},
		"solver":  {mod + "kernels", gonum},
		// algo is the algorithm's state machines: no comm, no data.
		"algo":   {mod + "kernels", mod + "solver", gonum},
		"comm":   {compress, sys},
		"launch": {mod + "comm", compress, sys},
		"ranks":  {mod + "algo", mod + "comm", mod + "data", mod + "kernels", mod + "solver", gonum, compress, sys},
		// problem is the one problem loader: it joins data and solver.
		"problem": {mod + "data", mod + "kernels", mod + "solver", gonum},
		// study starts processes and reads their files: the ranks' output
		// types, the simulator (asyncmb simulate) and gonum/plot with its
		// font, image and vector backends.
		"study": append(slices.Clone(simDeps), plotDeps...),
		// memnet runs the state machines on a virtual clock: algo and what
		// algo may import, no comm, no ranks (and no IO: TestMemnetNoIO).
		"memnet": {mod + "algo", mod + "kernels", mod + "solver", gonum},
		// sim drives the real state machines in simulated time through
		// memnet: no sockets, files or clocks of its own (checked below on
		// its direct imports).
		"sim": simDeps,
		// The `asyncmb bench` drivers sit beside what they time. Those of
		// kernels and comm import only what their parent may plus the
		// measured package itself (kernelbench gets its matrices from the
		// caller; commbench starts its ranks through a callback).
		"kernels/kernelbench": {mod + "kernels", gonum},
		"comm/commbench":      {mod + "comm", compress, sys},
		"data/parsebench":     {mod + "data", mod + "kernels", gonum},
		// solverbench reads liblinear's model files with ranks.ReadModel.
		"solver/solverbench": append([]string{mod + "problem"}, ranksDeps...),
		"ranks/trainbench":   append([]string{mod + "problem", mod + "solver/solverbench"}, ranksDeps...),
		"sim/simbench":       append(append([]string{mod + "study"}, simDeps...), plotDeps...),
		// job runs a training job: it joins launch (starting the ranks),
		// ranks (one rank's run), problem (the phi* solve) and study (the
		// run's figures).
		"job": append(append([]string{mod + "launch", mod + "problem", mod + "study"}, simDeps...), plotDeps...),
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

// TestSimNoIO: the simulator's own files import no network, file or clock
// package, so that its time is the simulated one (it may use ranks, which
// does).
func TestSimNoIO(t *testing.T) {
	checkNoIO(t, "sim")
}

// TestMemnetNoIO: the in-memory network imports no network, file or clock
// package: its time is virtual, so its runs are deterministic.
func TestMemnetNoIO(t *testing.T) {
	checkNoIO(t, "memnet")
}

// TestAlgoNoIO: the algorithm's state machines import no network, file or
// clock package (solver, which they use, reads and writes checkpoint
// files): time arrives as an event.
func TestAlgoNoIO(t *testing.T) {
	checkNoIO(t, "algo")
}

// checkNoIO fails if package pkg's own files import a network, file or
// clock package.
func checkNoIO(t *testing.T, pkg string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", "github.com/asyncmb/asyncmb/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	for _, imp := range strings.Fields(string(out)) {
		switch {
		case imp == "net" || strings.HasPrefix(imp, "net/"), imp == "os" || strings.HasPrefix(imp, "os/"), imp == "time", imp == "syscall":
			t.Errorf("%s imports %s", pkg, imp)
		}
	}
}
