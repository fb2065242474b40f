package ranks

import (
	"context"
	"fmt"

	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/kernels"
)

// Adopting a lost shard: with sharded data, a worker's departure would
// take its rows out of the rest of the run (the others would minimize the
// objective of their shards only: on a9a with 1 of 3 shards lost, relative
// suboptimality 1.9e-3 where 1e-3 is reached without the loss). So the
// master hands the lost shard to the remaining worker with the fewest rows
// (the heir): it reads that byte range too and samples the union of both.
// The heir keeps answering the evaluation for its own shard only (the
// master reads the lost one itself), so no row is counted twice.
//
//	adopt (master -> heir, tagAdopt): Ints {k1, k2, ...}: read the shards
//	  of workers k1, k2, ... (those the departed worker sampled: its own
//	  and any it had adopted) and sample them with your own from your next
//	  gradient on
//
// The master moves the departed worker's share of the data to the heir at
// once (Master.Adopt); until the heir has read the shards (a fraction of a
// second on a9a) its gradients are weighted a little too much.
const tagAdopt = 5

// heirFor picks the worker that adopts w's shard: the remaining worker
// with the fewest rows (lowest rank on ties), or 0 if none.
func (r *masterRun) heirFor() int {
	heir := 0
	for h := 1; h < r.c.Size(); h++ {
		if !r.m.Gone(h) && (heir == 0 || r.rowsNow[h] < r.rowsNow[heir]) {
			heir = h
		}
	}
	return heir
}

// handOver asks a remaining worker to adopt the shards worker w sampled.
func (r *masterRun) handOver(ctx context.Context, w int) error {
	if r.cfg.Replicate || r.m.Active() == 0 || len(r.held[w]) == 0 {
		return nil
	}
	heir := r.heirFor()
	if heir == 0 {
		return nil
	}
	shards := r.held[w]
	msg := comm.Msg{Ints: make([]int64, len(shards))}
	for i, k := range shards {
		msg.Ints[i] = int64(k)
	}
	if err := r.c.Send(ctx, heir, tagAdopt, &msg); err != nil {
		return nil // the heir is gone too; its own departure is noticed next
	}
	if err := r.m.Adopt(heir, w); err != nil {
		return err
	}
	r.held[heir] = append(r.held[heir], shards...)
	r.held[w] = nil
	r.rowsNow[heir] += r.rowsNow[w]
	r.rowsNow[w] = 0
	r.note("worker %d adopts the shards of workers %v", heir, shards)
	return nil
}

// adopter is the worker's side: a goroutine waits for an adopt message,
// reads the shard and hands the union over.
type adopter struct {
	ready chan adoption
}

type adoption struct {
	s    *shard // the worker's rows and the adopted ones
	from int
	err  error
}

// startAdopter waits (until ctx ends) for the master to hand this worker
// a lost shard, and prepares the union of own and adopted rows.
func startAdopter(ctx context.Context, c *comm.Comm, cfg *Config, s *shard) *adopter {
	a := &adopter{ready: make(chan adoption, 1)}
	go func() {
		cur := s
		for {
			var m comm.Msg
			if err := c.Recv(ctx, 0, tagAdopt, &m); err != nil {
				return
			}
			for _, k := range m.Ints {
				w := int(k)
				if w < 1 || w >= c.Size() {
					a.ready <- adoption{err: fmt.Errorf("ranks: asked to adopt the shard of worker %d", w)}
					return
				}
				ds, err := workerData(cfg, w, c.Size()-1)
				var lost *shard
				if err == nil {
					lost, err = newShard(cfg, ds, s.facts)
				}
				if err != nil {
					a.ready <- adoption{err: fmt.Errorf("ranks: adopting worker %d's shard: %w", w, err)}
					return
				}
				cur = &shard{a: appendRows(cur.a, lost.a), y: append(append([]float64(nil), cur.y...), lost.y...),
					d: s.d, mc: s.mc, n: s.n, facts: s.facts}
			}
			select {
			case <-a.ready: // an adoption not yet taken: this one includes it
			default:
			}
			a.ready <- adoption{s: cur, from: int(m.Ints[0])}
		}
	}()
	return a
}

// appendRows returns the rows of a followed by those of b (same Cols).
func appendRows(a, b *kernels.CSR) *kernels.CSR {
	out := &kernels.CSR{Rows: a.Rows + b.Rows, Cols: a.Cols,
		Indptr:  make([]int64, 0, a.Rows+b.Rows+1),
		Indices: append(append(make([]int32, 0, a.NNZ()+b.NNZ()), a.Indices[:a.NNZ()]...), b.Indices[:b.NNZ()]...),
		Data:    append(append(make([]float64, 0, a.NNZ()+b.NNZ()), a.Data[:a.NNZ()]...), b.Data[:b.NNZ()]...),
	}
	out.Indptr = append(out.Indptr, a.Indptr[:a.Rows+1]...)
	base := a.Indptr[a.Rows]
	for _, p := range b.Indptr[1 : b.Rows+1] {
		out.Indptr = append(out.Indptr, base+p)
	}
	return out
}
