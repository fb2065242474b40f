package data

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Writer writes rows in LIBSVM format: the label, then "index:value" with
// 1-based indices, numbers in the shortest form that reads back to the same
// float64. It buffers its output; call Flush at the end. After the first
// error every call returns that error. A Writer is not safe for concurrent
// use.
type Writer struct {
	w    *bufio.Writer
	line []byte // reused line buffer
	err  error
	n    int64 // bytes written
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 1<<20)}
}

// WriteRow writes one row: label y and the entries val at the 0-based,
// strictly increasing indices idx (len(idx) must equal len(val)). A
// non-finite number or a bad index is an error and nothing is written.
func (w *Writer) WriteRow(y float64, idx []int32, val []float64) error {
	if w.err != nil {
		return w.err
	}
	if len(idx) != len(val) {
		return fmt.Errorf("data: WriteRow: %d indices and %d values", len(idx), len(val))
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("%w: WriteRow: label %g", ErrNotFinite, y)
	}
	b := strconv.AppendFloat(w.line[:0], y, 'g', -1, 64)
	prev := int32(-1)
	for k, j := range idx {
		v := val[k]
		if j <= prev || j == math.MaxInt32 {
			return fmt.Errorf("%w: WriteRow: index %d after %d", ErrSyntax, j, prev)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: WriteRow: value %g at index %d", ErrNotFinite, v, j)
		}
		prev = j
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(j)+1, 10)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	b = append(b, '\n')
	w.line = b
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
	return err
}

// Written is the number of bytes passed to the underlying buffer so far.
func (w *Writer) Written() int64 { return w.n }

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.w.Flush()
	return w.err
}

// Write writes d in LIBSVM format to w, with its labels as they are now
// (raw, or -1/+1 after ApplyBinary).
func Write(w io.Writer, d *Dataset) error {
	lw := NewWriter(w)
	for i := 0; i < d.X.Rows; i++ {
		idx, val := d.X.Row(i)
		if err := lw.WriteRow(d.Y[i], idx, val); err != nil {
			return err
		}
	}
	return lw.Flush()
}
