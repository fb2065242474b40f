package algo

import (
	"fmt"
	"slices"
)

// Keyed pull. A worker that knows its next mini-batch before it needs x
// sends, with each gradient, the sorted feature support of that batch (its
// keys: the union of the column indices of its rows, see KeySet); the
// master answers with x on those coordinates only (a ReplyKeyed), read at
// the current version with Lazy.Peek, so that the reply costs O(keys)
// whatever d and nnz(x), and the gradient the worker computes from it is
// the one it would compute from all of x (its rows read x only there): the
// iterates and every delay are exactly those of a full reply. The worker
// keeps a dense copy of x updated on the keys (Replica.Apply); the
// coordinates it does not ask for go stale, and its copy is never the base
// of a delta again.
//
// The first reply to a worker (before any gradient, so before any keys) is
// a full one. svrg snapshots stay dense: one O(d) copy per worker and cycle.

// Pull is how the master answers a gradient that carries keys.
type Pull uint8

const (
	// PullAuto replies keyed when that is smaller than the full reply
	// (10 bytes per key against 8d bytes dense or 10 per nonzero of x);
	// workers send keys only for sparse data of large d (the driver's
	// choice).
	PullAuto Pull = iota
	// PullKeys always replies keyed to a gradient that carries keys.
	PullKeys
	// PullAll ignores keys: every reply carries all of x (dense, sparse or
	// a delta), as before keyed pull.
	PullAll
	numPulls
)

var pullNames = [numPulls]string{"auto", "keys", "all"}

// ParsePull maps "auto", "keys" or "all" to a Pull.
func ParsePull(s string) (Pull, error) {
	for i, n := range pullNames {
		if n == s {
			return Pull(i), nil
		}
	}
	return 0, fmt.Errorf("algo: unknown pull %q (want auto, keys or all)", s)
}

func (p Pull) String() string {
	if p < numPulls {
		return pullNames[p]
	}
	return fmt.Sprintf("Pull(%d)", uint8(p))
}

// checkKeys refuses keys that are not strictly increasing within [0, d).
func checkKeys(g *Grad, d int) error {
	prev := int32(-1)
	for _, j := range g.Keys {
		if j <= prev || int(j) >= d {
			return fmt.Errorf("algo: worker %d sent key %d out of order or range [0,%d)", g.Worker, j, d)
		}
		prev = j
	}
	return nil
}

// takeKeys keeps a copy of g's keys (g's slices are views) for the reply
// that answers it; O(keys).
func (m *Master) takeKeys(g *Grad) {
	w := &m.workers[g.Worker]
	if g.Keys == nil || m.cfg.Pull == PullAll {
		w.keys = nil
		return
	}
	w.keys = append(w.keys[:0], g.Keys...)
	if w.keys == nil {
		w.keys = []int32{}
	}
}

// keyedReply fills r with x on the keys of worker wk's last gradient, if it
// sent keys and the pull mode takes them; it reports whether it did. It
// costs O(keys) (O(keys log window) on the lazy path when coordinates
// reached zero), never O(d) or O(nnz(x)).
func (m *Master) keyedReply(wk *mworker, r *Reply) bool {
	if wk.keys == nil {
		return false
	}
	if m.cfg.Pull == PullAuto && !m.keyedSmaller(len(wk.keys)) {
		return false
	}
	vs := len(m.outVal)
	m.outVal = slices.Grow(m.outVal, len(wk.keys))
	if m.lazy != nil {
		m.outVal = m.lazy.PeekKeys(wk.keys, m.outVal)
	} else if m.xHeld() {
		m.outVal = m.vr.step.AppendX(m.outVal, wk.keys)
	} else {
		for _, j := range wk.keys {
			m.outVal = append(m.outVal, m.x[j])
		}
	}
	r.Kind, r.Idx, r.Val = ReplyKeyed, wk.keys, m.outVal[vs:]
	return true
}

// keyedSmaller reports whether a keyed reply of n keys is smaller than the
// full one: 10 bytes per entry (8-byte value, about 2 of delta-varint index)
// against 8d dense, or 10 per nonzero of x when that is known in O(1) (the
// lazy path's upper bound; on the eager path counting would be O(d), and
// the dense size stands).
func (m *Master) keyedSmaller(n int) bool {
	full := 8 * m.d
	if m.lazy != nil {
		full = min(full, 10*m.lazy.NNZUpper())
	}
	return 10*n < full
}
