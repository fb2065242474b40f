package ranks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
)

// Late join: a worker that left (died, was lost, was stopped) can be
// started again with --join while the run goes on. Its communicator joins
// rank 0 only (comm.Config.Rejoin; rank 0 readmits a rank it has
// forgotten); the protocol:
//
//	join (joiner -> master, tagGrad): Ints {joinNotice}
//	facts (master -> joiner, tagSetup): the problem facts of the setup
//	  (status, d without bias, n, has a label map; Dense {neg, pos}); a
//	  status of 0 refuses the join (Bytes say why)
//	then the joiner reads its shard and waits for x on tagModel like any
//	worker; the master sends it the current x as soon as its mode allows.
//
// The joiner takes back its own shard's share of the data from the worker
// that adopted it (which goes on sampling that shard as well: its rows are
// then a little over-represented). A joiner answers the evaluation for its
// shard point-to-point (some worker has left, so the evaluation is
// point-to-point).
const joinNotice = -3

// JoinedWorker is a worker that joined the running job.
type JoinedWorker struct {
	Rank   int     `json:"rank"`
	T      int64   `json:"t"`
	TrainS float64 `json:"train_s"`
	// Grads counts the gradients of it applied after it joined.
	Grads  int64 `json:"grads"`
	grads0 int64
}

func isJoinNotice(m *comm.Msg) bool { return len(m.Ints) == 1 && m.Ints[0] == joinNotice }

// join handles worker w's join request on the master.
func (r *masterRun) join(ctx context.Context, w int, f *facts, out *comm.Msg) error {
	reply := setupReply(f)
	if !r.m.Gone(w) {
		reply.Ints[0], reply.Bytes = 0, []byte("it has not left the run")
		return r.c.Send(ctx, w, tagSetup, &reply)
	}
	if err := r.c.Send(ctx, w, tagSetup, &reply); err != nil {
		if _, ok := r.departed(err); ok {
			r.c.Forget(w)
			return nil
		}
		return err
	}
	from := 0
	for h := 1; h < len(r.held); h++ {
		for i, k := range r.held[h] {
			if k == w && h != w {
				from = h
				r.held[h] = append(r.held[h][:i:i], r.held[h][i+1:]...)
				break
			}
		}
	}
	r.held[w] = []int{w}
	r.keys[w].reset() // a new process: its key lists are numbered afresh
	if from > 0 {
		r.rowsNow[from] -= f.rows[w]
	}
	r.rowsNow[w] = f.rows[w]
	rd, err := r.m.Step(algo.Event{Kind: algo.EventJoin, Now: r.now(), Worker: w, From: from})
	if err != nil {
		return err
	}
	st := r.m.Stats()
	r.joined = append(r.joined, JoinedWorker{Rank: w, T: r.m.T(), TrainS: time.Since(r.start).Seconds(), grads0: st.Workers[w].Grads})
	r.note("worker %d joined at t=%d; %d of %d workers in the run", w, r.m.T(), r.m.Active(), r.c.Size()-1)
	if err := r.sendReady(ctx, rd, out); err != nil {
		return err
	}
	if rd.Snapshot {
		return r.snapshot()
	}
	return nil
}

// joinedSummary fills in the gradients each joiner contributed.
func (r *masterRun) joinedSummary() []JoinedWorker {
	st := r.m.Stats()
	out := make([]JoinedWorker, len(r.joined))
	for i, j := range r.joined {
		j.Grads = st.Workers[j.Rank].Grads - j.grads0
		out[i] = j
	}
	return out
}

// runJoiner is a worker that joins a running job (Config.Join).
func runJoiner(interrupt context.Context, c *comm.Comm, cfg *Config) error {
	ctx := context.WithoutCancel(interrupt)
	if err := c.Send(ctx, 0, tagGrad, &comm.Msg{Ints: []int64{joinNotice}}); err != nil {
		return phase("setup", err)
	}
	var r comm.Msg
	if err := c.Recv(ctx, 0, tagSetup, &r); err != nil {
		return phase("setup", err)
	}
	sf, err := parseSetupReply(&r)
	if err != nil {
		return phase("setup", err)
	}
	ds, err := workerData(cfg, c.Rank(), c.Size()-1)
	if err != nil {
		return phase("setup", err)
	}
	s, err := newShard(cfg, ds, sf)
	if err != nil {
		return phase("setup", err)
	}
	return workerRun(ctx, interrupt, c, cfg, s, !cfg.Replicate || c.Rank() == 1)
}

// faultsTable adds the summary table's line about faults, if any.
func (s *Summary) faultsTable(p func(k, format string, args ...any)) {
	var parts []string
	for _, l := range s.LostWorkers {
		parts = append(parts, fmt.Sprintf("worker %d left at t=%d (%.2f s, %s)", l.Rank, l.T, l.TrainS, l.Phase))
	}
	for _, j := range s.JoinedWorkers {
		parts = append(parts, fmt.Sprintf("worker %d joined at t=%d (%d gradients since)", j.Rank, j.T, j.Grads))
	}
	if n := s.Master.RefusedGrads; n > 0 {
		parts = append(parts, fmt.Sprintf("%d gradients refused (%s)", n, s.Master.LastRefusal))
	}
	if n := s.Comm.RefusedConns + s.Comm.GarbageConns; n > 0 {
		parts = append(parts, fmt.Sprintf("%d connections refused, %d garbage", s.Comm.RefusedConns, s.Comm.GarbageConns))
	}
	if len(parts) > 0 {
		p("faults", "%s", strings.Join(parts, "; "))
	}
	if s.Status != "" && s.Status != StatusComplete {
		p("status", "%s: the model is model.partial", s.Status)
	}
}
