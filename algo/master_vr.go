package algo

import (
	"errors"
	"fmt"

	"github.com/asyncmb/asyncmb/solver"
)

// VRConfig makes the master run solver.MethodSVRG: workers send
// variance-reduced differences g_B(x) - g_B(x~) tagged with the snapshot x~
// they used, and the master adds the full gradient mu~ = grad f(x~), which
// it alone keeps (solver.VRStep: Dense on every coordinate, or Sparse on
// the batch's support with inverse-frequency weights).
//
// The refresh. Every cycle of Every updates the master copies x into a
// pending snapshot x~' and attaches it (a ReplySnapshot) to the next reply
// to each worker; that worker answers with its shard's full gradient at x~'
// (a GradFull message) instead of a mini-batch gradient, and the master sums
// them, weighted by FullShare. Meanwhile the other workers go on with the
// previous snapshot: the refresh stops nobody but the worker computing its
// part. When the last part arrives, mu~' is complete and phi(x~') known (the
// parts carry their losses); solver.VRRate accepts it — every worker is
// sent a ReplyActivate and switches to x~' — or rejects it: x goes back to
// the previous snapshot and the step is halved. The first snapshot (x0) is
// the exception: no update is applied before it is complete.
//
// Gradients tagged with the snapshot before the active one (still in flight
// when the activation went out) use that snapshot's mu~, kept as muPrev; a
// worker's full gradient for the next refresh is sent only after it has
// read the activation (the links are FIFO), so no older tag can arrive.
//
// Memory at the master: x, x~' (pending), mu~, mu~ of the previous
// snapshot, the sum being built, and the last accepted snapshot (VRRate):
// 6d floats, plus the metric and weights (2d), and with the sparse step its
// packed records (4d, solver.VRStep.Pack) and the two sets xs and ms (d/32
// bytes, and 4 bytes per member when listed). A worker keeps x, its
// active and pending snapshots (3d).
//
// Where x lives. With the sparse step packed and the last iterate as the
// output (holdX), x moves into the active step's records
// (solver.VRStep.Hold) so that an update touches one cache line per
// coordinate: the master then reads x through the records (keyed and
// delta replies at O(keys), the full reply, the snapshot copy, Iterate,
// Output and Checkpoint through a copy into m.x) and restores it there
// (rejections). The dense step and the plain one of a difference at no
// snapshot take x back first (O(d), as they are; the latter happens only
// before the first activation). With an averaged output every update
// reads all of x anyway and x stays dense. On d1m (d = 2^20, svrg l1, 3
// workers and the master on 2 cores) the master's sparse step went from
// about 60 to 37 us per update (CPU profiles, 4 rounds).
//
// The snapshot's cost. With the sparse step the master keeps two growing
// sets of coordinates (support, a bitmap of d bits each): xs, every
// coordinate a step touched (or x0 had nonzero), and ms, every one some
// refresh part had. x, the pending snapshot and the last accepted one are
// zero off xs, the full gradients off ms, so a refresh copies x into x~'
// and lists its nonzeros over xs, clears the sum and divides it over ms,
// and an activation rewrites the records' w_j mu_j over ms
// (solver.VRStep.PackMuOn); the records do not depend on the step, so a
// rejection or a new step rewrites none. Each costs O(d/64 + members)
// instead of O(d): on text-like data the members are the features the
// data has (at d = 2^24 about a quarter), not d. A dense part or step
// makes the set every coordinate, and those loops O(d) again.
type VRConfig struct {
	Alpha   float64   // the starting (constant) step, in the metric
	Metric  []float64 // the diagonal metric c (nil: Euclidean)
	Sparse  bool      // solver.VRStep.Sparse on the support of each difference
	Weights []float64 // its support weights (len d)
	Every   int64     // updates per cycle (>= 1)
	Adapt   bool      // solver.VRRate adapts the step at each snapshot
	// FullShare[w] (len Workers+1, index 0 unused) weights worker w's shard
	// full gradient (a mean over its rows) in mu~: its fraction of the rows,
	// or 1/P when every worker holds all the data.
	FullShare []float64
}

func (c *VRConfig) validate(workers, d int, reg solver.Reg) error {
	switch {
	case !(c.Alpha > 0):
		return fmt.Errorf("algo: svrg step %v, want > 0", c.Alpha)
	case c.Every < 1:
		return fmt.Errorf("algo: svrg cycle of %d updates, want >= 1", c.Every)
	case len(c.FullShare) != workers+1:
		return fmt.Errorf("algo: %d full-gradient shares for %d workers", len(c.FullShare)-1, workers)
	case c.Metric != nil && len(c.Metric) != d:
		return fmt.Errorf("algo: metric of length %d, dimension %d", len(c.Metric), d)
	case c.Sparse && (len(c.Weights) != d || !reg.Separable()):
		return errors.New("algo: the sparse svrg step needs support weights and a separable regularizer")
	}
	return nil
}

