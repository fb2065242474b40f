package algo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/asyncmb/asyncmb/solver"
)

// State returns the master's whole algorithm state as a checkpoint: x, the
// averaging state, t, the rows applied and the schedule in solver's fields,
// and in Ext everything else a continuation depends on (the per-worker
// versions in flight and held, the withheld replies, the barrier, the
// snapshot position, the reweighting's counts and shares, the sync round's
// sum, the support log of delta replies, the time and the stopping rules'
// state). Restore puts it into a fresh master; both then continue
// bit-identically. The statistics (MasterStats) are telemetry and not
// included. With the lazy update State synchronizes the iterate and
// restarts its history (the live master then equals a restored one). For
// svrg it adds the snapshots, full gradients, the refresh in progress and
// the adaptive step's state (appendVR).
func (m *Master) State() (*solver.Checkpoint, error) {
	c := m.Export()
	if m.lazy != nil {
		// The exported means, not the lazy sums, are the state: rebuild
		// from them, as Restore will.
		syncs := m.lazy.syncs
		z, err := NewLazy(m.cfg.Reg, c.Avg, c.X, m.cfg.LazyWindow)
		if err != nil {
			return nil, err
		}
		z.syncs = syncs
		m.lazy = z
		c.Avg.Cur, c.Avg.Prev = slices.Clone(c.Avg.Cur), slices.Clone(c.Avg.Prev)
	}
	c.Ext = m.appendExt(nil)
	return c, nil
}

// Restore builds a master of cfg (the configuration of the one that wrote
// c) at the state State wrote into c.
func Restore(cfg MasterConfig, c *solver.Checkpoint) (*Master, error) {
	if len(c.Ext) == 0 {
		return nil, errors.New("algo: the checkpoint holds no master state (write it with State)")
	}
	cfg.Resume = c
	m, err := NewMaster(cfg)
	if err != nil {
		return nil, err
	}
	if err := m.readExt(c.Ext); err != nil {
		return nil, err
	}
	return m, nil
}

// stateVersion is the version of Ext's encoding.
const stateVersion = 1

// appendExt encodes the state beyond solver's fields, little-endian:
//
//	version u8 | workers u64 | d u64
//	now, computing, nextBarrier, nextSnap, active, lostGrads, grads i64
//	flags u8 (done 1, inBarrier 2, roundShort 4) | stopReason u8
//	activeShare, roundW f64
//	gradsOf: workers+1 i64 | shares: n u64 + n f64
//	withheld: n u64 + n i64
//	per worker 0..workers: sent n u64 + n i64 | holds i64 | flags u8 (started 1, gone 2)
//	log: logBase i64 | logStart n u64 + n i64 | logIdx n u64 + n i32
//	gbuf: d f64
//	tol: present u8 [refPhi f64 | refSamples i64 | started u8 | last f64]
//	svrg: present u8 [appendVR's fields]
func (m *Master) appendExt(b []byte) []byte {
	le := binary.LittleEndian
	i64 := func(v int64) { b = le.AppendUint64(b, uint64(v)) }
	f64 := func(v float64) { b = le.AppendUint64(b, math.Float64bits(v)) }
	ints := func(v []int64) {
		i64(int64(len(v)))
		for _, x := range v {
			i64(x)
		}
	}
	flag := func(bs ...bool) {
		var f byte
		for k, v := range bs {
			if v {
				f |= 1 << k
			}
		}
		b = append(b, f)
	}
	b = append(b, stateVersion)
	i64(int64(m.cfg.Workers))
	i64(int64(m.d))
	for _, v := range []int64{m.now, int64(m.computing), m.nextBarrier, m.nextSnap, int64(m.active), m.lostGrads, m.grads} {
		i64(v)
	}
	flag(m.done, m.inBarrier, m.roundShort)
	b = append(b, byte(m.stopReason))
	f64(m.activeShare)
	f64(m.roundW)
	for _, v := range m.gradsOf {
		i64(v)
	}
	i64(int64(len(m.shares)))
	for _, v := range m.shares {
		f64(v)
	}
	wh := make([]int64, len(m.withheld))
	for k, w := range m.withheld {
		wh[k] = int64(w)
	}
	ints(wh)
	for _, w := range m.workers {
		ints(w.sent)
		i64(w.holds)
		flag(w.started, w.gone)
	}
	i64(m.logBase)
	ls := make([]int64, len(m.logStart))
	for k, v := range m.logStart {
		ls[k] = int64(v)
	}
	ints(ls)
	i64(int64(len(m.logIdx)))
	for _, j := range m.logIdx {
		b = le.AppendUint32(b, uint32(j))
	}
	for _, v := range m.gbuf {
		f64(v)
	}
	if c := m.tol; c != nil {
		b = append(b, 1)
		f64(c.refPhi)
		i64(c.refSamples)
		flag(c.started)
		f64(c.Last)
	} else {
		b = append(b, 0)
	}
	if m.vr != nil {
		b = append(b, 1)
		return m.appendVR(b)
	}
	return append(b, 0)
}

// extReader decodes appendExt's fields; the first short read sets err.
type extReader struct {
	b   []byte
	err error
}

func (r *extReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = errors.New("algo: the master state is truncated")
		}
		return make([]byte, max(n, 0))
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *extReader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
}

