package ranks

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
)

// Message tags between the master (rank 0) and the workers. Collectives
// (Bcast, Reduce) use comm's reserved tags.
const (
	tagSetup = 1 // worker -> master: shard facts; master -> worker: problem facts
	tagGrad  = 2 // worker -> master: a mini-batch gradient
	tagModel = 3 // master -> worker: x (dense, sparse or delta) or stop
)

// Gradient message (worker -> master), Ints:
//
//	0 t_read     version of x the gradient was computed at
//	1 rows       mini-batch rows
//	2 loss       math.Float64bits of the mini-batch loss
//	3 compute_ns time spent computing it
//	4 idle_ns    time spent waiting for x before computing it
//	5 kind       GradKind: a mini-batch (difference) or a refresh part
//	6 snap       svrg: the snapshot it refers to, -1 none
//	7 nkeys      keyed pull: the number of keys, -1 none (a full reply)
//	8 keys_seq   the keys' number in the link's key history (keyhist.go),
//	             -1 not numbered (test senders without a history)
//	9 support    the number of an earlier key list that is the sparse
//	             gradient's support, -1 none (explicit indices)
//	10 crc       with support: that list's CRC-32C, else 0
//
// the gradient as a dense vector (len d), a sparse one (Dim d), or with a
// support reference its values on that list's keys as a dense vector of
// their length; and the keys (algo.Grad.Keys: the sorted feature support
// of the worker's next mini-batch) in Bytes, delta-varint coded as comm
// codes a sparse vector's indices: nkeys uvarints, the first key and then
// each gap minus one (key[i] - key[i-1] - 1), about 2 bytes per key;
// decodeGrad requires them exactly consumed, strictly increasing and within
// [0, d). The keys are recorded before the support is looked up, so a
// support may name the keys of its own message.
const gradInts = 11

// encodeGrad fills m (whose Ints and Bytes slices are reused) from g. With
// a history h (the worker's, nil for none) the keys are numbered and
// recorded, and a sparse support equal to a list held goes as a reference.
func encodeGrad(m *comm.Msg, g *algo.Grad, d int, h *keyHist) {
	nkeys, seq, ref, crc := int64(-1), int64(-1), int64(-1), int64(0)
	m.Bytes = m.Bytes[:0]
	if g.Keys != nil {
		nkeys = int64(len(g.Keys))
		m.Bytes = appendKeys(m.Bytes, g.Keys)
		if h != nil {
			seq = h.record(g.Keys, m.Bytes)
		}
	}
	var sup *keyList
	if g.Dense == nil && len(g.Idx) > 0 {
		sup = h.find(g.Idx)
	}
	m.Dense, m.Idx, m.Vals, m.Dim = nil, nil, nil, 0
	switch {
	case g.Dense != nil:
		m.Dense = g.Dense
	case sup != nil:
		ref, crc = sup.seq, int64(sup.crc)
		m.Dense = g.Val
	default:
		m.Idx, m.Vals, m.Dim = g.Idx, g.Val, d
		if m.Idx == nil {
			m.Idx, m.Vals = []int32{}, []float64{}
		}
	}
	m.Ints = append(m.Ints[:0], g.TRead, int64(g.Rows), int64(math.Float64bits(g.Loss)), g.ComputeNs, g.IdleNs, int64(g.Kind), g.Snap, nkeys, seq, ref, crc)
}

