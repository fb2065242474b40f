package ranks

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
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
	b := t.buf[:0]
	b = binary.LittleEndian.AppendUint64(b, uint64(s.T))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.WallNs))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Samples))
	for _, v := range s.X {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range s.Avg {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	t.buf = b
	_, t.err = t.w.Write(b)
	t.n++
	return t.err
}

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
