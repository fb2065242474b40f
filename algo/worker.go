package algo

import (
	"fmt"

	"github.com/asyncmb/asyncmb/solver"
)

// Replica is a worker's copy of the master's x, kept up to date by the
// master's replies (dense, sparse, delta or keyed: after a keyed reply only
// the keys asked for are current). Not safe for concurrent use.
//
// With Defer, a keyed reply's entries are kept as they came (Keyed) instead
// of being scattered into X: a worker whose next computation reads x on
// exactly those keys uses them in place and Takes them, which saves the
// scatter into X and the gather out of it (two scattered accesses per key
// into 8d bytes). Until then, or if they are not taken, X is brought up to
// date first (Sync). A taken reply is never written into X: every
// computation reads x only on the keys of the reply before it (its batch's
// keys, which it asked for; a full gradient reads the snapshot), so the
// coordinates it leaves stale are not read again before a later reply sets
// them.
type Replica struct {
	X []float64
	T int64 // version held; -1 before the first reply
	// nz is where X may be nonzero, when known (after a sparse reply), so
	// that the next sparse reply clears only those.
	nz nzSet

	Defer bool
	// pk, pv: the last keyed reply's entries while pending (not yet in
	// X and not taken).
	pk      []int32
	pv      []float64
	pending bool
}

// NewReplica returns an empty copy of dimension d.
func NewReplica(d int) *Replica {
	return &Replica{X: make([]float64, d), T: -1, nz: nzSet{known: true}}
}

// Apply updates the copy with a reply. A delta that does not apply to the
// version held, or entries outside [0, d), are errors (the copy is then
// unchanged only for the version check).
func (m *Replica) Apply(r *Reply) error {
	d := len(m.X)
	m.Sync()
	switch r.Kind {
	case ReplyDense:
		if len(r.Dense) != d {
			return fmt.Errorf("algo: dense x of length %d, want %d", len(r.Dense), d)
		}
		copy(m.X, r.Dense)
		m.nz.forget()
	case ReplySparse:
		if err := checkEntries(r.Idx, r.Val, d); err != nil {
			return err
		}
		m.nz.clear(m.X)
		for k, j := range r.Idx {
			m.X[j] = r.Val[k]
		}
		m.nz.set(r.Idx)
	case ReplyDelta, ReplyKeyed:
		// A keyed reply sets the coordinates asked for, as a delta does
		// those that changed; it applies to any version held.
		if r.Kind == ReplyDelta && r.Base != m.T {
			return fmt.Errorf("algo: delta from version %d, but the copy is at version %d", r.Base, m.T)
		}
		if err := checkEntries(r.Idx, r.Val, d); err != nil {
			return err
		}
		if m.Defer && r.Kind == ReplyKeyed {
			m.pk, m.pv = append(m.pk[:0], r.Idx...), append(m.pv[:0], r.Val...)
			m.pending = true
		} else {
			for k, j := range r.Idx {
				m.X[j] = r.Val[k]
			}
		}
		m.nz.add(r.Idx, d)
	default:
		return fmt.Errorf("algo: reply of kind %v carries no x", r.Kind)
	}
	m.T = r.T
	return nil
}

// Keyed returns the pending keyed reply's keys and values (x on those
// keys, at version T), or ok false when none is pending. The slices are
// the Replica's, valid until the next Apply.
func (m *Replica) Keyed() (keys []int32, val []float64, ok bool) {
	return m.pk, m.pv, m.pending
}

// Take marks the pending keyed reply as used in place: it will not be
// written into X (see Replica).
func (m *Replica) Take() { m.pending = false }

// Sync writes a pending keyed reply into X.
func (m *Replica) Sync() {
	if !m.pending {
		return
	}
	for k, j := range m.pk {
		m.X[j] = m.pv[k]
	}
	m.pending = false
}

func checkEntries(idx []int32, val []float64, d int) error {
	if len(idx) != len(val) {
		return fmt.Errorf("algo: sparse x with %d indices and %d values", len(idx), len(val))
	}
	for _, j := range idx {
		if j < 0 || int(j) >= d {
			return fmt.Errorf("algo: sparse x index %d outside [0,%d)", j, d)
		}
	}
	return nil
}

// Sampler is solver's mini-batch sampler, the one serial SGD uses: a
// worker draws its batches with Next (a batch that would cross an epoch's
// end is completed from the next permutation).
type Sampler = solver.Sampler

// NewSampler returns a sampler over rows [0, n) with the given seed.
func NewSampler(n int, seed uint64) *Sampler { return solver.NewSampler(n, seed) }