// decodeGrad points g into m and h (views valid until the next Recv into m
// and the next decodeGrad with h). h is the link's history (nil: none, a
// numbered key list or a support reference is then an error).
func decodeGrad(m *comm.Msg, g *algo.Grad, d int, h *keyHist) error {
	if len(m.Ints) != gradInts {
		return fmt.Errorf("ranks: gradient message from rank %d has %d header words, want %d", m.Src, len(m.Ints), gradInts)
	}
	keyBuf := g.Keys[:0] // reused
	*g = algo.Grad{
		Worker:    m.Src,
		TRead:     m.Ints[0],
		Rows:      int(m.Ints[1]),
		Loss:      math.Float64frombits(uint64(m.Ints[2])),
		ComputeNs: m.Ints[3],
		IdleNs:    m.Ints[4],
		Kind:      algo.GradKind(m.Ints[5]),
		Snap:      m.Ints[6],
	}
	if g.Kind > algo.GradFull || g.Snap < -1 {
		return fmt.Errorf("ranks: gradient message from rank %d has kind %d, snapshot %d", m.Src, m.Ints[5], m.Ints[6])
	}
	if err := decodeGradKeys(m, g, d, h, keyBuf); err != nil {
		return fmt.Errorf("ranks: gradient message from rank %d: %w", m.Src, err)
	}
	switch ref := m.Ints[9]; {
	case ref != -1:
		return decodeSupport(m, g, h)
	case m.Ints[10] != 0:
		return fmt.Errorf("ranks: gradient message from rank %d has a check without a support", m.Src)
	case m.Dense != nil:
		g.Dense = m.Dense
	case m.Idx != nil:
		if m.Dim != d {
			return fmt.Errorf("ranks: sparse gradient from rank %d has dimension %d, want %d", m.Src, m.Dim, d)
		}
		g.Idx, g.Val = m.Idx, m.Vals
	default:
		return fmt.Errorf("ranks: gradient message from rank %d carries no vector", m.Src)
	}
	return nil
}

// decodeGradKeys decodes the keys of gradient message m into g: into the
// next entry of h, or into keyBuf without a history.
func decodeGradKeys(m *comm.Msg, g *algo.Grad, d int, h *keyHist, keyBuf []int32) error {
	nkeys, seq := m.Ints[7], m.Ints[8]
	if nkeys < 0 {
		if nkeys != -1 || seq != -1 || len(m.Bytes) != 0 {
			return fmt.Errorf("%d keys numbered %d in %d bytes", nkeys, seq, len(m.Bytes))
		}
		return nil
	}
	// A sender numbers its lists exactly when the receiver keeps a
	// history (both ends are this code); keyBuf is used only without one,
	// so it never aliases a list held.
	var e *keyList
	switch {
	case h == nil && seq == -1:
	case h == nil || seq != h.n:
		return fmt.Errorf("key list number %d out of sequence", seq)
	default:
		e = h.next()
		keyBuf = e.keys[:0]
	}
	keys, err := decodeKeys(keyBuf, m.Bytes, nkeys, d)
	if e != nil {
		e.keys, e.crc = keys, keysCRC(m.Bytes)
		e.held = err == nil
	}
	if err != nil {
		return err
	}
	g.Keys = keys
	return nil
}

// decodeSupport points g's sparse gradient at the key list its message
// names and the values it carries; a list not held, or one whose length
// or CRC differs from the message's, is an error.
func decodeSupport(m *comm.Msg, g *algo.Grad, h *keyHist) error {
	ref, crc := m.Ints[9], m.Ints[10]
	switch e := h.get(ref); {
	case e == nil:
		return fmt.Errorf("ranks: gradient from rank %d on key list %d, which is not held", m.Src, ref)
	case int64(e.crc) != crc || m.Idx != nil || len(m.Dense) != len(e.keys) || len(e.keys) == 0:
		return fmt.Errorf("ranks: gradient from rank %d on key list %d: %d values, check %#x; the list has %d keys, check %#x",
			m.Src, ref, len(m.Dense), crc, len(e.keys), e.crc)
	default:
		g.Idx, g.Val = e.keys, m.Dense
		return nil
	}
}

// Model message (master -> worker), Ints:
//
//	0 kind  ReplyKind
//	1 t     version of x carried
//	2 base  ReplyDelta: the version the delta applies to
//
// and x as a dense vector, or a sparse one (all nonzeros, the delta, or x on
// the keys the worker asked for: comm's delta-varint indices are the keys).
// A keyed reply on a key list of the worker's history (keyhist.go) has
// three more words,
//
//	3 seq   the list's number
//	4 n     its length
//	5 crc   its CRC-32C
//
// and carries x's values on the list only, as a dense vector of length n.
const (
	modelInts      = 3
	modelKeyedInts = 6
)

