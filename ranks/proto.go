package ranks

import (
	"fmt"
	"math"

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
//
// and the gradient as a dense vector (len d) or a sparse one (Dim d).
const gradInts = 7

// encodeGrad fills m (whose Ints slice is reused) from g.
func encodeGrad(m *comm.Msg, g *algo.Grad, d int) {
	m.Ints = append(m.Ints[:0], g.TRead, int64(g.Rows), int64(math.Float64bits(g.Loss)), g.ComputeNs, g.IdleNs, int64(g.Kind), g.Snap)
	m.Dense, m.Idx, m.Vals, m.Dim = nil, nil, nil, 0
	if g.Dense != nil {
		m.Dense = g.Dense
		return
	}
	m.Idx, m.Vals, m.Dim = g.Idx, g.Val, d
	if m.Idx == nil {
		m.Idx, m.Vals = []int32{}, []float64{}
	}
}

// decodeGrad points g into m (views valid until the next Recv into m).
func decodeGrad(m *comm.Msg, g *algo.Grad, d int) error {
	if len(m.Ints) != gradInts {
		return fmt.Errorf("ranks: gradient message from rank %d has %d header words, want %d", m.Src, len(m.Ints), gradInts)
	}
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
	switch {
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

// Model message (master -> worker), Ints:
//
//	0 kind  ReplyKind
//	1 t     version of x carried
//	2 base  ReplyDelta: the version the delta applies to
//
// and x as a dense vector, or a sparse one (all nonzeros, or the delta).
const modelInts = 3

func encodeReply(m *comm.Msg, r *algo.Reply, d int) {
	m.Ints = append(m.Ints[:0], int64(r.Kind), r.T, r.Base)
	m.Dense, m.Idx, m.Vals, m.Dim = nil, nil, nil, 0
	switch r.Kind {
	case algo.ReplyDense, algo.ReplySnapshot:
		m.Dense = r.Dense
	case algo.ReplySparse, algo.ReplyDelta:
		m.Idx, m.Vals, m.Dim = r.Idx, r.Val, d
		if m.Idx == nil {
			m.Idx, m.Vals = []int32{}, []float64{}
		}
	}
}

func decodeReply(m *comm.Msg, r *algo.Reply, d int) error {
	if len(m.Ints) != modelInts {
		return fmt.Errorf("ranks: model message has %d header words, want %d", len(m.Ints), modelInts)
	}
	*r = algo.Reply{Kind: algo.ReplyKind(m.Ints[0]), T: m.Ints[1], Base: m.Ints[2]}
	switch r.Kind {
	case algo.ReplyDense, algo.ReplySnapshot:
		if len(m.Dense) != d {
			return fmt.Errorf("ranks: dense x of length %d, want %d", len(m.Dense), d)
		}
		r.Dense = m.Dense
	case algo.ReplySparse, algo.ReplyDelta:
		if m.Idx == nil || m.Dim != d {
			return fmt.Errorf("ranks: sparse x of dimension %d, want %d", m.Dim, d)
		}
		r.Idx, r.Val = m.Idx, m.Vals
	case algo.ReplyStop, algo.ReplyActivate:
	default:
		return fmt.Errorf("ranks: model message of unknown kind %d", m.Ints[0])
	}
	return nil
}