// GradKind says what a gradient message carries.
type GradKind uint8

const (
	// GradBatch is a mini-batch gradient (with svrg: the difference
	// g_B(x) - g_B(x~) at the snapshot Grad.Snap, or a plain gradient with
	// Snap = -1 before any snapshot is active).
	GradBatch GradKind = iota
	// GradFull is a worker's share of a refresh: the mean gradient and
	// loss over its whole shard at the snapshot Grad.Snap.
	GradFull
)

type masterVR struct {
	cfg     VRConfig
	step    solver.VRStep // Mu: the active snapshot's full gradient
	plain   solver.VRStep // Mu = 0: plain gradients (Snap -1)
	muPrev  []float64
	active  int64 // id of the active snapshot, -1 none
	prev    int64 // id of the one before, -1 none
	pending int64 // id being refreshed, -1 none
	xSnap   []float64
	sum     []float64
	loss    float64
	left    int    // parts still missing
	asked   []int8 // by worker: 0, the pending snapshot was sent to it (1), it answered (2)
	waiting bool   // the first snapshot: replies are held until it is complete
	next    int64  // update count at which the next refresh starts
	rate    *solver.VRRate
	alpha   float64
	reverts int64
	ids     int64 // the last snapshot id given out
	// rejectT is the version of the last early rejection: differences
	// computed before it (at the rejected iterates) are dropped.
	rejectT int64
	// shareSum is the FullShare of the workers a refresh asks (the others
	// left): mu~ is their sum divided by it.
	shareSum float64
	// holdX: x lives in step's records whenever they are packed (see
	// "Where x lives" above); m.x is then a scratch copy.
	holdX bool
	// With the sparse step, xs holds every coordinate where x, x~' and
	// the last accepted snapshot may be nonzero, and ms every one where
	// a full gradient (mu~, muPrev, sum) may be: the snapshot's copy, its
	// nonzeros, the sum's clear and the records' repack run over them
	// (see "The snapshot's cost" above). Without it both are all.
	xs, ms support
	// snapIdx, snapVal: x~''s nonzeros in increasing order, found with
	// its copy (snapOK) and sent instead of the dense x~'.
	snapIdx []int32
	snapVal []float64
	snapOK  bool
}

func newMasterVR(c VRConfig, workers int, x0 []float64, reg solver.Reg) *masterVR {
	d := len(x0)
	v := &masterVR{cfg: c, active: -1, prev: -1, pending: -1, ids: -1, alpha: c.Alpha,
		muPrev: make([]float64, d), xSnap: make([]float64, d), sum: make([]float64, d), asked: make([]int8, workers+1),
		xs: newSupport(d), ms: newSupport(d)}
	if c.Sparse && vrSupport {
		v.xs.addNonzeros(x0)
	} else {
		v.xs.setAll()
		v.ms.setAll()
	}
	v.step = solver.VRStep{Reg: reg, C: c.Metric, Mu: make([]float64, d)}
	v.plain = solver.VRStep{Reg: reg, C: c.Metric, Mu: make([]float64, d)}
	if c.Sparse {
		v.step.W = c.Weights
	}
	if c.Adapt {
		v.rate = solver.NewVRRate(c.Alpha)
	}
	if c.Sparse && vrPack {
		// Lay the records out now, with mu~ = 0 (unused before the first
		// activation repacks them): their first writes, page faults of
		// 32d bytes (1.8 s at d = 2^24 on the machines here), are then
		// part of the setup instead of the first snapshot, which every
		// worker waits for.
		v.step.Pack()
	}
	return v
}

// VRAlpha is the svrg step in use (0 for sgd).
func (m *Master) VRAlpha() float64 {
	if m.vr == nil {
		return 0
	}
	return m.vr.alpha
}

// VRSnapshots returns the number of snapshots made active and rejected.
func (m *Master) VRSnapshots() (active, rejected int64) {
	if m.vr == nil {
		return 0, 0
	}
	return m.vr.active + 1, m.vr.reverts
}

