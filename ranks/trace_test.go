package ranks

import (
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// TestTraceRoundTrip: records longer than the writer's encoding buffer
// (and one shorter) read back exactly, in order.
func TestTraceRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, d := range []int{1, 3, traceChunk/8 - 2, traceChunk / 8, 3*traceChunk/16 + 5} {
		p := filepath.Join(t.TempDir(), "trace.bin")
		tw, err := createTrace(p, d)
		if err != nil {
			t.Fatal(err)
		}
		var want []Snapshot
		for k := range 3 {
			s := Snapshot{T: int64(k * 10), WallNs: int64(k) * 1e9, Samples: int64(k * 64), X: make([]float64, d), Avg: make([]float64, d)}
			for j := range d {
				s.X[j], s.Avg[j] = rng.NormFloat64(), rng.NormFloat64()
			}
			if err := tw.add(&s); err != nil {
				t.Fatal(err)
			}
			want = append(want, s)
		}
		if err := tw.close(); err != nil {
			t.Fatal(err)
		}
		tr, err := openTrace(p)
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range want {
			var s Snapshot
			if err := tr.next(&s); err != nil {
				t.Fatalf("d=%d record %d: %v", d, k, err)
			}
			if s.T != w.T || s.WallNs != w.WallNs || s.Samples != w.Samples || !slices.Equal(s.X, w.X) || !slices.Equal(s.Avg, w.Avg) {
				t.Fatalf("d=%d record %d differs", d, k)
			}
		}
		var s Snapshot
		if err := tr.next(&s); err != io.EOF {
			t.Errorf("d=%d: after the records: %v, want EOF", d, err)
		}
		tr.close()
	}
}
