package comm

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram is a cheap fixed latency histogram: bucket 4*e+s holds
// durations in [2^e, 2^(e+1)) ns, split into 4 equal sub-buckets s. It is
// safe for concurrent use and never allocates.
type histogram struct {
	counts [64 * 4]atomic.Uint64
}

func histBucket(ns int64) int {
	if ns < 1 {
		ns = 1
	}
	e := bits.Len64(uint64(ns)) - 1
	var s int
	if e >= 2 {
		s = int(uint64(ns)>>(e-2)) & 3
	}
	return 4*e + s
}

func (h *histogram) observe(d time.Duration) { h.counts[histBucket(int64(d))].Add(1) }

// quantile returns the upper bound of the bucket holding quantile q in
// [0,1], or 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	var total uint64
	var c [64 * 4]uint64
	for i := range h.counts {
		c[i] = h.counts[i].Load()
		total += c[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total-1)) + 1
	var cum uint64
	for i, n := range c {
		cum += n
		if cum >= rank {
			e, s := i/4, i%4
			if e < 2 {
				return time.Duration(1) << (e + 1)
			}
			lo := uint64(1) << e
			return time.Duration(lo + (lo/4)*uint64(s+1))
		}
	}
	return 0
}

// peerCounters are one peer's counters, updated with atomics.
type peerCounters struct {
	sentMsgs, recvMsgs atomic.Uint64
	sentWire, sentRaw  atomic.Uint64
	recvWire, recvRaw  atomic.Uint64
	sendLat, recvLat   histogram
}

// PeerStats is a snapshot of the traffic with one peer. Byte counts include
// the 40-byte frame headers; Raw counts are before compression.
type PeerStats struct {
	Rank               int
	SentMsgs, RecvMsgs uint64
	SentWire, SentRaw  uint64
	RecvWire, RecvRaw  uint64
	// SendP50 and SendP99 are percentiles of the time Send took (encode,
	// compress, write); RecvP50 and RecvP99 of the time Recv/RecvAny
	// waited plus decoded. Resolution is a quarter power of two.
	SendP50, SendP99 time.Duration
	RecvP50, RecvP99 time.Duration
}

// Ratio is raw bytes over wire bytes in both directions (1 without
// compression, larger when compression helps).
func (s PeerStats) Ratio() float64 {
	w := s.SentWire + s.RecvWire
	if w == 0 {
		return 1
	}
	return float64(s.SentRaw+s.RecvRaw) / float64(w)
}

func (pc *peerCounters) snapshot(rank int) PeerStats {
	return PeerStats{
		Rank:     rank,
		SentMsgs: pc.sentMsgs.Load(), RecvMsgs: pc.recvMsgs.Load(),
		SentWire: pc.sentWire.Load(), SentRaw: pc.sentRaw.Load(),
		RecvWire: pc.recvWire.Load(), RecvRaw: pc.recvRaw.Load(),
		SendP50: pc.sendLat.quantile(0.5), SendP99: pc.sendLat.quantile(0.99),
		RecvP50: pc.recvLat.quantile(0.5), RecvP99: pc.recvLat.quantile(0.99),
	}
}

// Stats is a snapshot of a communicator's counters.
type Stats struct {
	Peers []PeerStats // one per rank other than ours, in rank order
	// Refused counts incoming connections whose handshake was refused
	// (wrong secret, version, job, size or rank); Garbage those that never
	// spoke a well-formed handshake (random bytes, silence past the
	// handshake timeout, a connection dropped half-way).
	Refused, Garbage uint64
}

// Stats returns a snapshot of the counters. It is safe to call at any time,
// from any goroutine, also after Close.
func (c *Comm) Stats() Stats {
	var s Stats
	for _, p := range c.peers {
		if p != nil {
			s.Peers = append(s.Peers, p.ctr.snapshot(p.rank))
		}
	}
	s.Refused, s.Garbage = c.refused.Load(), c.garbage.Load()
	return s
}
