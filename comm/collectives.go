package comm

import (
	"context"
	"fmt"
	"math"
)

// Op is a reduction operator for Reduce and Allreduce.
type Op uint8

// The reduction operators.
const (
	OpSum Op = iota
	OpMax
	OpMin
)

// reduceInto does dst[i] = op(dst[i], src[i]); len(src) >= len(dst).
//
// Reference loop (OpSum): for i := range dst { dst[i] += src[i] }
func reduceInto(op Op, dst, src []float64) {
	src = src[:len(dst)]
	switch op {
	case OpSum:
		for i, v := range src {
			dst[i] += v
		}
	case OpMax:
		for i, v := range src {
			dst[i] = math.Max(dst[i], v)
		}
	case OpMin:
		for i, v := range src {
			dst[i] = math.Min(dst[i], v)
		}
	default:
		panic("comm: unknown reduction Op")
	}
}

// Algorithm thresholds: messages up to smallBytes use binomial trees;
// larger Bcasts are pipelined along a chain in segments of segFloats (2 MiB:
// on loopback, smaller segments cost more in system calls and wake-ups than
// they gain in pipelining), and
// larger Allreduces use a ring (reduce-scatter then allgather).
const (
	smallBytes = 64 << 10
	segFloats  = 256 << 10
)

// collState is the scratch of the collectives: one receive Msg and one
// accumulation buffer, grown to the largest size seen and then reused, so
// collectives of a fixed size do not allocate per call.
type collState struct {
	c   *Comm
	m   Msg
	acc []float64
	out Msg
}

func (s *collState) init(c *Comm) { s.c = c }

func (s *collState) accBuf(n int) []float64 {
	if cap(s.acc) < n {
		s.acc = make([]float64, n)
	}
	return s.acc[:n]
}

func (s *collState) send(ctx context.Context, dst, tag int, x []float64) error {
	s.out.Dense = x
	err := s.c.send(ctx, dst, tag, &s.out)
	s.out.Dense = nil
	return err
}

// recv receives a dense vector of exactly n values.
func (s *collState) recv(ctx context.Context, src, tag, n int, op string) ([]float64, error) {
	if err := s.c.Recv(ctx, src, tag, &s.m); err != nil {
		return nil, err
	}
	if len(s.m.Dense) != n {
		return nil, &OpError{Op: op, Rank: s.c.cfg.Rank, Peer: src, Err: fmt.Errorf("comm: %s: rank %d sent %d values, want %d (ranks disagree on the length)", op, src, len(s.m.Dense), n)}
	}
	return s.m.Dense, nil
}

// Barrier returns once every rank has entered it (dissemination barrier,
// ceil(log2 P) rounds).
func (c *Comm) Barrier(ctx context.Context) error {
	s := &c.coll
	p, r := c.cfg.Size, c.cfg.Rank
	for k := 1; k < p; k *= 2 {
		if err := s.send(ctx, (r+k)%p, tagBarrier, nil); err != nil {
			return err
		}
		if err := c.Recv(ctx, (r-k+p)%p, tagBarrier, &s.m); err != nil {
			return err
		}
	}
	s.m.Release()
	return nil
}

// Bcast copies root's x into x on every rank; all ranks pass slices of the
// same length. Small vectors go down a binomial tree, large ones along a
// pipelined chain.
func (c *Comm) Bcast(ctx context.Context, root int, x []float64) error {
	c.checkRoot(root)
	if c.cfg.Size == 1 {
		return nil
	}
	if 8*len(x) <= smallBytes {
		return c.bcastTree(ctx, root, x, tagBcast)
	}
	return c.bcastChain(ctx, root, x)
}

func (c *Comm) checkRoot(root int) {
	if root < 0 || root >= c.cfg.Size {
		panic("comm: root outside [0, Size)")
	}
}

// bcastTree: relative rank v = (rank-root) mod P receives from v - lowbit(v)
// and sends to v + 2^k for the powers of two below lowbit(v).
func (c *Comm) bcastTree(ctx context.Context, root int, x []float64, tag int) error {
	s := &c.coll
	p := c.cfg.Size
	v := (c.cfg.Rank - root + p) % p
	mask := 1
	for mask < p {
		if v&mask != 0 {
			got, err := s.recv(ctx, (v-mask+root)%p, tag, len(x), "bcast")
			if err != nil {
				return err
			}
			copy(x, got)
			break
		}
		mask <<= 1
	}
	for mask >>= 1; mask > 0; mask >>= 1 {
		if v+mask < p {
			if err := s.send(ctx, (v+mask+root)%p, tag, x); err != nil {
				return err
			}
		}
	}
	s.m.Release()
	return nil
}