func (r *extReader) u8() byte     { return r.take(1)[0] }
func (r *extReader) i64() int64   { return int64(binary.LittleEndian.Uint64(r.take(8))) }
func (r *extReader) f64() float64 { return math.Float64frombits(uint64(r.i64())) }

// count reads a length of at most limit.
func (r *extReader) count(limit int) int {
	n := r.i64()
	if r.err == nil && (n < 0 || n > int64(limit)) {
		r.err = fmt.Errorf("algo: the master state has a list of %d entries (at most %d)", n, limit)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func (r *extReader) ints(limit int) []int64 {
	n := r.count(limit)
	v := make([]int64, n)
	for k := range v {
		v[k] = r.i64()
	}
	return v
}

// readExt restores appendExt's fields into m (built from the same
// configuration).
func (m *Master) readExt(b []byte) error {
	r := &extReader{b: b}
	if v := r.u8(); r.err == nil && v != stateVersion {
		return fmt.Errorf("algo: master state version %d, this build reads %d", v, stateVersion)
	}
	P, d := r.i64(), r.i64()
	if r.err == nil && (P != int64(m.cfg.Workers) || d != int64(m.d)) {
		return fmt.Errorf("algo: the master state is for %d workers and d=%d, not %d and %d", P, d, m.cfg.Workers, m.d)
	}
	limit := len(b) // no list is longer than the encoding
	m.now = r.i64()
	m.computing = int(r.i64())
	m.nextBarrier, m.nextSnap = r.i64(), r.i64()
	m.active = int(r.i64())
	m.lostGrads, m.grads = r.i64(), r.i64()
	f := r.u8()
	m.done, m.inBarrier, m.roundShort = f&1 != 0, f&2 != 0, f&4 != 0
	m.stopReason = StopReason(r.u8())
	m.activeShare, m.roundW = r.f64(), r.f64()
	for w := range m.gradsOf {
		m.gradsOf[w] = r.i64()
	}
	if n := r.count(m.cfg.Workers + 1); n > 0 {
		m.shares = make([]float64, n)
		for k := range m.shares {
			m.shares[k] = r.f64()
		}
	}
	m.withheld = m.withheld[:0]
	for _, w := range r.ints(limit) {
		if w < 1 || w > int64(m.cfg.Workers) {
			r.err = errors.Join(r.err, fmt.Errorf("algo: the master state withholds a reply to worker %d", w))
		}
		m.withheld = append(m.withheld, int(w))
	}
	for w := range m.workers {
		wk := &m.workers[w]
		wk.sent = r.ints(limit)
		wk.holds = r.i64()
		f := r.u8()
		wk.started, wk.gone = f&1 != 0, f&2 != 0
	}
	m.logBase = r.i64()
	m.logStart = m.logStart[:0]
	for _, v := range r.ints(limit) {
		m.logStart = append(m.logStart, int(v))
	}
	if len(m.logStart) == 0 {
		m.logStart = nil
	}
	n := r.count(limit / 4)
	m.logIdx = make([]int32, n)
	for k := range m.logIdx {
		m.logIdx[k] = int32(binary.LittleEndian.Uint32(r.take(4)))
	}
	for j := range m.gbuf {
		m.gbuf[j] = r.f64()
	}
	if hasTol := r.u8() == 1; hasTol && m.tol == nil {
		r.fail("algo: the master state has a --tol state, the configuration no --tol")
	} else if hasTol {
		m.tol.refPhi, m.tol.refSamples = r.f64(), r.i64()
		m.tol.started = r.u8() != 0
		m.tol.Last = r.f64()
	}
	if hasVR := r.u8() == 1; hasVR != (m.vr != nil) {
		r.fail("algo: the master state's svrg part does not match the configuration")
	} else if hasVR {
		m.readVR(r)
	}
	switch {
	case r.err != nil:
		return r.err
	case len(r.b) != 0:
		return fmt.Errorf("algo: %d bytes after the master state", len(r.b))
	case m.stopReason >= numStopReasons:
		return fmt.Errorf("algo: the master state has stop reason %d", m.stopReason)
	}
	for _, j := range m.logIdx {
		if j < 0 || int(j) >= m.d {
			return fmt.Errorf("algo: the master state logs coordinate %d outside [0,%d)", j, m.d)
		}
	}
	for k, v := range m.logStart {
		if v < 0 || v > len(m.logIdx) || (k > 0 && v < m.logStart[k-1]) {
			return errors.New("algo: the master state's support log is inconsistent")
		}
	}
	inFlight := 0
	for _, wk := range m.workers {
		for _, v := range wk.sent {
			if v < 0 || v > m.t {
				return fmt.Errorf("algo: the master state has a gradient at version %d in flight, t=%d", v, m.t)
			}
		}
		inFlight += len(wk.sent)
		if wk.holds < -1 || wk.holds > m.t || (m.logStart != nil && wk.holds >= m.logBase && wk.holds-m.logBase >= int64(len(m.logStart))) {
			return fmt.Errorf("algo: the master state has a worker holding version %d (t=%d, log from %d)", wk.holds, m.t, m.logBase)
		}
	}
	if inFlight != m.computing {
		return fmt.Errorf("algo: the master state counts %d gradients in flight, its workers %d", m.computing, inFlight)
	}
	return nil
}
