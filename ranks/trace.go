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
//	record: t int64, wall_ns int64, samples int64, x [d]float64, avg [d]float64
//
// A cut-off last record (the run was killed while writing) is ignored by
// the reader.
const (
	traceMagic   = "AMBTRACE"
	traceVersion = 1
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
	// The record goes out through a buffer of traceChunk bytes: a record
	// is 16d bytes (256 MB at d = 2^24), which built whole had grown a
	// slice by doubling (d = 2^24: 4 s of the master's copying, and the
	// slice kept for the next record).
	if t.buf == nil {
		t.buf = make([]byte, 0, traceChunk)
	}
	b := t.buf[:0]
	b = binary.LittleEndian.AppendUint64(b, uint64(s.T))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.WallNs))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Samples))
	for _, vec := range [2][]float64{s.X, s.Avg} {
		for _, v := range vec {
			if len(b) == cap(b) {
				if _, t.err = t.w.Write(b); t.err != nil {
					return t.err
				}
				b = b[:0]
			}
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	_, t.err = t.w.Write(b)
	t.n++
	return t.err
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
	f   *os.File
	r   *bufio.Reader
	d   int
	buf []byte
}

func openTrace(path string) (*traceReader, error) {
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
	if v := binary.LittleEndian.Uint32(hdr[8:]); v != traceVersion {
		f.Close()
		return nil, fmt.Errorf("%s: trace version %d, this build reads %d", path, v, traceVersion)
	}
	d := int64(binary.LittleEndian.Uint32(hdr[12:]))
	// The record buffer is sized by d: check it against the file before
	// allocating (a trace without a whole record reads as empty).
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d == 0 || d > math.MaxInt32/16 {
		f.Close()
		return nil, fmt.Errorf("%s: trace header claims dimension %d", path, d)
	}
	t := &traceReader{f: f, r: r, d: int(d)}
	if rec := 24 + 16*d; st.Size()-16 >= rec {
		t.buf = make([]byte, rec)
	}
	return t, nil
}

// next reads the next record into s (reusing its slices); io.EOF at the end
// (a cut-off record counts as the end).
func (t *traceReader) next(s *Snapshot) error {
	if t.buf == nil {
		return io.EOF
	}
	if _, err := io.ReadFull(t.r, t.buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return io.EOF
		}
		return err
	}
	b := t.buf
	s.T = int64(binary.LittleEndian.Uint64(b))
	s.WallNs = int64(binary.LittleEndian.Uint64(b[8:]))
	s.Samples = int64(binary.LittleEndian.Uint64(b[16:]))
	s.X = growFloats(s.X, t.d)
	s.Avg = growFloats(s.Avg, t.d)
	b = b[24:]
	for j := range s.X {
		s.X[j] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*j:]))
	}
	b = b[8*t.d:]
	for j := range s.Avg {
		s.Avg[j] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*j:]))
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
