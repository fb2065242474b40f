package ranks

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
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
		tr, err := openTrace(p, d)
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

// TestTraceSparseRecords: version 2's vector forms read back exactly,
// bit for bit (a -0 and tiny values included): dense, sparse (few
// nonzeros, none), and the output stored as "the same as x"; each form is
// the one chosen (the file's size says so); a record cut off anywhere
// reads as the end; an index out of order is an error; and a version-1
// file (dense, no tags) is still read.
func TestTraceSparseRecords(t *testing.T) {
	const d = 1000
	rng := rand.New(rand.NewPCG(3, 3))
	dense := make([]float64, d)
	for j := range dense {
		dense[j] = rng.NormFloat64()
	}
	dense[7] = math.Copysign(0, -1)
	sparse := make([]float64, d)
	sparse[0], sparse[500], sparse[d-1] = 1e-300, math.Copysign(0, -1), 3
	zero := make([]float64, d)
	recs := []Snapshot{
		{T: 1, WallNs: 10, Samples: 100, X: dense, Avg: slices.Clone(dense)}, // dense, avg the same
		{T: 2, WallNs: 20, Samples: 200, X: sparse, Avg: dense},              // sparse, dense
		{T: 3, WallNs: 30, Samples: 300, X: zero, Avg: sparse},               // none, sparse
	}
	p := filepath.Join(t.TempDir(), "trace.bin")
	tw, err := createTrace(p, d)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64 // the file's size after each record
	for k := range recs {
		if err := tw.add(&recs[k]); err != nil {
			t.Fatal(err)
		}
		if err := tw.w.Flush(); err != nil {
			t.Fatal(err)
		}
		st, _ := tw.f.Stat()
		ends = append(ends, st.Size())
	}
	if err := tw.close(); err != nil {
		t.Fatal(err)
	}
	// Sizes: 24 bytes of record header and 8 per vector tag, then 8d
	// dense, 12 per nonzero sparse, nothing for "the same".
	want := []int64{16 + 24 + 8 + 8*d + 8, 24 + 8 + 12*3 + 8 + 8*d, 24 + 8 + 8 + 12*3}
	for k := range want {
		size := ends[k]
		if k > 0 {
			size -= ends[k-1]
		}
		if size != want[k] {
			t.Errorf("record %d: %d bytes, want %d", k, size, want[k])
		}
	}
	same := func(a, b []float64) bool {
		for j := range a {
			if math.Float64bits(a[j]) != math.Float64bits(b[j]) {
				return false
			}
		}
		return len(a) == len(b)
	}
	readAll := func(path string) ([]Snapshot, error) {
		tr, err := openTrace(path, d)
		if err != nil {
			return nil, err
		}
		defer tr.close()
		var got []Snapshot
		for {
			var s Snapshot
			switch err := tr.next(&s); {
			case err == io.EOF:
				return got, nil
			case err != nil:
				return got, err
			}
			got = append(got, s)
		}
	}
	got, err := readAll(p)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("%d records, %v; want %d", len(got), err, len(recs))
	}
	for k, w := range recs {
		g := got[k]
		if g.T != w.T || g.WallNs != w.WallNs || g.Samples != w.Samples || !same(g.X, w.X) || !same(g.Avg, w.Avg) {
			t.Fatalf("record %d differs", k)
		}
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{ends[0] + 5, ends[1] - 1, ends[2] - 12} {
		q := filepath.Join(t.TempDir(), "cut.bin")
		if err := os.WriteFile(q, raw[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readAll(q)
		if n := slices.Index(ends, cut); err != nil || n >= 0 || len(got) != slices.IndexFunc(ends, func(e int64) bool { return e > cut }) {
			t.Errorf("cut at %d: %d records, %v", cut, len(got), err)
		}
	}
	// The third record's first sparse entry (of avg) made to come after
	// the next: an error, not a silently wrong vector.
	bad := slices.Clone(raw)
	off := ends[1] + 24 + 8 + 8 // record 3: header, x's tag (no entries), avg's tag
	binary.LittleEndian.PutUint32(bad[off:], uint32(d-1))
	q := filepath.Join(t.TempDir(), "bad.bin")
	if err := os.WriteFile(q, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(q); err == nil || len(got) != 2 {
		t.Errorf("an index out of order: %d records, %v", len(got), err)
	}
	// A caller that expects another dimension is refused before any
	// record is read (nothing sized by the header is allocated).
	if _, err := openTrace(p, d+1); !errors.Is(err, errTraceDim) {
		t.Errorf("opened with d+1: %v, want the dimension error", err)
	}
	// Version 1: the header's version, then dense vectors with no tags.
	v1 := append([]byte(traceMagic), 1, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(v1[12:], d)
	for _, r := range recs[1:] {
		for _, x := range []int64{r.T, r.WallNs, r.Samples} {
			v1 = binary.LittleEndian.AppendUint64(v1, uint64(x))
		}
		for _, vec := range [][]float64{r.X, r.Avg} {
			for _, v := range vec {
				v1 = binary.LittleEndian.AppendUint64(v1, math.Float64bits(v))
			}
		}
	}
	q = filepath.Join(t.TempDir(), "v1.bin")
	if err := os.WriteFile(q, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = readAll(q)
	if err != nil || len(got) != 2 || !same(got[0].X, recs[1].X) || !same(got[1].Avg, recs[2].Avg) {
		t.Errorf("version 1: %d records, %v", len(got), err)
	}
}
