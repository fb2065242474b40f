package algo

import (
	"slices"
)

// delayBuckets is the number of exact delay buckets; larger delays share the
// last bucket (their maximum is kept exactly).
const delayBuckets = 1024

// MasterStats are the master's counters, all in logical units (updates,
// rows, nanoseconds reported by the workers). The driver adds wall-clock
// figures of its own.
type MasterStats struct {
	Updates int64
	Grads   int64 // gradients received (in sync mode, P per update)
	// SparseGrads counts the gradients that arrived as sparse vectors.
	SparseGrads int64
	Barriers    int64
	// Unstalls counts the replies the bounded mode sent beyond its delay
	// bound because every gradient in flight waited for one (pipelining
	// with a MaxDelay too small for it).
	Unstalls int64
	// DelayHist[k] counts applied gradients of delay k (the last bucket
	// counts every delay >= delayBuckets-1).
	DelayHist []int64
	DelaySum  int64
	DelayMax  int64
	// Replies by kind, and the sparse/delta entries they carried.
	RepliesDense, RepliesSparse, RepliesDelta int64
	RepliesKeyed                              int64 // x on a worker's keys (keyed.go)
	ReplyEntries                              int64
	// LossEMA is an exponential moving average of the mini-batch losses
	// (weight 1/100 per gradient): a cheap running estimate of f.
	LossEMA float64
	// RefusedGrads counts gradients refused and never applied (NaN or
	// Inf, wrong length, bad indices or rows); LastRefusal says why the
	// last one was.
	RefusedGrads int64
	LastRefusal  string
	Workers      []WorkerStats // index 0 unused; 1..P
}

// WorkerStats are one worker's counters as seen by the master.
type WorkerStats struct {
	Grads     int64
	Rows      int64
	DelaySum  int64
	DelayMax  int64
	ComputeNs int64
	IdleNs    int64
}

// MeanDelay is the mean delay of the applied gradients.
func (s *MasterStats) MeanDelay() float64 {
	if s.Grads == 0 {
		return 0
	}
	return float64(s.DelaySum) / float64(s.Grads)
}

// DelayQuantile returns the smallest delay k with at least q of the
// gradients at or below it (q in [0, 1]).
func (s *MasterStats) DelayQuantile(q float64) int64 {
	var n int64
	for _, c := range s.DelayHist {
		n += c
	}
	if n == 0 {
		return 0
	}
	need := int64(q * float64(n))
	if need < 1 {
		need = 1
	}
	var acc int64
	for k, c := range s.DelayHist {
		acc += c
		if acc >= need {
			if k == len(s.DelayHist)-1 {
				return s.DelayMax
			}
			return int64(k)
		}
	}
	return s.DelayMax
}

func (s *MasterStats) init(workers int) {
	s.DelayHist = make([]int64, delayBuckets)
	s.Workers = make([]WorkerStats, workers+1)
}

func (s *MasterStats) observe(g *Grad, delay int64) {
	b := min(delay, delayBuckets-1)
	s.DelayHist[b]++
	s.DelaySum += delay
	s.DelayMax = max(s.DelayMax, delay)
	w := &s.Workers[g.Worker]
	w.Grads++
	w.Rows += int64(g.Rows)
	w.DelaySum += delay
	w.DelayMax = max(w.DelayMax, delay)
	w.ComputeNs += g.ComputeNs
	w.IdleNs += g.IdleNs
	s.Grads++
	if g.Dense == nil {
		s.SparseGrads++
	}
	if s.Grads == 1 {
		s.LossEMA = g.Loss
	} else {
		s.LossEMA += (g.Loss - s.LossEMA) / 100
	}
}

func (s *MasterStats) countReply(k ReplyKind, entries int) {
	switch k {
	case ReplyDense:
		s.RepliesDense++
	case ReplySparse:
		s.RepliesSparse++
	case ReplyDelta:
		s.RepliesDelta++
	case ReplyKeyed:
		s.RepliesKeyed++
	}
	s.ReplyEntries += int64(entries)
}

func (s *MasterStats) clone() MasterStats {
	c := *s
	c.DelayHist = slices.Clone(s.DelayHist)
	c.Workers = slices.Clone(s.Workers)
	return c
}
