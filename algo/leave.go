package algo

import (
	"fmt"
	"math"
	"slices"
)

// leave removes worker w from the run (EventLeave): it died, was lost or asked to go.
// Whatever it held is released: the gradients it was computing are
// forgotten (so a --sync-every barrier or the bounded mode's delay bound
// stops waiting for them), its owed replies are dropped, a sync round
// completes with the workers that remain, and the reweighting of sharded
// data counts only the remaining shards. Gradients that arrive from w
// afterwards are ignored. Leaving twice is a no-op; the Ready holds the
// replies (to the others) that w's departure released.
func (m *Master) leave(w int) error {
	m.reset()
	if w < 1 || w > m.cfg.Workers {
		return fmt.Errorf("algo: unknown worker %d left", w)
	}
	wk := &m.workers[w]
	if wk.gone {
		return nil
	}
	wk.gone = true
	m.vrLost(w)
	m.active--
	m.computing -= len(wk.sent)
	wk.sent = nil
	m.withheld = slices.DeleteFunc(m.withheld, func(x int) bool { return x == w })
	if m.shares != nil {
		m.activeShare -= m.shares[w]
		m.lostGrads += m.gradsOf[w]
	}
	if m.done || m.active == 0 {
		return nil
	}
	if m.cfg.Mode == ModeSync {
		if m.computing == 0 && len(m.withheld) > 0 {
			m.syncUpdate()
		}
		return nil
	}
	m.release()
	return nil
}

// Active is the number of workers still in the run (Workers minus those
// that left).
func (m *Master) Active() int { return m.active }

// Gone reports whether worker w has left the run.
func (m *Master) Gone(w int) bool { return w >= 1 && w <= m.cfg.Workers && m.workers[w].gone }

// refuse counts worker w's gradient as refused (see checkGrad): it is not
// applied, and the worker gets fresh x as if it had been (in sync mode the
// round goes on without it).
func (m *Master) refuse(w int, why error) {
	m.stats.RefusedGrads++
	m.stats.LastRefusal = why.Error()
	m.withhold(w)
	if m.cfg.Mode == ModeSync {
		m.roundShort = true
		if m.computing == 0 {
			m.syncUpdate()
		}
		return
	}
	m.release()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// checkFinite refuses a gradient with a NaN or infinite entry. x - x is
// 0 for a finite x and NaN for a NaN or an infinity, so four running sums
// of it (the adds overlap) are all 0 exactly when every entry is finite:
// no branch per entry (a refresh part at d = 2^24 has millions of them;
// the two tests per entry had been 11% of the master's loop in -bench
// MasterVRCycle). The entry is looked for only when one is not.
func checkFinite(w int, v []float64) error {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		s0 += v[i] - v[i]
		s1 += v[i+1] - v[i+1]
		s2 += v[i+2] - v[i+2]
		s3 += v[i+3] - v[i+3]
	}
	for ; i < len(v); i++ {
		s0 += v[i] - v[i]
	}
	if s0+s1+s2+s3 == 0 {
		return nil
	}
	for j, x := range v {
		if !finite(x) {
			return fmt.Errorf("algo: worker %d sent a gradient with entry %d = %v", w, j, x)
		}
	}
	return nil
}
