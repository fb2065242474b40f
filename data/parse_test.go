package data

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestReadErrors checks each kind of bad input: the sentinel, the position
// (file:line:col) and the words of the message.
func TestReadErrors(t *testing.T) {
	cases := []struct {
		name    string
		content string
		opt     Options
		err     error
		pos     string // ":line:col" in the message, "" for file-level errors
		msg     string // a substring of the message
	}{
		{"bad label", "1 1:1\nabc 1:2\n", Options{}, ErrSyntax, ":2:1", `bad label "abc": expected a number`},
		{"multi-label", "1,2 1:2\n", Options{}, ErrSyntax, ":1:1", `bad label "1,2"`},
		{"label NaN", "nan 1:2\n", Options{}, ErrNotFinite, ":1:1", `label is "nan": NaN and Inf are not allowed`},
		{"label Inf", "-1 1:1\n+Inf 1:2\n", Options{}, ErrNotFinite, ":2:1", `label is "+Inf"`},
		{"label overflow", "1e400 1:2\n", Options{}, ErrNotFinite, ":1:1", "out of the float64 range"},
		{"index 0", "1 0:1 2:1\n", Options{}, ErrSyntax, ":1:3", "feature index 0: LIBSVM indices start at 1"},
		{"decreasing index", "1 3:1 2:1\n", Options{}, ErrSyntax, ":1:7", "feature index 2 after 3: indices must increase"},
		{"repeated index", "1 2:1 2:5\n", Options{}, ErrSyntax, ":1:7", "repeated feature index 2"},
		{"missing colon", "1 2 3:1\n", Options{}, ErrSyntax, ":1:4", "missing ':' after feature index 2"},
		{"missing colon at end", "1 2:1 3", Options{}, ErrSyntax, ":1:8", "missing ':' after feature index 3"},
		{"missing value", "1 2: 3:1\n", Options{}, ErrSyntax, ":1:5", "missing value after '2:'"},
		{"missing index", "1 :5\n", Options{}, ErrSyntax, ":1:3", "missing feature index before ':'"},
		{"bad index", "1 x:5\n", Options{}, ErrSyntax, ":1:3", `bad feature "x:5": expected index:value`},
		{"signed index", "1 -3:5\n", Options{}, ErrSyntax, ":1:3", `bad feature "-3:5"`},
		{"index junk", "1 3x:5\n", Options{}, ErrSyntax, ":1:4", `bad feature "3x:5": expected ':' after the index`},
		{"huge index", "1 99999999999:1\n", Options{}, ErrSyntax, ":1:3", "is larger than 2147483647"},
		{"bad value", "1 1:abc\n", Options{}, ErrSyntax, ":1:5", `bad value of feature 1 "abc": expected a number`},
		{"value NaN", "1 1:1 4:NaN\n", Options{}, ErrNotFinite, ":1:9", `value of feature 4 is "NaN"`},
		{"value Inf", "1 1:-inf\n", Options{}, ErrNotFinite, ":1:5", `value of feature 1 is "-inf"`},
		{"value overflow", "1 7:1e999\n", Options{}, ErrNotFinite, ":1:5", "out of the float64 range"},
		{"bad qid", "1 qid:x 1:1\n", Options{}, ErrSyntax, ":1:3", `bad query id "qid:x"`},
		{"beyond features", "1 1:1\n1 2:1 4:1\n", Options{Features: 3}, ErrFeatures, ":2:7", "feature index 4 is beyond the dimension 3"},
		{"CRLF line number", "1 1:1\r\n2 0:1\r\n", Options{}, ErrSyntax, ":2:3", "feature index 0"},
		{"empty file", "", Options{}, ErrEmpty, "", "no rows: the file is empty"},
		{"only comments", "# header\n\n   \n# x 1:2\n", Options{}, ErrEmpty, "", "no rows"},
		{"NUL bytes", "1 1:1\n\x00\x00\x00\x01\x02", Options{}, ErrBinary, ":2:1", "NUL byte: this looks like a binary file"},
		{"control bytes", "\x7fELF\x02\x01 1:1\n", Options{}, ErrBinary, ":1:1", "control byte 0x7f"},
		{"invalid UTF-8", "1 1:\xff\xfe\n", Options{}, ErrBinary, ":1:5", "invalid UTF-8"},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00", Options{}, ErrBinary, ":1:1", "gzip-compressed file, not LIBSVM text: decompress it first (gunzip)"},
		{"xz", "\xfd7zXZ\x00\x00", Options{}, ErrBinary, ":1:1", "xz-compressed"},
		{"long line", "1 1:1\n1 1:1 2:1 3:1 4:1\n", Options{MaxLine: 12}, ErrLineTooLong, ":2:13", "line longer than 12 bytes"},
		{"long binary line", "1 1:1\n" + strings.Repeat("ab\x00", 40000), Options{}, ErrBinary, ":2:3", "NUL byte"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad", c.content)
			d, err := Read(path, c.opt)
			if err == nil {
				t.Fatalf("no error; read %d rows", d.X.Rows)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("error %q is not %v", err, c.err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %q is not a *ParseError", err)
			}
			want := path + c.pos + ": "
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q\nwant prefix %q and %q", err, want, c.msg)
			}
		})
	}
}

