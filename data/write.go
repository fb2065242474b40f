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
	// Digits is the number of significant digits written for labels and
	// values; 0 (the default) writes the shortest form that reads back to
	// the same float64.
	Digits int

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
// strictly increasing indices idx (see AppendRow). A row that AppendRow
// rejects is an error and nothing is written.
func (w *Writer) WriteRow(y float64, idx []int32, val []float64) error {
	if w.err != nil {
		return w.err
	}
	b, err := AppendRow(w.line[:0], y, idx, val, w.Digits)
	if err != nil {
		return err
	}
	w.line = b
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
	return err
}

// AppendRow appends one LIBSVM line (with its '\n') to dst and returns the
// extended buffer: label y, then "index:value" for the 0-based, strictly
// increasing indices idx (written 1-based) and the values val, numbers with
// digits significant digits (0: the shortest form that reads back exactly).
// len(idx) must equal len(val). A non-finite number (ErrNotFinite) or a
// negative, repeated or decreasing index (ErrSyntax) is an error, and dst
// is returned unchanged.
func AppendRow(dst []byte, y float64, idx []int32, val []float64, digits int) ([]byte, error) {
	if len(idx) != len(val) {
		return dst, fmt.Errorf("data: AppendRow: %d indices and %d values", len(idx), len(val))
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return dst, fmt.Errorf("%w: AppendRow: label %g", ErrNotFinite, y)
	}
	prec := -1
	if digits > 0 {
		prec = digits
	}
	b := strconv.AppendFloat(dst, y, 'g', prec, 64)
	prev := int32(-1)
	for k, j := range idx {
		v := val[k]
		if j <= prev || j == math.MaxInt32 {
			return dst, fmt.Errorf("%w: AppendRow: index %d after %d", ErrSyntax, j, prev)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return dst, fmt.Errorf("%w: AppendRow: value %g at index %d", ErrNotFinite, v, j)
		}
		prev = j
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(j)+1, 10)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'g', prec, 64)
	}
	return append(b, '\n'), nil
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