// bcastChain forwards segments along root -> root+1 -> ... so that every
// link carries the vector once and the ranks work in a pipeline (also for
// two ranks: the receiver copies segment k while k+1 is on the wire). A
// received segment is forwarded from the receive buffer, still in cache,
// before it is copied into x.
func (c *Comm) bcastChain(ctx context.Context, root int, x []float64) error {
	s := &c.coll
	p := c.cfg.Size
	v := (c.cfg.Rank - root + p) % p
	prev, next := (c.cfg.Rank-1+p)%p, (c.cfg.Rank+1)%p
	for lo := 0; lo < len(x); lo += segFloats {
		seg := x[lo:min(lo+segFloats, len(x))]
		out := seg
		if v > 0 {
			got, err := s.recv(ctx, prev, tagBcast, len(seg), "bcast")
			if err != nil {
				return err
			}
			out = got
		}
		if v < p-1 {
			if err := s.send(ctx, next, tagBcast, out); err != nil {
				return err
			}
		}
		if v > 0 {
			copy(seg, out)
		}
	}
	s.m.Release()
	return nil
}

// Reduce combines x of every rank with op into root's x (binomial tree);
// other ranks' x are left unchanged.
func (c *Comm) Reduce(ctx context.Context, root int, x []float64, op Op) error {
	c.checkRoot(root)
	acc := x
	if c.cfg.Rank != root {
		acc = c.coll.accBuf(len(x))
		copy(acc, x)
	}
	return c.reduceTree(ctx, root, acc, op, tagReduce)
}

// reduceTree reduces acc of every rank into root's acc; other ranks' acc
// are clobbered.
func (c *Comm) reduceTree(ctx context.Context, root int, acc []float64, op Op, tag int) error {
	s := &c.coll
	p := c.cfg.Size
	v := (c.cfg.Rank - root + p) % p
	for mask := 1; mask < p; mask <<= 1 {
		if v&mask != 0 {
			if err := s.send(ctx, (v-mask+root)%p, tag, acc); err != nil {
				return err
			}
			break
		}
		if v+mask < p {
			got, err := s.recv(ctx, (v+mask+root)%p, tag, len(acc), "reduce")
			if err != nil {
				return err
			}
			reduceInto(op, acc, got)
		}
	}
	s.m.Release()
	return nil
}

// Allreduce replaces x on every rank by the op-combination of all ranks' x
// (same length everywhere). Small vectors: binomial reduce to rank 0, then
// binomial broadcast; large ones: ring reduce-scatter then ring allgather,
// which moves 2(P-1)/P of the vector per rank.
func (c *Comm) Allreduce(ctx context.Context, x []float64, op Op) error {
	p := c.cfg.Size
	if p == 1 {
		return nil
	}
	if 8*len(x) <= smallBytes || len(x) < p {
		if err := c.reduceTree(ctx, 0, x, op, tagAllreduce); err != nil {
			return err
		}
		return c.bcastTree(ctx, 0, x, tagAllreduce)
	}
	return c.allreduceRing(ctx, x, op)
}

func (c *Comm) allreduceRing(ctx context.Context, x []float64, op Op) error {
	s := &c.coll
	p, r := c.cfg.Size, c.cfg.Rank
	left, right := (r-1+p)%p, (r+1)%p
	chunk := func(i int) []float64 {
		i = ((i % p) + p) % p
		return x[i*len(x)/p : (i+1)*len(x)/p]
	}
	// Reduce-scatter: after step s rank r holds the sum of s+2 ranks'
	// values of chunk r-s-1; after P-1 steps it owns chunk r+1 in full.
	for st := 0; st < p-1; st++ {
		if err := s.send(ctx, right, tagAllreduce, chunk(r-st)); err != nil {
			return err
		}
		dst := chunk(r - st - 1)
		got, err := s.recv(ctx, left, tagAllreduce, len(dst), "allreduce")
		if err != nil {
			return err
		}
		reduceInto(op, dst, got)
	}
	// Allgather: pass the finished chunks around the ring.
	for st := 0; st < p-1; st++ {
		if err := s.send(ctx, right, tagAllreduce, chunk(r+1-st)); err != nil {
			return err
		}
		dst := chunk(r - st)
		got, err := s.recv(ctx, left, tagAllreduce, len(dst), "allreduce")
		if err != nil {
			return err
		}
		copy(dst, got)
	}
	s.m.Release()
	return nil
}

// Gather collects x (same length on every rank) into root's dst, rank r's
// values at dst[r*len(x):(r+1)*len(x)]; dst is ignored on other ranks and
// must have room for Size*len(x) values on root (else Gather panics).
func (c *Comm) Gather(ctx context.Context, root int, x, dst []float64) error {
	c.checkRoot(root)
	s := &c.coll
	n := len(x)
	if c.cfg.Rank != root {
		return s.send(ctx, root, tagGather, x)
	}
	if len(dst) < c.cfg.Size*n {
		panic("comm: Gather: dst shorter than Size*len(x)")
	}
	for r := range c.cfg.Size {
		if r == root {
			copy(dst[r*n:(r+1)*n], x)
			continue
		}
		got, err := s.recv(ctx, r, tagGather, n, "gather")
		if err != nil {
			return err
		}
		copy(dst[r*n:(r+1)*n], got)
	}
	s.m.Release()
	return nil
}