// encodeReply fills m from r; a keyed reply whose keys are a list of h
// (the worker's history on the master, nil for none) goes as values only.
func encodeReply(m *comm.Msg, r *algo.Reply, d int, h *keyHist) {
	m.Ints = append(m.Ints[:0], int64(r.Kind), r.T, r.Base)
	m.Dense, m.Idx, m.Vals, m.Dim = nil, nil, nil, 0
	switch r.Kind {
	case algo.ReplyDense, algo.ReplySnapshot:
		m.Dense = r.Dense
	case algo.ReplyKeyed:
		if e := h.find(r.Idx); e != nil {
			m.Ints = append(m.Ints, e.seq, int64(len(e.keys)), int64(e.crc))
			m.Dense = r.Val
			if m.Dense == nil {
				m.Dense = []float64{}
			}
			return
		}
		fallthrough
	case algo.ReplySparse, algo.ReplyDelta:
		m.Idx, m.Vals, m.Dim = r.Idx, r.Val, d
		if m.Idx == nil {
			m.Idx, m.Vals = []int32{}, []float64{}
		}
	}
}

// snapSparse sends an svrg snapshot as its nonzeros when they are few
// (10 bytes each against 8d: with l1 the snapshot is an iterate of a few
// thousand nonzeros, where dense it is 128 MB at d = 2^24, per worker and
// cycle). The master lists them with the sparse step (Reply.Idx, Val);
// otherwise they are found once per snapshot (an O(d) scan) and kept for
// the other workers.
type snapSparse struct {
	t      int64 // the snapshot they are of (-1 none)
	sparse bool  // the snapshot goes sparse
	idx    []int32
	val    []float64
}

// encode fills m with r when r is a snapshot to send sparse and reports
// whether it did; otherwise m is left to encodeReply.
func (s *snapSparse) encode(m *comm.Msg, r *algo.Reply, d int) bool {
	if r.Kind != algo.ReplySnapshot {
		return false
	}
	if r.Idx != nil {
		if 10*len(r.Idx) >= 8*len(r.Dense) {
			return false
		}
		m.Ints = append(m.Ints[:0], int64(r.Kind), r.T, r.Base)
		m.Dense, m.Idx, m.Vals, m.Dim = nil, r.Idx, r.Val, d
		return true
	}
	if s.idx == nil || s.t != r.T {
		s.t, s.idx, s.val = r.T, s.idx[:0], s.val[:0]
		nnz := 0
		for _, v := range r.Dense {
			if v != 0 {
				nnz++
			}
		}
		s.sparse = 10*nnz < 8*len(r.Dense)
		if s.sparse {
			for j, v := range r.Dense {
				if v != 0 {
					s.idx = append(s.idx, int32(j))
					s.val = append(s.val, v)
				}
			}
		}
		if s.idx == nil {
			s.idx = []int32{}
		}
	}
	if !s.sparse {
		return false
	}
	m.Ints = append(m.Ints[:0], int64(r.Kind), r.T, r.Base)
	m.Dense, m.Idx, m.Vals, m.Dim = nil, s.idx, s.val, d
	return true
}

// decodeReply points r into m and h (the worker's history, nil for none:
// a reply on a list of it is then an error).
func decodeReply(m *comm.Msg, r *algo.Reply, d int, h *keyHist) error {
	if len(m.Ints) != modelInts && len(m.Ints) != modelKeyedInts {
		return fmt.Errorf("ranks: model message has %d header words, want %d", len(m.Ints), modelInts)
	}
	*r = algo.Reply{Kind: algo.ReplyKind(m.Ints[0]), T: m.Ints[1], Base: m.Ints[2]}
	k := r.Kind
	switch {
	case len(m.Ints) == modelKeyedInts:
		return decodeKeyedValues(m, r, h)
	case k == algo.ReplyDense || k == algo.ReplySnapshot && m.Dense != nil:
		if len(m.Dense) != d {
			return fmt.Errorf("ranks: dense x of length %d, want %d", len(m.Dense), d)
		}
		r.Dense = m.Dense
	case k == algo.ReplySnapshot || k == algo.ReplySparse || k == algo.ReplyDelta || k == algo.ReplyKeyed:
		// (a snapshot without a dense vector: its nonzeros, snapSparse)
		if m.Idx == nil || m.Dim != d {
			return fmt.Errorf("ranks: sparse x of dimension %d, want %d", m.Dim, d)
		}
		r.Idx, r.Val = m.Idx, m.Vals
	case k == algo.ReplyStop || k == algo.ReplyActivate:
	default:
		return fmt.Errorf("ranks: model message of unknown kind %d", m.Ints[0])
	}
	return nil
}

