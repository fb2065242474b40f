// Package data reads LIBSVM/svmlight files into CSR matrices, whole or as
// byte-range shards, maps binary labels to -1/+1, and generates synthetic
// LIBSVM data.
//
// The format is one row per line: "label index:value index:value ...", with
// 1-based, strictly increasing indices. '#' starts a comment (whole line or
// trailing), "qid:N" tokens are skipped, spaces, tabs and CRLF line ends are
// allowed, and blank lines are skipped. Internally indices are 0-based int32.
//
// The package imports only the standard library and kernels. Nothing here
// is safe for concurrent mutation of one Dataset; distinct Datasets are
// independent, and a Dataset that is only read may be shared.
package data

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/asyncmb/asyncmb/kernels"
)

// Dataset is a parsed LIBSVM file or shard. X.Cols is the dimension and
// X.Rows == len(Y). Y holds the labels exactly as read until ApplyBinary or
// ToBinary maps them to -1/+1. The Dataset owns its slices; callers may use
// them directly (kernels only read them).
type Dataset struct {
	X        kernels.CSR
	Y        []float64
	MaxIndex int    // largest 1-based feature index seen (0 if none)
	Path     string // the file it was read from

	// Start and End delimit the byte range whose line starts were read
	// (0 and Size for a whole file). BytesRead is how many bytes the reader
	// took from the file: the range plus at most one line and a small read.
	Start, End, Size, BytesRead int64
}

// LabelCap is the number of distinct labels LabelValues collects before it
// stops: a result longer than LabelCap means "more than LabelCap".
const LabelCap = 1000

// LabelValues returns the distinct raw label values in increasing order. It
// stops after LabelCap+1 distinct values (regression targets), so len of the
// result > LabelCap means there are more. -0 and +0 count as one value.
func (d *Dataset) LabelValues() []float64 {
	vals := d.LabelsFirstSeen()
	slices.Sort(vals)
	return vals
}

// LabelMap says which raw label values become -1 (Neg) and +1 (Pos).
type LabelMap struct{ Neg, Pos float64 }

func (m LabelMap) String() string {
	return fmt.Sprintf("%g -> -1, %g -> +1", m.Neg, m.Pos)
}

// BinaryMap maps two distinct label values to -1/+1, the smaller to -1. The
// values may be in any order and repeat (e.g. the concatenated LabelValues
// of several shards). More than two distinct values is an error (ErrLabels)
// saying the data looks like multi-class or regression data; so is one value:
// which class it is cannot be told from the data (is 1 the positive class of
// 0/1 or the negative class of 1/2?), so a caller that has a one-class file,
// such as a small test set, should use the training set's LabelMap.
func BinaryMap(values []float64) (LabelMap, error) {
	v := slices.Clone(values)
	slices.Sort(v)
	v = slices.Compact(v)
	switch len(v) {
	case 0:
		return LabelMap{}, fmt.Errorf("%w: no labels (no rows)", ErrLabels)
	case 1:
		return LabelMap{}, fmt.Errorf("%w: every label is %g; a binary classification loss needs two classes", ErrLabels, v[0])
	case 2:
		return LabelMap{Neg: v[0], Pos: v[1]}, nil
	}
	show := fmt.Sprint(v)
	if len(v) > 5 {
		show = strings.TrimSuffix(fmt.Sprint(v[:5]), "]") + " ...]"
	}
	n := fmt.Sprint(len(v))
	if len(v) > LabelCap {
		n = fmt.Sprintf("more than %d", LabelCap)
	}
	return LabelMap{}, fmt.Errorf("%w: %s distinct labels %s; a classification loss needs exactly two (use a regression loss for targets)",
		ErrLabels, n, show)
}

// ApplyBinary maps Y in place: m.Neg -> -1, m.Pos -> +1. A label that is
// neither is an error (ErrLabels) naming its row, and Y is left unchanged.
func (d *Dataset) ApplyBinary(m LabelMap) error {
	if m.Neg == m.Pos {
		return fmt.Errorf("%w: label map %v maps one value to both classes", ErrLabels, m)
	}
	for i, y := range d.Y {
		if y != m.Neg && y != m.Pos {
			return fmt.Errorf("%w: %s: row %d has label %g, which is neither %g (-1) nor %g (+1)",
				ErrLabels, d.Path, i+1, y, m.Neg, m.Pos)
		}
	}
	for i, y := range d.Y {
		if y == m.Neg {
			d.Y[i] = -1
		} else {
			d.Y[i] = 1
		}
	}
	return nil
}

// ToBinary is BinaryMap(d.LabelValues()) followed by ApplyBinary; it returns
// the map it applied.
func (d *Dataset) ToBinary() (LabelMap, error) {
	m, err := BinaryMap(d.LabelValues())
	if err != nil {
		return m, fmt.Errorf("%s: %w", d.Path, err)
	}
	return m, d.ApplyBinary(m)
}

// SetCols sets the dimension X.Cols to n, e.g. the maximum of MaxIndex over
// all shards, or a training set's dimension for a test set. It is an error
// (ErrFeatures) if the data has an index >= n (0-based), i.e. MaxIndex > n.
func (d *Dataset) SetCols(n int) error {
	if n < 0 || n > maxIndex {
		return fmt.Errorf("%w: dimension %d outside [0, %d]", ErrFeatures, n, maxIndex)
	}
	if d.MaxIndex > n {
		return fmt.Errorf("%w: %s has feature index %d, beyond the dimension %d", ErrFeatures, d.Path, d.MaxIndex, n)
	}
	d.X.Cols = n
	return nil
}

// Dense returns a dense row-major copy of X (Rows*Cols float64s: callers
// check the size first for wide data). The result is owned by the caller.
func (d *Dataset) Dense() *kernels.Dense {
	a := &kernels.Dense{Rows: d.X.Rows, Cols: d.X.Cols, Data: make([]float64, d.X.Rows*d.X.Cols)}
	for i := 0; i < d.X.Rows; i++ {
		idx, val := d.X.Row(i)
		row := a.Data[i*a.Cols : (i+1)*a.Cols]
		for k, j := range idx {
			row[j] = val[k]
		}
	}
	return a
}

// FileHash returns the hex SHA-256 of the file at path.
func FileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("data: hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
