package algo

import "fmt"

// Adopt moves the share of the data held by worker w (which has left) to
// worker heir, which now samples both shards: the reweighting of sharded
// data then gives heir's gradients both shares. A no-op without shares.
func (m *Master) Adopt(heir, w int) error {
	switch {
	case heir < 1 || heir > m.cfg.Workers || w < 1 || w > m.cfg.Workers:
		return fmt.Errorf("algo: worker %d adopting worker %d's shard: no such worker", heir, w)
	case !m.workers[w].gone || m.workers[heir].gone:
		return fmt.Errorf("algo: worker %d cannot adopt worker %d's shard", heir, w)
	}
	if v := m.vr; v != nil {
		// The heir's refresh parts now cover both shards.
		v.cfg.FullShare[heir] += v.cfg.FullShare[w]
		v.cfg.FullShare[w] = 0
	}
	if m.shares == nil {
		return nil
	}
	m.shares[heir] += m.shares[w]
	m.activeShare += m.shares[w]
	m.shares[w] = 0
	return nil
}

// join takes worker w back into the run after it left: it has no x yet
// (it is sent x as soon as the mode allows), and it takes back its own
// share of the data from worker from (0: none) that had adopted it.
func (m *Master) join(w, from int) error {
	m.reset()
	switch {
	case w < 1 || w > m.cfg.Workers:
		return fmt.Errorf("algo: unknown worker %d joined", w)
	case !m.workers[w].gone:
		return fmt.Errorf("algo: worker %d joined but never left", w)
	}
	m.workers[w] = mworker{holds: -1}
	m.active++
	if m.shares != nil {
		share := m.cfg.Shares[w]
		if from > 0 && !m.workers[from].gone {
			m.shares[from] -= share
		} else {
			m.activeShare += share
		}
		m.shares[w] = share
		m.lostGrads -= m.gradsOf[w]
	}
	if m.done {
		return nil
	}
	m.withhold(w)
	if m.cfg.Mode == ModeSync && m.roundW > 0 {
		return nil // it gets x with the others when the round completes
	}
	m.release()
	return nil
}