// startRefresh makes x the pending snapshot; each worker is sent it with
// its next reply.
func (m *Master) startRefresh() {
	v := m.vr
	v.ids++
	v.pending = v.ids
	m.copySnapshot()
	if idx, ok := v.ms.members(); ok {
		for _, j := range idx {
			v.sum[j] = 0
		}
	} else {
		clear(v.sum)
	}
	v.loss, v.left, v.shareSum = 0, 0, 0
	for w := 1; w <= m.cfg.Workers; w++ {
		if !m.workers[w].gone {
			v.left++
			v.shareSum += v.cfg.FullShare[w]
		}
	}
	clear(v.asked)
}

// vrLost is called when worker w left or had its refresh part refused: a
// refresh still missing w's part is cancelled and a new one, over the
// workers left, starts with the next update (before the first snapshot the
// others go on with plain gradients meanwhile).
func (m *Master) vrLost(w int) {
	v := m.vr
	if v == nil || v.pending < 0 || v.asked[w] == 2 {
		return
	}
	v.pending = -1
	v.next = m.t
	v.waiting = false
}

// askSnapshot prepends the pending snapshot to a reply to worker w.
func (m *Master) askSnapshot(w int) {
	v := m.vr
	if v == nil || v.pending < 0 || v.asked[w] != 0 {
		return
	}
	v.asked[w] = 1
	r := Reply{Worker: w, Kind: ReplySnapshot, T: v.pending, Dense: v.xSnap}
	if v.snapOK {
		r.Idx, r.Val = v.snapIdx, v.snapVal
	}
	m.ready.Replies = append(m.ready.Replies, r)
}

// copySnapshot copies x into the pending snapshot xSnap and, with the
// sparse step, lists its nonzeros (snapIdx, snapVal): over xs, which
// holds every coordinate where x or the snapshot xSnap held before may be
// nonzero, so that the coordinates left alone are zero in both.
func (m *Master) copySnapshot() {
	v := m.vr
	idx, ok := v.xs.members()
	v.snapOK = ok
	if !ok {
		m.copyX(v.xSnap)
		return
	}
	if m.xHeld() {
		v.step.CopyXOn(v.xSnap, idx)
	} else {
		for _, j := range idx {
			v.xSnap[j] = m.x[j]
		}
	}
	if v.snapIdx == nil {
		v.snapIdx, v.snapVal = []int32{}, []float64{} // (none is not "not listed")
	}
	v.snapIdx, v.snapVal = v.snapIdx[:0], v.snapVal[:0]
	for _, j := range idx {
		if x := v.xSnap[j]; x != 0 {
			v.snapIdx = append(v.snapIdx, j)
			v.snapVal = append(v.snapVal, x)
		}
	}
}

// stepFull adds worker g.Worker's part of the pending refresh.
func (m *Master) stepFull(g *Grad) error {
	v := m.vr
	if v != nil && g.Snap >= 0 && g.Snap <= v.ids && g.Snap != v.pending {
		// A part of a refresh cancelled by an early rejection: only the
		// reply is owed.
		m.samples += int64(g.Rows)
		m.withhold(g.Worker)
		m.release()
		return nil
	}
	if v == nil || g.Snap != v.pending || v.pending < 0 || v.asked[g.Worker] != 1 {
		return fmt.Errorf("algo: worker %d sent a full gradient for snapshot %d, which was not asked of it", g.Worker, g.Snap)
	}
	v.asked[g.Worker] = 2
	share := v.cfg.FullShare[g.Worker]
	if g.Dense != nil {
		for j, x := range g.Dense {
			v.sum[j] += share * x
		}
		v.ms.setAll()
	} else {
		for k, j := range g.Idx {
			v.sum[j] += share * g.Val[k]
		}
		v.ms.add(g.Idx)
	}
	v.loss += share * g.Loss
	m.samples += int64(g.Rows)
	v.left--
	m.withhold(g.Worker)
	if v.left == 0 {
		m.completeRefresh()
	}
	if !m.done {
		m.release()
	}
	return nil
}

