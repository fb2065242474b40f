package data

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkRead parses whole testdata files (from the page cache); MB/s is
// the file size over the time of Read. Compare with scikit-learn's
// load_svmlight_file through `asyncmb bench parse`.
func BenchmarkRead(b *testing.B) {
	for _, tf := range testFiles {
		if tf.name != "a9a" && tf.name != "rcv1_small" {
			continue
		}
		for _, w := range []int{1, 0} {
			b.Run(fmt.Sprintf("%s/workers=%d", tf.name, w), func(b *testing.B) {
				benchRead(b, testPath(tf.name), Options{Workers: w}, tf.nnz)
			})
		}
	}
}

func benchRead(b *testing.B, path string, opt Options, nnz int) {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		d, err := Read(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		if d.X.NNZ() != nnz {
			b.Fatalf("nnz %d, want %d", d.X.NNZ(), nnz)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nnz), "ns/nnz")
}
