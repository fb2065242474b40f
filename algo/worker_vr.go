package algo

import (
	"fmt"
	"slices"
)

// workerVR is a worker's side of solver.MethodSVRG (see VRConfig): the
// active snapshot its differences use and the pending one it was asked
// for, and the buffers of the difference. It is generic over the worker's
// gradient function (GradFunc): a difference is two calls on the same
// rows.
type workerVR struct {
	activeID, pendingID int64
	active, pending     []float64
	// activeNZ, pendingNZ: the coordinates where active and pending may
	// be nonzero, when known (they came sparse), so that a sparse snapshot
	// clears only those instead of d (128 MB at d = 2^24).
	activeNZ, pendingNZ nzSet
	needFull            bool // the next message answers the pending snapshot
	all                 []int
	dA                  []float64
	iA                  []int32
	vA                  []float64
}

func newWorkerVR(d, rows int) *workerVR {
	v := &workerVR{activeID: -1, pendingID: -1, active: make([]float64, d), pending: make([]float64, d), dA: make([]float64, d),
		activeNZ: nzSet{known: true}, pendingNZ: nzSet{known: true}} // zero: nowhere nonzero
	v.all = make([]int, rows)
	for i := range v.all {
		v.all[i] = i
	}
	return v
}

// control handles a snapshot or activation reply; it reports whether r was one.
func (v *workerVR) control(r *Reply) (bool, error) {
	switch r.Kind {
	case ReplySnapshot:
		// Dense, or its nonzeros (the driver's choice when they are few).
		switch {
		case r.Dense != nil:
			if len(r.Dense) != len(v.pending) {
				return true, fmt.Errorf("algo: snapshot of length %d, want %d", len(r.Dense), len(v.pending))
			}
			copy(v.pending, r.Dense)
			v.pendingNZ.forget()
		default:
			if err := checkEntries(r.Idx, r.Val, len(v.pending)); err != nil {
				return true, err
			}
			v.pendingNZ.clear(v.pending)
			for k, j := range r.Idx {
				v.pending[j] = r.Val[k]
			}
			v.pendingNZ.set(r.Idx)
		}
		v.pendingID, v.needFull = r.T, true
		return true, nil
	case ReplyActivate:
		if r.T != v.pendingID {
			return true, fmt.Errorf("algo: activation of snapshot %d, but the pending one is %d", r.T, v.pendingID)
		}
		v.active, v.pending = v.pending, v.active
		v.activeNZ, v.pendingNZ = v.pendingNZ, v.activeNZ
		v.activeID, v.pendingID = r.T, -1
		return true, nil
	}
	return false, nil
}

// compute fills out with w's next message: the shard's full gradient
// (over its rows) at the pending snapshot when one was asked for, else
// the difference at the active snapshot over the next batch (a plain
// gradient before any), on the keyed reply's entries when w can (onKeys),
// else by diff when it can, else by two calls of f.
func (v *workerVR) compute(w *Worker, f GradFunc, diff DiffFunc, out *Grad) {
	n := w.rows
	if v.needFull {
		v.needFull = false
		if len(v.all) != n { // an adopted shard grew it
			v.all = v.all[:0]
			for i := range n {
				v.all = append(v.all, i)
			}
		}
		if w.cfg.Full != nil {
			w.cfg.Full(v.all, v.pending, out)
		} else {
			f(v.all, v.pending, out)
		}
		out.Kind, out.Snap = GradFull, v.pendingID
		return
	}
	rows := w.ahead.Next()
	out.Kind, out.Snap = GradBatch, v.activeID
	var snap []float64
	if v.activeID >= 0 {
		snap = v.active
	}
	if w.onKeys(rows, snap, out) {
		return
	}
	x := w.model.X
	if snap != nil && diff != nil && diff(rows, x, snap, out) {
		return
	}
	f(rows, x, out)
	if v.activeID < 0 {
		return
	}
	loss := out.Loss
	denseA := out.Dense != nil
	if denseA {
		copy(v.dA, out.Dense)
	} else {
		v.iA = append(v.iA[:0], out.Idx...)
		v.vA = append(v.vA[:0], out.Val...)
	}
	f(rows, v.active, out)
	switch {
	case denseA && out.Dense != nil:
		for j, g := range out.Dense {
			v.dA[j] -= g
		}
		out.Dense = v.dA
	case !denseA && out.Dense == nil && slices.Equal(v.iA, out.Idx):
		for k, g := range out.Val {
			v.vA[k] -= g
		}
		out.Idx, out.Val = v.iA, v.vA
	default:
		if !denseA {
			clear(v.dA)
			for k, j := range v.iA {
				v.dA[j] = v.vA[k]
			}
		}
		if out.Dense != nil {
			for j, g := range out.Dense {
				v.dA[j] -= g
			}
		} else {
			for k, j := range out.Idx {
				v.dA[j] -= out.Val[k]
			}
		}
		out.Dense, out.Idx, out.Val = v.dA, nil, nil
	}
	out.Loss = loss
}

// nzSet is where a vector may be nonzero: the indices listed, when known,
// else anywhere (after a dense write). A worker's snapshots and its
// Replica keep one each.
type nzSet struct {
	idx   []int32
	known bool
}

// clear zeroes v where it may be nonzero.
func (s *nzSet) clear(v []float64) {
	if !s.known {
		clear(v)
		return
	}
	for _, j := range s.idx {
		v[j] = 0
	}
}

func (s *nzSet) set(idx []int32) { s.idx, s.known = append(s.idx[:0], idx...), true }
func (s *nzSet) forget()         { s.idx, s.known = s.idx[:0], false }

// add lists idx too (entries set in place); a list grown past d, the
// vector's length, is forgotten: clearing it all is then no dearer.
func (s *nzSet) add(idx []int32, d int) {
	if !s.known {
		return
	}
	if s.idx = append(s.idx, idx...); len(s.idx) > d {
		s.forget()
	}
}
