package ranks

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// TestSerialAndDistributedOutputsAlike: --np 1 and --np 3 write the same
// files through the one recorder, with the same summary.json keys, and
// the serial trace.bin holds the snapshots its trace.csv evaluates.
func TestSerialAndDistributedOutputsAlike(t *testing.T) {
	const phiStar = 0.32689896196913504 // testdata/reference.jsonl, a9a l1-logistic 1e-4
	base := Config{
		Data: "../testdata/a9a", Loss: kernels.Logistic,
		Reg:  solver.Reg{Kind: solver.RegL1, Lambda: 1e-4},
		Mode: algo.ModeAsync, Batch: 32, Epochs: 2, Seed: 1,
		Step:    StepSpec{Kind: solver.StepInvSqrt, Alpha0: 2, Tau: -1, Average: "tail"},
		PhiStar: phiStar, Manifest: map[string]any{"test": true},
	}
	serial := base
	serial.Out = t.TempDir()
	if _, err := RunSerial(context.Background(), &serial); err != nil {
		t.Fatalf("serial: %v", err)
	}
	dist := base
	dist.Out = t.TempDir()
	ds := runInProcess(t, 3, dist)
	// Every rank's peak RSS is reported (the workers' through the
	// estMemory round).
	if ds.Master.PeakRSSBytes == 0 || len(ds.PerWorker) != 2 {
		t.Errorf("master peak RSS %d, %d workers", ds.Master.PeakRSSBytes, len(ds.PerWorker))
	}
	for _, w := range ds.PerWorker {
		if w.PeakRSSBytes == 0 {
			t.Errorf("worker %d reported no peak RSS", w.Rank)
		}
	}

	sFiles, dFiles := outputFiles(t, serial.Out), outputFiles(t, dist.Out)
	if !slices.Equal(sFiles, dFiles) {
		t.Errorf("--np 1 wrote %v, --np 3 wrote %v", sFiles, dFiles)
	}
	for _, want := range []string{"model", "summary.json", "trace.bin", "trace.csv"} {
		if !slices.Contains(sFiles, want) {
			t.Errorf("--np 1 wrote no %s (it wrote %v)", want, sFiles)
		}
	}
	sKeys, dKeys := summaryKeys(t, serial.Out), summaryKeys(t, dist.Out)
	for _, k := range sKeys {
		if !slices.Contains(dKeys, k) {
			t.Errorf("summary key %s only in --np 1", k)
		}
	}
	for _, k := range dKeys {
		if !slices.Contains(sKeys, k) {
			t.Errorf("summary key %s only in --np 3", k)
		}
	}

	// The serial trace: one record per trace.csv row, at the same t.
	tracePath := filepath.Join(serial.Out, "trace.bin")
	hdr, err := os.ReadFile(tracePath)
	if err != nil || len(hdr) < 16 {
		t.Fatalf("trace.bin: %d bytes, %v", len(hdr), err)
	}
	tr, err := openTrace(tracePath, int(binary.LittleEndian.Uint32(hdr[12:16])))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	rows := csvColumn(t, filepath.Join(serial.Out, "trace.csv"), 0)
	var s Snapshot
	for i := 0; ; i++ {
		if err := tr.next(&s); err != nil {
			if i != len(rows) {
				t.Errorf("trace.bin has %d records, trace.csv %d rows", i, len(rows))
			}
			break
		}
		if i >= len(rows) || rows[i] != s.T {
			t.Fatalf("trace.bin record %d at t=%d, trace.csv rows %v", i, s.T, rows)
		}
	}
	if len(rows) < 2 {
		t.Errorf("only %d trace rows", len(rows))
	}
}

func outputFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// summaryKeys returns the paths of summary.json's object keys
// (manifest.x, master.busy_s, ...), not looking into arrays.
func summaryKeys(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			keys = append(keys, prefix+k)
			if sub, ok := v.(map[string]any); ok && k != "outputs" {
				walk(prefix+k+".", sub)
			}
		}
	}
	walk("", js)
	slices.Sort(keys)
	return keys
}

// csvColumn returns column col of a CSV file's data rows as integers.
func csvColumn(t *testing.T, path string, col int) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var out []int64
	for _, line := range lines[1:] {
		fields := strings.Split(line, ",")
		v, err := strconv.ParseInt(fields[col], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		out = append(out, v)
	}
	return out
}

func TestStatusKiB(t *testing.T) {
	status := []byte("Name:\tasyncmb\nVmPeak:\t  912340 kB\nVmHWM:\t  328428 kB\nVmRSS:\t  1000 kB\n")
	if v, ok := statusKiB(status, "VmHWM:"); !ok || v != 328428 {
		t.Errorf("VmHWM = %d, %v; want 328428", v, ok)
	}
	if _, ok := statusKiB(status, "VmSwap:"); ok {
		t.Error("a missing field was found")
	}
	if _, ok := statusKiB([]byte("VmHWM:\t12 MB\n"), "VmHWM:"); ok {
		t.Error("a value not in kB was accepted")
	}
	if peakRSS() == 0 {
		t.Error("peakRSS is 0 in a running process")
	}
}