// TestShardErrorLine checks that an error in a shard other than the first
// names the line number in the whole file.
func TestShardErrorLine(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "%d 1:%d 2:0.5\n", i%2, i)
	}
	sb.WriteString("1 3:1 3:2\n")
	path := writeTemp(t, "f", sb.String())
	_, err := ReadShard(path, 3, 4, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), path+":1001:7: repeated feature index 3") {
		t.Fatalf("error %v, want %s:1001:7: repeated ...", err, path)
	}
}

// TestReadTolerated checks the syntax variants the reader accepts: comments,
// qid tokens, tabs, CRLF, blank lines, trailing spaces, no final newline,
// rows without features and explicit zeros.
func TestReadTolerated(t *testing.T) {
	content := "# header comment\r\n" +
		"+1 qid:3 1:0.5 3:-2 # trailing comment\r\n" +
		"\r\n" +
		"   \t\n" +
		"-1\t2:1e-3\t\t4:0   \n" +
		"2.5\n" +
		"  0 qid:1 5:7#comment without a space\n" +
		"1 6:.25 7:5."
	d, err := Read(writeTemp(t, "ok", content), Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantY := []float64{1, -1, 2.5, 0, 1}
	wantPtr := []int64{0, 2, 4, 4, 5, 7}
	wantIdx := []int32{0, 2, 1, 3, 4, 5, 6}
	wantVal := []float64{0.5, -2, 1e-3, 0, 7, 0.25, 5}
	if !slices.Equal(d.Y, wantY) || !slices.Equal(d.X.Indptr, wantPtr) || !slices.Equal(d.X.Indices, wantIdx) ||
		!slices.Equal(d.X.Data, wantVal) || d.MaxIndex != 7 || d.X.Cols != 7 || d.X.Rows != 5 {
		t.Fatalf("got y=%v indptr=%v idx=%v val=%v max=%d cols=%d", d.Y, d.X.Indptr, d.X.Indices, d.X.Data, d.MaxIndex, d.X.Cols)
	}
	d, err = Read(writeTemp(t, "ok", content), Options{Features: 100})
	if err != nil || d.X.Cols != 100 || d.MaxIndex != 7 {
		t.Fatalf("Features=100: %v cols=%d", err, d.X.Cols)
	}
}

func TestBinaryMapErrors(t *testing.T) {
	for _, c := range []struct {
		vals []float64
		msg  string
	}{
		{nil, "no labels"},
		{[]float64{3, 3}, "every label is 3"},
		{[]float64{1, 2, 3}, "3 distinct labels [1 2 3]"},
		{[]float64{0, 1, 2, 3, 4, 5, 6}, "7 distinct labels [0 1 2 3 4 ...]"},
	} {
		_, err := BinaryMap(c.vals)
		if !errors.Is(err, ErrLabels) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("BinaryMap(%v) = %v, want %q", c.vals, err, c.msg)
		}
	}
	m, err := BinaryMap([]float64{4, 2, 4, 2, 2})
	if err != nil || m != (LabelMap{Neg: 2, Pos: 4}) {
		t.Fatalf("BinaryMap of a shard union: %v %v", m, err)
	}
	d := &Dataset{Y: []float64{2, 4, 3}, Path: "f"}
	if err := d.ApplyBinary(m); !errors.Is(err, ErrLabels) || !strings.Contains(err.Error(), "row 3 has label 3") ||
		!slices.Equal(d.Y, []float64{2, 4, 3}) {
		t.Fatalf("ApplyBinary with a stray label: %v, Y=%v", err, d.Y)
	}
}

func TestLabelValuesCap(t *testing.T) {
	d := &Dataset{}
	for i := range 5000 {
		d.Y = append(d.Y, float64(i%2500))
	}
	if v := d.LabelValues(); len(v) != LabelCap+1 || !slices.IsSorted(v) {
		t.Fatalf("len %d sorted %v", len(v), slices.IsSorted(v))
	}
	d.Y = []float64{0, math.Copysign(0, -1), 1}
	if v := d.LabelValues(); len(v) != 2 {
		t.Fatalf("-0 and 0 should be one label: %v", v)
	}
}

func TestSetColsAndDense(t *testing.T) {
	d, err := Read(writeTemp(t, "f", "1 1:1 3:2\n-1 2:4\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetCols(2); !errors.Is(err, ErrFeatures) {
		t.Fatalf("SetCols(2) with index 3: %v", err)
	}
	if err := d.SetCols(4); err != nil || d.X.Cols != 4 {
		t.Fatal(err)
	}
	a := d.Dense()
	if a.Rows != 2 || a.Cols != 4 || !slices.Equal(a.Data, []float64{1, 0, 2, 0, 0, 4, 0, 0}) {
		t.Fatalf("dense %+v", a)
	}
}

func TestFileHash(t *testing.T) {
	h, err := FileHash(writeTemp(t, "f", "abc"))
	if err != nil || h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("sha256(abc) = %s, %v", h, err)
	}
	if _, err := FileHash(t.TempDir() + "/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