// completeRefresh accepts or rejects the completed snapshot.
func (m *Master) completeRefresh() {
	v := m.vr
	id := v.pending
	v.pending = -1
	v.next = m.t + v.cfg.Every
	if v.rate != nil {
		if v.shareSum > 0 && v.shareSum != 1 {
			divideOn(v.sum, &v.ms, v.shareSum)
			v.loss /= v.shareSum
			v.shareSum = 1
		}
		alpha, revert := v.rate.Decide(v.loss + m.snapshotReg())
		v.alpha = alpha
		if !revert {
			// x~ is the last accepted snapshot now, kept as PrevX for a
			// rejection (a swap: xSnap is written afresh at the next
			// refresh's start). Its mu~ is step.Mu below; PrevMu stays
			// nil (the master never goes back to it from the rate).
			if v.rate.PrevX == nil {
				v.rate.PrevX = make([]float64, len(v.xSnap))
			}
			v.rate.PrevX, v.xSnap = v.xSnap, v.rate.PrevX
		}
		if revert && v.active >= 0 {
			// Back to the active snapshot (VRRate's previous one), whose
			// mu~ is still v.step.Mu; the workers never switched.
			m.setX(v.rate.PrevX)
			v.reverts++
			m.forgetReplicas()
			v.waiting = false
			// (The records do not depend on the step: no repack.)
			// The jump back is an update of its own: versions name
			// iterates.
			m.avg.Add(m.x)
			m.afterUpdate()
			return
		}
	}
	// Rotate rather than copy (two O(d) copies, 128 MB each at d = 2^24):
	// the active mu~ becomes muPrev, the sum mu~, and the old muPrev the
	// next sum (cleared at the next refresh's start).
	v.muPrev, v.step.Mu, v.sum = v.step.Mu, v.sum, v.muPrev
	if v.shareSum > 0 && v.shareSum != 1 {
		divideOn(v.step.Mu, &v.ms, v.shareSum)
	}
	v.prev, v.active = v.active, id
	m.vrRepackMu()
	v.waiting = false
	for w := 1; w <= m.cfg.Workers; w++ {
		m.ready.Replies = append(m.ready.Replies, Reply{Worker: w, Kind: ReplyActivate, T: id})
	}
}

// divideOn divides x by q on s's members (x is zero elsewhere), or
// everywhere when s is every coordinate.
func divideOn(x []float64, s *support, q float64) {
	if idx, ok := s.members(); ok {
		for _, j := range idx {
			x[j] /= q
		}
		return
	}
	for j := range x {
		x[j] /= q
	}
}

// snapshotReg is Psi(x~') for the rate's decision: over its nonzeros
// when they were listed and Psi is a sum over coordinates that is zero
// at zero (the same sum in the same order less its zero terms: the same
// bits), else over all of it.
func (m *Master) snapshotReg() float64 {
	v := m.vr
	switch m.cfg.Reg.Kind {
	case solver.RegNone, solver.RegL1, solver.RegL2, solver.RegElastic:
		if v.snapOK {
			return m.cfg.Reg.Value(v.snapVal)
		}
	}
	return m.cfg.Reg.Value(v.xSnap)
}

// forgetReplicas makes the next reply to every worker a full one (x was
// replaced, the support log no longer describes the change).
func (m *Master) forgetReplicas() {
	for w := range m.workers {
		m.workers[w].holds = -1
	}
	m.logStart, m.logIdx = m.logStart[:0], m.logIdx[:0]
	m.logStart = nil
}

// vrPack lets the sparse step run on solver.VRStep.Pack's records (false
// in tests: the plain loop, which must give the same bits); vrHold lets x
// live in them (see holdX; false in tests: x stays dense).
var vrPack, vrHold = true, true

// vrSupport lets the sparse step's snapshots run over the supports xs and
// ms (false in tests: every coordinate, which must give the same bits).
var vrSupport = true

// vrRepack lays the active snapshot's sparse step out again
// (solver.VRStep.Pack, O(d)), after a restore. Without it the step is
// still right, only slower (Sparse falls back to its plain loop); a
// changed mu~ must be repacked. The records do not depend on the step:
// a rejection needs none. A held x stays held; with holdX, x is held from
// the first pack on.
func (m *Master) vrRepack() {
	v := m.vr
	if v.cfg.Sparse && vrPack && v.active >= 0 {
		v.step.Pack()
		m.vrHold()
	}
}

// vrRepackMu updates the records after an activation changed mu~: on
// ms's members (every coordinate where the old or the new mu~ may be
// nonzero), O(nnz), or all of them.
func (m *Master) vrRepackMu() {
	v := m.vr
	if !(v.cfg.Sparse && vrPack && v.active >= 0) {
		return
	}
	if idx, ok := v.ms.members(); ok {
		v.step.PackMuOn(idx)
	} else {
		v.step.Pack()
	}
	m.vrHold()
}

// vrHold moves x into the active step's records when holdX and they are
// packed (O(d)).
func (m *Master) vrHold() {
	v := m.vr
	if v.holdX && vrHold && vrPack && v.active >= 0 && !v.step.Held() {
		v.step.Hold(m.x)
	}
}

// vrRelease takes x back from the records into m.x, if they hold it (O(d)).
func (m *Master) vrRelease() {
	if m.xHeld() {
		m.vr.step.Release(m.x)
	}
}

