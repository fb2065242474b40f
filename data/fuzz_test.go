package data

import (
	"bytes"
	"errors"
	"math"
	"os"
	"slices"
	"testing"
)

// fuzzSeeds are real file snippets and bad inputs for FuzzRead.
func fuzzSeeds(f *testing.F) {
	for _, tf := range testFiles {
		content, err := os.ReadFile(testPath(tf.name))
		if err != nil {
			f.Fatal(err)
		}
		lines := splitLines(content)
		f.Add(bytes.Join(lines[:min(3, len(lines))], []byte("\n")))
		f.Add(append(bytes.Join(lines[:min(2, len(lines))], []byte("\r\n")), "\r\n"...))
	}
	for _, s := range []string{
		"# comment\n+1 qid:2 1:0.5 3:-2 # tail\n\n-1\t2:1e-3\n2.5\n",
		"1 1:1\nabc 1:2\n", "1 0:1\n", "1 3:1 2:1\n", "1 2:1 2:1\n", "1 2 3:1\n", "1 2: 3:1\n",
		"1 :5\n", "nan 1:1\n", "1 1:inf\n", "1 99999999999:1\n", "1 1:1e999\n", "\x00\x01\x02",
		"1 1:\xff\n", "", "\n\n", "1 1:0x1p-2 2:1e-400 3:-0\n", "1", "1 qid:x 1:1\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzRead feeds arbitrary bytes to the reader: it must never panic; an
// error must be a *ParseError; what parses must round-trip (written with
// Write and read again gives the same rows bit for bit) and its shards
// (K = 2, 3) must add up to it.
func FuzzRead(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, content []byte) {
		size := int64(len(content))
		if size == 0 {
			return
		}
		opt := Options{MaxLine: 1 << 16}
		d, err := readAll(bytes.NewReader(content), size, "fuzz", opt)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Line < 1 && !errors.Is(err, ErrEmpty) {
				t.Fatalf("error %v has no line", err)
			}
			return
		}
		if err := d.X.Check(); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, d); err != nil {
			t.Fatal(err)
		}
		d2, err := readAll(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "fuzz-out", opt)
		if err != nil {
			t.Fatalf("re-reading our output %q: %v", buf.Bytes(), err)
		}
		if !sameRows(d, d2) {
			t.Fatalf("round trip differs:\nin  %q\nout %q", content, buf.Bytes())
		}
		for K := 2; K <= 3; K++ {
			var parts []*Dataset
			for k := range K {
				start, end := shardRange(size, k, K)
				s, err := readRange(bytes.NewReader(content), "fuzz", start, end, opt)
				if err != nil {
					t.Fatalf("shard %d/%d: %v", k, K, err)
				}
				parts = append(parts, s)
			}
			u := concat(parts)
			if !sameRows(d, u) || u.MaxIndex != d.MaxIndex {
				t.Fatalf("union of %d shards differs for %q", K, content)
			}
		}
	})
}

// sameRows reports whether a and b hold the same labels and CSR, comparing
// float64s bit for bit.
func sameRows(a, b *Dataset) bool {
	bits := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	return a.X.Rows == b.X.Rows && a.X.Cols == b.X.Cols && slices.EqualFunc(a.Y, b.Y, bits) &&
		slices.Equal(a.X.Indptr, b.X.Indptr) && slices.Equal(a.X.Indices, b.X.Indices) &&
		slices.EqualFunc(a.X.Data, b.X.Data, bits)
}
