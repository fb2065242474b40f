package commbench

import (
	"bytes"
	"strings"
	"testing"
)

// TestPrintCommBench checks the tables and the target verdicts on records
// as the ranks and mpirun report them.
func TestPrintCommBench(t *testing.T) {
	out := `[rank 0] BENCH {"kind":"pingpong","size":8,"raw_p50_us":20,"raw_p99_us":40,"comm_p50_us":25,"comm_p99_us":50}
[rank 0] BENCH {"kind":"throughput","raw_mbs":3000,"comm_mbs":2000,"ratio":0.7}
[rank 0] BENCH {"kind":"coll","np":4,"op":"bcast","p50_ms":8,"min_ms":7,"p99_ms":9}
[rank 0] BENCH {"kind":"coll","np":4,"op":"allreduce","p50_ms":20,"min_ms":18,"p99_ms":25}
[rank 1] unrelated line
[rank 0] BENCH {"kind":"compress","payload":"g","repr":"sparse","codec":"s2","nnz":10,"dim":1000,"raw_bytes":200,"wire_bytes":250,"enc_mbs":100,"dec_mbs":200}`
	recs, err := parseBenchRecords(out)
	if err != nil || len(recs) != 5 {
		t.Fatalf("parsed %d records: %v", len(recs), err)
	}
	recs = append(recs, benchRecord{Kind: "mpi", NP: 4, Op: "bcast", P50ms: 10, MinMs: 9}, benchRecord{Kind: "mpi", NP: 4, Op: "allreduce", P50ms: 16, MinMs: 15})
	var b bytes.Buffer
	printCommBench(&b, Options{N: 1 << 20, Reps: 20}, recs, "")
	got := b.String()
	for _, want := range []string{
		"8 B", "1.25",
		"comm/raw 0.70",
		"MISS 4 MiB throughput >= 0.80 of raw TCP: 0.70",
		"ok   8 B round trip <= 1.5x raw TCP: 1.25x",
		"ok   bcast on 4 ranks no slower than Open MPI: 0.80x",
		"MISS allreduce on 4 ranks no slower than Open MPI: 1.25x",
		"32.00", // compression ratio 8*1000/250
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// Two rounds: per-round ratios and their (lower) median.
	recs = append(recs,
		benchRecord{Kind: "coll", NP: 4, Op: "bcast", P50ms: 12, MinMs: 6, Round: 1},
		benchRecord{Kind: "mpi", NP: 4, Op: "bcast", P50ms: 10, MinMs: 8, Round: 1})
	b.Reset()
	printCommBench(&b, Options{N: 1 << 20, Reps: 20, Rounds: 2}, recs, "")
	if got := b.String(); !strings.Contains(got, "0.80 1.20") || !strings.Contains(got, "bcast on 4 ranks no slower than Open MPI: 0.80x") {
		t.Errorf("two rounds:\n%s", got)
	}
	if _, err := parseBenchRecords("[rank 0] BENCH {not json"); err == nil {
		t.Error("a garbled result line was accepted")
	}
}
