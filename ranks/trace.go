package ranks

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// The snapshot trace (trace.bin) the master writes during a run, so that
// the run is never slowed by evaluating the objective: it is evaluated on
// the full data afterwards. Little-endian:
//
//	header: magic "AMBTRACE" (8 bytes), version uint32, d uint32
//	record: t int64, wall_ns int64, samples int64, x vector, avg vector
//	vector: n int64, then
//	        n = -1: d float64 (dense)
//	        n >= 0: n entries (index uint32, value float64), indices
//	                strictly increasing, every other entry +0 (sparse)
//	        n = -2 (avg only): avg is x, bit for bit
//
// A vector goes sparse when its nonzeros take fewer bytes than it does
// dense (12 n < 8 d): an l1 model at d = 2^24 has some 10^4 nonzeros, and
// its dense record, x and the output, was 256 MB written per snapshot (1.4 s
// on the machines here). Version 1, still read, had the two vectors dense
// with no n. A cut-off last record (the run was killed while writing) is
// ignored by the reader.
const (
	traceMagic   = "AMBTRACE"
	traceVersion = 2
)

// The vector tags of a version-2 record (see above).
const (
	traceDense  int64 = -1
	traceSameAs int64 = -2
)

// Snapshot is one trace record: the master's state after T updates.
type Snapshot struct {
	T       int64
	WallNs  int64 // since the start of training
	Samples int64 // mini-batch rows consumed
	X       []float64
	Avg     []float64 // the output average (== X for the last iterate)
}

// traceWriter appends snapshots to a buffered file. Not safe for
// concurrent use; its first error sticks.
type traceWriter struct {
	f   *os.File
	w   *bufio.Writer
	d   int
	buf []byte
	n   int
	err error
}

func createTrace(path string, d int) (*traceWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, OutputMode)
	if err == nil {
		err = f.Chmod(OutputMode) // whatever the umask or an older file
	}
	if err != nil {
		return nil, err
	}
	t := &traceWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), d: d}
	hdr := append([]byte(traceMagic), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(hdr[8:], traceVersion)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(d))
	_, t.err = t.w.Write(hdr)
	return t, t.err
}

func (t *traceWriter) add(s *Snapshot) error {
	if t.err != nil {
		return t.err
	}
	if len(s.X) != t.d || len(s.Avg) != t.d {
		panic("ranks: snapshot dimension does not match the trace")
	}
	// The record goes out through a buffer of traceChunk bytes: a dense
	// record is 16d bytes (256 MB at d = 2^24), which built whole had grown
	// a slice by doubling (d = 2^24: 4 s of the master's copying, and the
	// slice kept for the next record).
	if t.buf == nil {
		t.buf = make([]byte, 0, traceChunk)
	}
	le := binary.LittleEndian
	b := t.buf[:0]
	b = le.AppendUint64(b, uint64(s.T))
	b = le.AppendUint64(b, uint64(s.WallNs))
	b = le.AppendUint64(b, uint64(s.Samples))
	for k, vec := range [2][]float64{s.X, s.Avg} {
		if k == 1 && sameBits(s.Avg, s.X) {
			b = le.AppendUint64(t.room(b), vecTag(traceSameAs))
			continue
		}
		nz := 0 // entries whose bits are not +0 (a -0 is kept: the record is exact)
		for _, v := range vec {
			if math.Float64bits(v) != 0 {
				nz++
			}
		}
		if 12*nz >= 8*t.d {
			b = le.AppendUint64(t.room(b), vecTag(traceDense))
			for _, v := range vec {
				b = le.AppendUint64(t.room(b), math.Float64bits(v))
			}
			continue
		}
		b = le.AppendUint64(t.room(b), vecTag(int64(nz)))
		for j, v := range vec {
			if bits := math.Float64bits(v); bits != 0 {
				b = le.AppendUint64(le.AppendUint32(t.room(b), uint32(j)), bits)
			}
		}
	}
	if t.err != nil {
		return t.err
	}
	_, t.err = t.w.Write(b)
	t.n++
	return t.err
}

// vecTag is a vector's n as its record stores it (two's complement).
func vecTag(n int64) uint64 { return uint64(n) }

// room returns b with room for one more entry (12 bytes), writing it out
// first when it is full (an error sticks in t.err; b is then reused).
func (t *traceWriter) room(b []byte) []byte {
	if cap(b)-len(b) >= 12 {
		return b
	}
	if t.err == nil {
		_, t.err = t.w.Write(b)
	}
	return b[:0]
}

// sameBits reports whether a and b hold the same bits (the output is the
// last iterate): it stops at the first difference.
func sameBits(a, b []float64) bool {
	b = b[:len(a)]
	for j, v := range a {
		if math.Float64bits(v) != math.Float64bits(b[j]) {
			return false
		}
	}
	return true
}

// traceChunk is the size of traceWriter's encoding buffer (a multiple of
// 8 bytes).
const traceChunk = 64 << 10

func (t *traceWriter) close() error {
	if err := t.w.Flush(); err != nil && t.err == nil {
		t.err = err
	}
	if err := t.f.Close(); err != nil && t.err == nil {
		t.err = err
	}
	return t.err
}

// traceReader reads a trace back record by record.
type traceReader struct {
	f       *os.File
	r       *bufio.Reader
	d       int
	version uint32
	buf     []byte
}

// errTraceDim: a trace's vectors are not of the dimension asked for.
var errTraceDim = errors.New("trace of another dimension")

