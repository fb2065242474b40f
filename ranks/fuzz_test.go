package ranks

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// FuzzParseModel: the LIBLINEAR model reader never panics, and whatever it
// accepts is written back and read again to the same model.
func FuzzParseModel(f *testing.F) {
	for _, m := range []*Model{
		{Weights: []float64{0.5, -1.25, 0}, Loss: kernels.Logistic, Reg: solver.RegL1, Features: 3, Labels: []float64{1, -1}},
		{Weights: []float64{2, 3}, Loss: kernels.Squared, Reg: solver.RegL2, Features: 1, Bias: true},
		{Weights: []float64{1e-300}, Loss: kernels.SqHinge, Reg: solver.RegL2, Features: 1, Labels: []float64{4, 2}},
		{Weights: []float64{1, 2, 3, 4, 5, 6}, Loss: kernels.Logistic, Reg: solver.RegL2, Features: 1, Bias: true, Labels: []float64{3, 1, 2}, Classes: 3},
	} {
		var b bytes.Buffer
		if err := m.WriteLiblinear(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte("solver_type L2R_LR\nnr_class 3\n"))
	f.Add([]byte("nr_feature 99999999999999\nw\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseModel(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := m.WriteLiblinear(&out); err != nil {
			t.Fatal(err)
		}
		m2, err := parseModel(&out, "again")
		if err != nil {
			t.Fatalf("our own output does not parse: %v\n%s", err, out.String())
		}
		if m2.Features != m.Features || m2.Bias != m.Bias || m2.Loss != m.Loss || len(m2.Weights) != len(m.Weights) || m2.Classes != m.Classes {
			t.Fatalf("round trip changed the model: %+v -> %+v", m, m2)
		}
		for i, w := range m.Weights {
			if w != m2.Weights[i] && !(math.IsNaN(w) && math.IsNaN(m2.Weights[i])) {
				t.Fatalf("weight %d: %v -> %v", i, w, m2.Weights[i])
			}
		}
	})
}

// FuzzTraceReader: a corrupted or cut trace file gives an error or fewer
// records, never a panic or an allocation sized by the file's claims
// beyond the dimension in its header (checked against the file size).
func FuzzTraceReader(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.bin")
	tw, err := createTrace(path, 3)
	if err != nil {
		f.Fatal(err)
	}
	tw.add(&Snapshot{T: 1, WallNs: 5, Samples: 64, X: []float64{1, 2, 3}, Avg: []float64{0.5, 1, 1.5}})
	tw.add(&Snapshot{T: 2, WallNs: 9, Samples: 128, X: []float64{0, 0, 3}, Avg: []float64{0.25, 0.5, 2}})
	if err := tw.close(); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:40])
	bad := append([]byte(nil), seed...)
	binary.LittleEndian.PutUint32(bad[12:], 1<<31)
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "t.bin")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tr, err := openTrace(p, 3)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer tr.close()
		var s Snapshot
		for n := 0; ; n++ {
			if err := tr.next(&s); err != nil {
				break
			}
			if len(s.X) != tr.d || len(s.Avg) != tr.d {
				t.Fatalf("record %d has dimension %d/%d, header %d", n, len(s.X), len(s.Avg), tr.d)
			}
		}
	})
}
