package algo

import (
	"errors"
	"fmt"
	"slices"

	"github.com/asyncmb/asyncmb/solver"
)

// Export returns the master's state as a checkpoint (tag unset).
func (m *Master) Export() *solver.Checkpoint {
	x, avg := m.Checkpoint()
	return &solver.Checkpoint{T: m.t, Samples: m.samples, Schedule: m.cfg.Schedule, Avg: avg, X: x}
}

// restore puts the master at a checkpoint's state (NewMaster, for
// MasterConfig.Resume).
func (m *Master) restore(c *solver.Checkpoint) error {
	switch {
	case len(c.X) != m.d:
		return fmt.Errorf("algo: the checkpoint has dimension %d, the problem %d", len(c.X), m.d)
	case c.Avg.Kind != m.avg.Kind:
		return fmt.Errorf("algo: the checkpoint averages %v, this run %v", c.Avg.Kind, m.avg.Kind)
	case c.T < 0 || c.Samples < 0:
		return errors.New("algo: a checkpoint with negative counts")
	}
	avg := c.Avg
	avg.Cur, avg.Prev = slices.Clone(avg.Cur), slices.Clone(avg.Prev)
	if m.lazy != nil {
		z, err := NewLazy(m.cfg.Reg, avg, c.X, m.cfg.LazyWindow)
		if err != nil {
			return err
		}
		m.lazy = z
	} else {
		m.x, m.avg = slices.Clone(c.X), avg
		if m.vr != nil {
			m.vr.xs.addNonzeros(m.x) // (a restored x may be nonzero anywhere)
		}
	}
	m.t, m.samples = c.T, c.Samples
	m.stats.Updates = c.T
	m.nextSnap = NextSnapshot(c.T, m.cfg.SnapshotEvery)
	if m.cfg.SyncEvery > 0 {
		m.nextBarrier = c.T + m.cfg.SyncEvery
	}
	return nil
}