// xHeld reports whether x lives in the sparse step's records.
func (m *Master) xHeld() bool { return m.vr != nil && m.vr.step.Held() }

// xNow returns x: m.x, refreshed from the records when they hold it (O(d);
// the copy is valid until the next update).
func (m *Master) xNow() []float64 {
	if m.xHeld() {
		m.vr.step.CopyX(m.x)
	}
	return m.x
}

// copyX copies x into dst (len d).
func (m *Master) copyX(dst []float64) {
	if m.xHeld() {
		m.vr.step.CopyX(dst)
		return
	}
	copy(dst, m.x)
}

// setX overwrites x with src (len d), a snapshot of this run (zero off
// xs): while x is held, on xs's members only (m.x is scratch then).
func (m *Master) setX(src []float64) {
	if m.xHeld() {
		if idx, ok := m.vr.xs.members(); ok {
			m.vr.step.SetXOn(src, idx)
			return
		}
		m.vr.step.SetX(src)
	}
	copy(m.x, src)
}

// applyVR is the svrg update with a mini-batch message.
func (m *Master) applyVR(g *Grad, w float64) error {
	v := m.vr
	if g.Dense == nil && v.cfg.Sparse && m.xHeld() && (g.Snap == v.active || g.Snap == v.prev) {
		// x is in the records (and v.active >= 0): step it there.
		if g.Snap == v.active {
			v.step.Sparse(nil, g.Idx, g.Val, v.alpha, w)
		} else {
			// In flight when the activation went out: the previous mu~.
			v.step.SparseMu(nil, v.muPrev, g.Idx, g.Val, v.alpha, w)
		}
		v.xs.add(g.Idx)
		m.logSupport(g.Idx)
		m.avg.Add(m.x) // the last iterate: Add reads no x
		return nil
	}
	m.vrRelease() // the steps below read x dense
	defer m.vrHold()
	var st *solver.VRStep
	switch g.Snap {
	case v.active:
		st = &v.step
		if v.active < 0 {
			st = &v.plain
		}
	case v.prev:
		// In flight when the activation went out: the previous mu~.
		st = &solver.VRStep{Reg: v.step.Reg, C: v.step.C, W: v.step.W, Mu: v.muPrev}
	case -1:
		st = &v.plain
	default:
		return fmt.Errorf("algo: worker %d sent a difference at snapshot %d; active are %d and %d", g.Worker, g.Snap, v.active, v.prev)
	}
	if g.Dense != nil {
		// A dense message's support is every coordinate: the dense step
		// (support weights 1) is the sparse one's own special case.
		st.Dense(m.x, g.Dense, v.alpha, w)
		v.xs.setAll()
		m.logSupport(m.all)
	} else {
		if v.cfg.Sparse {
			st.Sparse(m.x, g.Idx, g.Val, v.alpha, w)
			v.xs.add(g.Idx)
		} else {
			m.scratchDense(g.Idx, g.Val)
			st.Dense(m.x, m.gbuf, v.alpha, w)
			clear(m.gbuf)
		}
		m.logSupport(g.Idx)
	}
	m.avg.Add(m.x)
	return nil
}

// scratchDense scatters a sparse vector into the zero gbuf.
func (m *Master) scratchDense(idx []int32, val []float64) {
	for k, j := range idx {
		m.gbuf[j] = val[k]
	}
}

// vrDue starts a refresh when a cycle is over.
func (m *Master) vrDue() {
	if v := m.vr; v != nil && v.pending < 0 && m.t >= v.next {
		m.startRefresh()
	}
}

// vrDrop reports whether a difference is dropped: it was computed at an
// iterate an early rejection threw away, or its loss shows that the step is
// too large, which rejects the cycle under way at once (x goes back to the
// active snapshot, the step is halved, a pending refresh is cancelled and a
// new cycle starts). The worker gets its reply either way.
func (m *Master) vrDrop(g *Grad) bool {
	v := m.vr
	if v == nil || v.rate == nil || v.active < 0 {
		return false
	}
	if g.TRead < v.rejectT {
		return true
	}
	if !v.rate.Exploded(g.Loss) {
		return false
	}
	v.alpha = v.rate.Reject() // (the records do not depend on it)
	v.reverts++
	m.setX(v.rate.PrevX)
	m.forgetReplicas()
	v.pending = -1
	m.avg.Add(m.x)
	m.afterUpdate() // the jump back is an update: versions name iterates
	v.rejectT = m.t
	v.next = m.t + v.cfg.Every
	return true
}
