package algo

import (
	"encoding/binary"
	"math"
)

// appendVR encodes the svrg master's state (after appendExt's fields):
//
//	active, prev, pending, left, next, reverts, ids, rejectT i64
//	flags u8 (waiting 1, rate 2) | loss, alpha, shareSum f64
//	asked: workers+1 u8 | FullShare: workers+1 f64
//	mu, muPrev, xSnap, sum: d f64 each
//	rate (if flag 2): Alpha, Max, PrevPhi, top f64 | have u8 | streak i64 | PrevX, PrevMu present u8 + d f64 each
func (m *Master) appendVR(b []byte) []byte {
	v := m.vr
	le := binary.LittleEndian
	i64 := func(x int64) { b = le.AppendUint64(b, uint64(x)) }
	f64 := func(x float64) { b = le.AppendUint64(b, math.Float64bits(x)) }
	vec := func(x []float64) {
		for _, y := range x {
			f64(y)
		}
	}
	for _, x := range []int64{v.active, v.prev, v.pending, int64(v.left), v.next, v.reverts, v.ids, v.rejectT} {
		i64(x)
	}
	var f byte
	if v.waiting {
		f |= 1
	}
	if v.rate != nil {
		f |= 2
	}
	b = append(b, f)
	f64(v.loss)
	f64(v.alpha)
	f64(v.shareSum)
	for _, a := range v.asked {
		b = append(b, byte(a))
	}
	vec(v.cfg.FullShare)
	vec(v.step.Mu)
	vec(v.muPrev)
	vec(v.xSnap)
	vec(v.sum)
	if r := v.rate; r != nil {
		have, top, streak := r.State()
		f64(r.Alpha)
		f64(r.Max)
		f64(r.PrevPhi)
		f64(top)
		if have {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		i64(int64(streak))
		for _, x := range [][]float64{r.PrevX, r.PrevMu} {
			if x == nil {
				b = append(b, 0)
				continue
			}
			b = append(b, 1)
			vec(x)
		}
	}
	return b
}

// readVR restores appendVR's fields.
func (m *Master) readVR(r *extReader) {
	v := m.vr
	m.vrRelease()
	v.step.Unpack() // mu~ and the step change: repacked at the end
	v.active, v.prev, v.pending = r.i64(), r.i64(), r.i64()
	v.left = int(r.i64())
	v.next, v.reverts, v.ids, v.rejectT = r.i64(), r.i64(), r.i64(), r.i64()
	f := r.u8()
	v.waiting = f&1 != 0
	v.loss, v.alpha, v.shareSum = r.f64(), r.f64(), r.f64()
	for w := range v.asked {
		v.asked[w] = int8(r.u8())
	}
	vec := func(x []float64) {
		for j := range x {
			x[j] = r.f64()
		}
	}
	v.cfg.FullShare = make([]float64, len(v.asked))
	vec(v.cfg.FullShare)
	vec(v.step.Mu)
	vec(v.muPrev)
	vec(v.xSnap)
	vec(v.sum)
	if (f&2 != 0) != (v.rate != nil) {
		r.fail("algo: the svrg state's adaptive step does not match the configuration")
		return
	}
	if rt := v.rate; rt != nil {
		rt.Alpha, rt.Max, rt.PrevPhi = r.f64(), r.f64(), r.f64()
		top := r.f64()
		have := r.u8() != 0
		streak := int(r.i64())
		rt.SetState(have, top, streak)
		rt.PrevX, rt.PrevMu = nil, nil
		for _, p := range []*[]float64{&rt.PrevX, &rt.PrevMu} {
			if r.u8() == 1 {
				*p = make([]float64, m.d)
				vec(*p)
			}
		}
	}
	if v.cfg.Sparse && vrSupport {
		// Every vector restored may be nonzero anywhere: the supports
		// are found again (O(d), once).
		v.xs, v.ms, v.snapOK = newSupport(m.d), newSupport(m.d), false
		v.xs.addNonzeros(m.x)
		v.xs.addNonzeros(v.xSnap)
		v.ms.addNonzeros(v.step.Mu)
		v.ms.addNonzeros(v.muPrev)
		v.ms.addNonzeros(v.sum)
		if rt := v.rate; rt != nil {
			v.xs.addNonzeros(rt.PrevX)
			v.ms.addNonzeros(rt.PrevMu)
		}
	}
	m.vrRepack()
}
