// Package kernels holds the numeric inner loops of asyncmb: sparse (CSR) and
// dense row-major matrix products, the smooth losses (logistic, squared,
// squared hinge) and their mini-batch and full-data gradients.
//
// The package imports only the standard library and gonum. Functions take
// raw slices plus a destination owned by the caller, check shapes once at
// entry (panicking with a "kernels: ..." message on a caller bug), reslice,
// and loop; they never allocate in the hot path unless documented.
package kernels

import "fmt"

// CSR is a sparse matrix in compressed sparse row form. Row i holds the
// column indices Indices[Indptr[i]:Indptr[i+1]] (0-based, strictly
// increasing) and the values Data[Indptr[i]:Indptr[i+1]].
//
// A CSR is a plain value: the caller owns the slices. Kernels only read it,
// so one CSR may be shared by any number of goroutines.
type CSR struct {
	Rows, Cols int
	Indptr     []int64   // len Rows+1, Indptr[0] == 0, non-decreasing
	Indices    []int32   // len NNZ, each in [0, Cols)
	Data       []float64 // len NNZ
}

// NNZ is the number of stored entries.
func (a *CSR) NNZ() int {
	if len(a.Indptr) == 0 {
		return 0
	}
	return int(a.Indptr[a.Rows])
}

// Row returns the indices and values of row i (sub-slices of the matrix,
// not copies).
func (a *CSR) Row(i int) ([]int32, []float64) {
	lo, hi := a.Indptr[i], a.Indptr[i+1]
	return a.Indices[lo:hi], a.Data[lo:hi]
}

// Check reports the first structural defect of a (wrong lengths, offsets
// that decrease, an index out of [0, Cols)), or nil. It is O(NNZ) and meant
// for data loaded from outside, not for hot paths.
func (a *CSR) Check() error {
	if a.Rows < 0 || a.Cols < 0 {
		return fmt.Errorf("kernels: negative shape %dx%d", a.Rows, a.Cols)
	}
	if len(a.Indptr) != a.Rows+1 {
		return fmt.Errorf("kernels: len(Indptr)=%d, want Rows+1=%d", len(a.Indptr), a.Rows+1)
	}
	if a.Indptr[0] != 0 {
		return fmt.Errorf("kernels: Indptr[0]=%d, want 0", a.Indptr[0])
	}
	nnz := a.Indptr[a.Rows]
	if int64(len(a.Indices)) != nnz || int64(len(a.Data)) != nnz {
		return fmt.Errorf("kernels: nnz=%d but len(Indices)=%d len(Data)=%d", nnz, len(a.Indices), len(a.Data))
	}
	for i := 0; i < a.Rows; i++ {
		if a.Indptr[i+1] < a.Indptr[i] {
			return fmt.Errorf("kernels: Indptr decreases at row %d", i)
		}
		for _, j := range a.Indices[a.Indptr[i]:a.Indptr[i+1]] {
			if j < 0 || int(j) >= a.Cols {
				return fmt.Errorf("kernels: row %d has column %d outside [0,%d)", i, j, a.Cols)
			}
		}
	}
	return nil
}

// Dense is a dense row-major matrix: element (i, j) is Data[i*Cols+j].
// Like CSR it is a plain value owned by the caller and only read by kernels.
type Dense struct {
	Rows, Cols int
	Data       []float64 // len Rows*Cols
}

// Row returns row i as a sub-slice of Data.
func (a *Dense) Row(i int) []float64 {
	return a.Data[i*a.Cols : (i+1)*a.Cols]
}

// Matrix is either a *CSR or a *Dense, for code outside the hot loops (the
// solver's full-data objective, the reference solver) that must handle both.
// Kernels dispatch on it once per call, never per row.
type Matrix struct {
	CSR   *CSR
	Dense *Dense
}

// Dims returns (rows, cols) of whichever matrix is set.
func (m Matrix) Dims() (int, int) {
	if m.CSR != nil {
		return m.CSR.Rows, m.CSR.Cols
	}
	if m.Dense != nil {
		return m.Dense.Rows, m.Dense.Cols
	}
	return 0, 0
}

// NNZ is the number of stored entries (Rows*Cols for a dense matrix).
func (m Matrix) NNZ() int {
	if m.CSR != nil {
		return m.CSR.NNZ()
	}
	if m.Dense != nil {
		return m.Dense.Rows * m.Dense.Cols
	}
	return 0
}

// RowNNZ is the number of stored entries of row i (Cols for a dense matrix).
func (m Matrix) RowNNZ(i int) int {
	if m.CSR != nil {
		return int(m.CSR.Indptr[i+1] - m.CSR.Indptr[i])
	}
	if m.Dense != nil {
		return m.Dense.Cols
	}
	return 0
}
