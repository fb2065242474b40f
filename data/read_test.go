package data

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// testFiles are the testdata files with the counts of testdata/PROVENANCE.md.
var testFiles = []struct {
	name                string
	rows, maxIndex, nnz int
	binary              bool
}{
	{"heart_scale", 270, 13, 3378, true},
	{"a9a", 32561, 123, 451592, true},
	{"a9a.t", 16281, 123, 225732, true},
	{"rcv1_small", 1000, 47117, 77739, true},
	{"abalone_scale", 4177, 8, 32080, false},
}

func testPath(name string) string { return filepath.Join("..", "testdata", name) }

// writeTemp writes content to a file in a fresh temp dir and returns its path.
func writeTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadTestdataCounts(t *testing.T) {
	for _, tf := range testFiles {
		t.Run(tf.name, func(t *testing.T) {
			d, err := Read(testPath(tf.name), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if d.X.Rows != tf.rows || len(d.Y) != tf.rows || d.MaxIndex != tf.maxIndex || d.X.Cols != tf.maxIndex || d.X.NNZ() != tf.nnz {
				t.Fatalf("rows=%d len(Y)=%d maxIndex=%d cols=%d nnz=%d, want %d rows, max index %d, %d nnz",
					d.X.Rows, len(d.Y), d.MaxIndex, d.X.Cols, d.X.NNZ(), tf.rows, tf.maxIndex, tf.nnz)
			}
			if err := d.X.Check(); err != nil {
				t.Fatal(err)
			}
			vals := d.LabelValues()
			if tf.binary {
				if !slices.Equal(vals, []float64{-1, 1}) {
					t.Fatalf("labels %v, want [-1 1]", vals)
				}
				m, err := d.ToBinary()
				if err != nil || m != (LabelMap{Neg: -1, Pos: 1}) {
					t.Fatalf("ToBinary = %v, %v", m, err)
				}
			} else {
				if len(vals) < 3 {
					t.Fatalf("regression file has labels %v", vals)
				}
				if _, err := d.ToBinary(); err == nil {
					t.Fatal("ToBinary on regression targets: no error")
				}
			}
			// Parallel pieces each read one byte before and a little past their range.
			if d.Size != d.End || d.Start != 0 || d.BytesRead < d.Size || d.BytesRead > d.Size+int64(runtime.GOMAXPROCS(0))*8192 {
				t.Fatalf("range [%d,%d) size %d read %d", d.Start, d.End, d.Size, d.BytesRead)
			}
		})
	}
}

// TestReadFirstRow checks the values of heart_scale's first line, and that
// an index missing from the line (11) is not stored.
func TestReadFirstRow(t *testing.T) {
	d, err := Read(testPath("heart_scale"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// +1 1:0.708333 2:1 3:1 4:-0.320755 5:-0.105023 6:-1 7:1 8:-0.419847 9:-1 10:-0.225806 12:1 13:-1
	idx, val := d.X.Row(0)
	wantIdx := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12}
	wantVal := []float64{0.708333, 1, 1, -0.320755, -0.105023, -1, 1, -0.419847, -1, -0.225806, 1, -1}
	if d.Y[0] != 1 || !slices.Equal(idx, wantIdx) || !slices.Equal(val, wantVal) {
		t.Fatalf("row 0: y=%g idx=%v val=%v", d.Y[0], idx, val)
	}
}

func TestShardUnionEqualsFile(t *testing.T) {
	for _, tf := range testFiles {
		whole, err := Read(testPath(tf.name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for K := 1; K <= 7; K++ {
			checkShards(t, testPath(tf.name), whole, K)
		}
	}
}

// checkShards reads the K shards of path and checks that their
// concatenation equals whole and that each read about its byte range only.
func checkShards(t *testing.T, path string, whole *Dataset, K int) {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, l := range splitLines(content) {
		longest = max(longest, len(l)+1)
	}
	var y []float64
	var indptr []int64
	var indices []int32
	var values []float64
	indptr = append(indptr, 0)
	maxIdx := 0
	var prevEnd int64
	for k := 0; k < K; k++ {
		s, err := ReadShard(path, k, K, Options{})
		if err != nil {
			t.Fatalf("%s shard %d/%d: %v", path, k, K, err)
		}
		if s.Start != prevEnd || (k == K-1 && s.End != s.Size) {
			t.Fatalf("%s shard %d/%d: range [%d,%d) after %d, size %d", path, k, K, s.Start, s.End, prevEnd, s.Size)
		}
		prevEnd = s.End
		if limit := s.End - s.Start + 1 + int64(longest) + tailChunk; s.BytesRead > limit {
			t.Errorf("%s shard %d/%d: read %d bytes, range is %d bytes, longest line %d", path, k, K, s.BytesRead, s.End-s.Start, longest)
		}
		if err := s.X.Check(); err != nil {
			t.Fatal(err)
		}
		base := indptr[len(indptr)-1]
		for _, p := range s.X.Indptr[1:] {
			indptr = append(indptr, base+p)
		}
		y = append(y, s.Y...)
		indices = append(indices, s.X.Indices...)
		values = append(values, s.X.Data...)
		maxIdx = max(maxIdx, s.MaxIndex)
	}
	if !slices.Equal(y, whole.Y) || !slices.Equal(indptr, whole.X.Indptr) ||
		!slices.Equal(indices, whole.X.Indices) || !slices.Equal(values, whole.X.Data) || maxIdx != whole.MaxIndex {
		t.Fatalf("%s: union of %d shards differs from the file: %d rows %d nnz, want %d rows %d nnz",
			path, K, len(y), len(indices), whole.X.Rows, whole.X.NNZ())
	}
}

// splitLines splits b at '\n' (the last line may lack one).
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := slices.Index(b, '\n')
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
	return out
}

func TestBinaryLabelMappings(t *testing.T) {
	cases := []struct {
		name     string
		labels   string
		neg, pos float64
	}{
		{"zero-one", "0 1 1 0", 0, 1},
		{"one-two", "2 1 2", 1, 2},
		{"two-four", "4 2", 2, 4},
		{"minus-plus", "+1 -1", -1, 1},
		{"float", "1.0 -1.0", -1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			content := ""
			var raw []float64
			for _, l := range splitFields(c.labels) {
				content += l + " 1:0.5 3:2\n"
				raw = append(raw, mustFloat(t, l))
			}
			d, err := Read(writeTemp(t, c.name, content), Options{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := d.ToBinary()
			if err != nil {
				t.Fatal(err)
			}
			if m != (LabelMap{Neg: c.neg, Pos: c.pos}) {
				t.Fatalf("map %v, want %g -> -1, %g -> +1", m, c.neg, c.pos)
			}
			for i, y := range d.Y {
				want := 1.0
				if raw[i] == c.neg {
					want = -1
				}
				if y != want {
					t.Fatalf("row %d: %g -> %g, want %g", i, raw[i], y, want)
				}
			}
		})
	}
}

func splitFields(s string) []string {
	var out []string
	for _, f := range splitLines([]byte(s)) {
		for _, w := range bytesFields(f) {
			out = append(out, string(w))
		}
	}
	return out
}

func bytesFields(b []byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(b); {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i == len(b) {
			break
		}
		j := tokenEnd(b, i)
		out = append(out, b[i:j])
		i = j
	}
	return out
}

func mustFloat(t testing.TB, s string) float64 {
	t.Helper()
	f, _, ok := parseFloat([]byte(s), 0)
	if !ok {
		t.Fatalf("bad float %q", s)
	}
	return f
}

// TestWriteRoundTrip writes every testdata file back out and reads it again.
func TestWriteRoundTrip(t *testing.T) {
	for _, tf := range testFiles {
		d, err := Read(testPath(tf.name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), tf.name)
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := Write(f, d); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		d2, err := Read(out, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !sameRows(d, d2) {
			t.Fatalf("%s: round trip differs", tf.name)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, c := range []struct {
		y   float64
		idx []int32
		val []float64
		err error
	}{
		{math.NaN(), nil, nil, ErrNotFinite},
		{1, []int32{0, 0}, []float64{1, 2}, ErrSyntax},
		{1, []int32{-1}, []float64{1}, ErrSyntax},
		{1, []int32{3}, []float64{math.Inf(1)}, ErrNotFinite},
	} {
		if err := w.WriteRow(c.y, c.idx, c.val); !errors.Is(err, c.err) {
			t.Errorf("WriteRow(%v, %v, %v) = %v, want %v", c.y, c.idx, c.val, err, c.err)
		}
	}
	if err := w.WriteRow(-1, []int32{0, 4}, []float64{0.5, math.Copysign(0, -1)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil || buf.String() != "-1 1:0.5 5:-0\n" {
		t.Fatalf("wrote %q, %v", buf.String(), err)
	}
}

// TestShardUnionTricky checks shard unions on small files whose byte ranges
// cut lines, comments, CRLF pairs and blank lines in every possible place.
func TestShardUnionTricky(t *testing.T) {
	for _, content := range []string{
		"1 1:1",
		"1 1:1\n",
		"1 1:1\n-1 2:2",
		"\n\n1 1:1\n\n\n-1 2:2\n\n",
		"# c\r\n1 1:1 # x\r\n\r\n-1 qid:3 2:2\r\n# end\r\n0 3:0.5\r\n",
		"1\n2\n3\n4\n5\n6\n7\n8\n9\n",
		"1 1:1 2:2 3:3 4:4 5:5 6:6 7:7 8:8 9:9 10:10 11:11 12:12 13:13\n2\n",
	} {
		path := writeTemp(t, "f", content)
		whole, err := Read(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for K := 1; K <= len(content)+2; K++ {
			checkShards(t, path, whole, K)
		}
	}
}

func TestReadShardArgs(t *testing.T) {
	path := testPath("heart_scale")
	for _, c := range [][2]int{{0, 0}, {-1, 3}, {3, 3}} {
		if _, err := ReadShard(path, c[0], c[1], Options{}); err == nil {
			t.Errorf("ReadShard(k=%d, K=%d): no error", c[0], c[1])
		}
	}
	if _, err := Read(path, Options{Features: -1}); err == nil {
		t.Error("Features -1: no error")
	}
	if _, err := Read(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadShard(writeTemp(t, "empty", ""), 0, 2, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty file shard: %v", err)
	}
}

// TestReadParallel checks that parsing in byte ranges gives the same data
// as one pass and reports the first defect of the file with its line.
func TestReadParallel(t *testing.T) {
	path := testPath("a9a")
	one, err := Read(path, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{2, 3} {
		d, err := Read(path, Options{Workers: w})
		if err != nil || !sameRows(one, d) || d.MaxIndex != one.MaxIndex {
			t.Fatalf("workers=%d: %v, or rows differ", w, err)
		}
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := splitLines(content)
	corrupt := func(at ...int) string {
		c := slices.Clone(lines)
		for _, l := range at {
			c[l-1] = []byte("1 5:1 4:1")
		}
		return writeTemp(t, "a9a-bad", string(bytes.Join(c, []byte("\n"))))
	}
	for _, c := range []struct {
		at   []int
		line int
	}{{[]int{100, 30000}, 100}, {[]int{30000}, 30000}, {[]int{20000, 30000}, 20000}} {
		_, err := Read(corrupt(c.at...), Options{Workers: 3})
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != c.line || pe.Col != 7 {
			t.Fatalf("defects at lines %v: %v, want line %d col 7", c.at, err, c.line)
		}
	}
}