// openTrace opens the trace at path, whose vectors must have d entries: a
// header that says otherwise is an error before anything is allocated (a
// sparse record is a few bytes whatever d, so the file's size cannot
// bound what it decodes to).
func openTrace(path string, d int) (*traceReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(r, hdr); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: trace header: %w", path, err)
	}
	if string(hdr[:8]) != traceMagic {
		f.Close()
		return nil, fmt.Errorf("%s: not an asyncmb trace", path)
	}
	v := binary.LittleEndian.Uint32(hdr[8:])
	if v != 1 && v != traceVersion {
		f.Close()
		return nil, fmt.Errorf("%s: trace version %d, this build reads 1 and %d", path, v, traceVersion)
	}
	if hd := int64(binary.LittleEndian.Uint32(hdr[12:])); hd != int64(d) {
		f.Close()
		return nil, fmt.Errorf("%s holds vectors of %d entries, want %d: %w", path, hd, d, errTraceDim)
	}
	return &traceReader{f: f, r: r, d: d, version: v}, nil
}

// errTraceCut is a record cut off by the end of the file: the end.
var errTraceCut = errors.New("ranks: trace record cut off")

// read returns the next n bytes (valid until the next read).
func (t *traceReader) read(n int) ([]byte, error) {
	if cap(t.buf) < n {
		t.buf = make([]byte, n)
	}
	b := t.buf[:n]
	if _, err := io.ReadFull(t.r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, errTraceCut
		}
		return nil, err
	}
	return b, nil
}

// next reads the next record into s (reusing its slices); io.EOF at the end
// (a cut-off record counts as the end).
func (t *traceReader) next(s *Snapshot) error {
	err := t.record(s)
	if errors.Is(err, errTraceCut) {
		return io.EOF
	}
	return err
}

func (t *traceReader) record(s *Snapshot) error {
	le := binary.LittleEndian
	b, err := t.read(24)
	if err != nil {
		return err
	}
	s.T = int64(le.Uint64(b))
	s.WallNs = int64(le.Uint64(b[8:]))
	s.Samples = int64(le.Uint64(b[16:]))
	s.X = growFloats(s.X, t.d)
	s.Avg = growFloats(s.Avg, t.d)
	for k, vec := range [2][]float64{s.X, s.Avg} {
		n := traceDense
		if t.version > 1 {
			if b, err = t.read(8); err != nil {
				return err
			}
			n = int64(le.Uint64(b))
		}
		switch {
		case n == traceDense:
			if b, err = t.read(8 * t.d); err != nil {
				return err
			}
			for j := range vec {
				vec[j] = math.Float64frombits(le.Uint64(b[8*j:]))
			}
		case n == traceSameAs && k == 1:
			copy(vec, s.X)
		case n >= 0 && n <= int64(t.d):
			if b, err = t.read(12 * int(n)); err != nil {
				return err
			}
			clear(vec)
			last := -1
			for e := 0; e < int(n); e++ {
				j := int(le.Uint32(b[12*e:]))
				if j <= last || j >= t.d {
					return fmt.Errorf("ranks: trace record at t=%d: index %d after %d (d = %d)", s.T, j, last, t.d)
				}
				vec[j], last = math.Float64frombits(le.Uint64(b[12*e+4:])), j
			}
		default:
			return fmt.Errorf("ranks: trace record at t=%d: vector tag %d (d = %d)", s.T, n, t.d)
		}
	}
	return nil
}

func (t *traceReader) close() error { return t.f.Close() }

func growFloats(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// recorder is a run's outputs in cfg.Out, one for the serial run (--np 1)
// and the distributed one, so that both write the same files: during
// training the snapshot trace (trace.bin.partial: a run that dies leaves
// no trace.bin that looks whole), after it trace.csv, summary.json, the
// model and trace.bin (renamed once the run is evaluated), and the summary
// table on cfg.Summary.
type recorder struct {
	cfg     *Config
	f       *facts
	partial string // the trace being written
	tw      *traceWriter
}

// newRecorder creates cfg.Out and starts the trace of d-vectors.
func newRecorder(cfg *Config, f *facts) (*recorder, error) {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	r := &recorder{cfg: cfg, f: f, partial: filepath.Join(cfg.Out, "trace.bin.partial")}
	tw, err := createTrace(r.partial, f.d)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	r.tw = tw
	return r, nil
}

// snapshot appends s to the trace.
func (r *recorder) snapshot(s *Snapshot) error { return r.tw.add(s) }

// closeTrace flushes and closes the trace (training has ended).
func (r *recorder) closeTrace() error { return r.tw.close() }

// evaluate evaluates the closed trace with lossSums (see evaluateTraceBy).
func (r *recorder) evaluate(phiStar float64, h *heldOut, lossSums func(v, res []float64) error) ([]TraceRow, []float64, error) {
	return evaluateTraceBy(r.cfg, r.partial, r.f, phiStar, h, lossSums)
}

// write renames the evaluated trace to trace.bin, writes trace.csv,
// summary.json and the model w (none when nil), and prints the summary
// table on cfg.Summary.
func (r *recorder) write(sum *Summary, rows []TraceRow, w []float64) error {
	if err := os.Rename(r.partial, filepath.Join(r.cfg.Out, "trace.bin")); err != nil {
		return err
	}
	if err := writeOutputs(r.cfg, r.f, sum, rows, w); err != nil {
		return err
	}
	if r.cfg.Summary != nil {
		sum.Table(r.cfg.Summary)
	}
	return nil
}