// decodeKeyedValues pairs the values of a keyed reply with the keys of
// the list of h it names; a kind other than keyed, a list not held, or a
// length or CRC that differs from the list held is an error.
func decodeKeyedValues(m *comm.Msg, r *algo.Reply, h *keyHist) error {
	seq, n, crc := m.Ints[3], m.Ints[4], m.Ints[5]
	switch e := h.get(seq); {
	case r.Kind != algo.ReplyKeyed:
		return fmt.Errorf("ranks: model message of kind %d with a key list", m.Ints[0])
	case e == nil:
		return fmt.Errorf("ranks: keyed x on key list %d, which is not held", seq)
	case int64(len(e.keys)) != n || int64(e.crc) != crc || m.Idx != nil || int64(len(m.Dense)) != n:
		return fmt.Errorf("ranks: keyed x on key list %d: %d values, %d keys, check %#x; the list has %d keys, check %#x",
			seq, len(m.Dense), n, crc, len(e.keys), e.crc)
	default:
		r.Idx, r.Val = e.keys, m.Dense
		return nil
	}
}

// appendKeys appends the delta-varint code of strictly increasing keys to
// dst (see the gradient message): binary.AppendUvarint's bytes, written
// into dst's spare capacity (grown once for 5 bytes a key) with the 1- and
// 2-byte gaps inline, without a branch on their length.
func appendKeys(dst []byte, keys []int32) []byte {
	dst = slices.Grow(dst, binary.MaxVarintLen32*len(keys))
	n := len(dst)
	out := dst[:cap(dst)]
	prev := int64(-1)
	for _, j := range keys {
		gap := uint64(int64(j) - prev - 1)
		prev = int64(j)
		if gap < 1<<14 {
			c := (127 - gap) >> 63 // 1: two bytes
			out[n], out[n+1] = byte(gap)|byte(c<<7), byte(gap>>7)
			n += 1 + int(c)
		} else {
			n += len(binary.AppendUvarint(out[n:n], gap))
		}
	}
	return out[:n]
}

// decodeKeys appends the nkeys keys coded in b (exactly consumed) to dst:
// an error, never a panic, for a short or overlong code, trailing bytes, or
// a key outside [0, d). The result is non-nil (keys present), and strictly
// increasing by construction. Like binary.Uvarint it accepts a padded
// (non-minimal) varint. The 1- and 2-byte codes, most of a text-like key
// list's, are decoded inline without a branch on their length;
// decodeKeysSlow in the tests is the reference.
func decodeKeys(dst []int32, b []byte, nkeys int64, d int) ([]int32, error) {
	if nkeys < 0 || nkeys > int64(len(b)) || nkeys > int64(d) {
		return dst, fmt.Errorf("%d keys in %d bytes (dimension %d)", nkeys, len(b), d)
	}
	if dst == nil {
		dst = make([]int32, 0, nkeys)
	}
	start := len(dst)
	dst = slices.Grow(dst, int(nkeys))
	out := dst[start : start+int(nkeys)]
	prev, i := int64(-1), 0
	for k := range out {
		var gap uint64
		fast := false
		if i+1 < len(b) {
			// c is 1 when the first byte continues; the second must
			// then end the code, else the general path.
			b0, b1 := uint64(b[i]), uint64(b[i+1])
			c := b0 >> 7
			if fast = c&(b1>>7) == 0; fast {
				gap = b0&0x7f | (b1&-c)<<7
				i += 1 + int(c)
			}
		}
		if !fast {
			g, n := binary.Uvarint(b[i:])
			if n <= 0 {
				return dst[:0], fmt.Errorf("bad key code after key %d", prev)
			}
			gap = g
			i += n
		}
		if gap >= uint64(d) {
			return dst[:0], fmt.Errorf("bad key code after key %d", prev)
		}
		j := prev + 1 + int64(gap)
		if j >= int64(d) {
			return dst[:0], fmt.Errorf("key %d outside [0,%d)", j, d)
		}
		out[k] = int32(j)
		prev = j
	}
	if i != len(b) {
		return dst[:0], fmt.Errorf("%d bytes after the %d keys", len(b)-i, nkeys)
	}
	return dst[:start+int(nkeys)], nil
}
