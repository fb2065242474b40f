package comm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

var testSecret = []byte("test-secret-0123456789")

// testConfig is a loopback config for rank r of p sharing store.
func testConfig(r, p int, store Store) Config {
	cfg := DefaultConfig(r, p)
	cfg.JobID = "test-job"
	cfg.Secret = testSecret
	cfg.Store = store
	cfg.Bind = "127.0.0.1"
	cfg.RendezvousTimeout = 20 * time.Second
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.HeartbeatTimeout = 2 * time.Second
	return cfg
}

// startRanks starts p communicators as goroutines of this process over
// loopback and returns them in rank order; they are closed at cleanup.
func startRanks(t testing.TB, p int, tweak func(*Config)) []*Comm {
	t.Helper()
	store := NewMemStore()
	comms := make([]*Comm, p)
	errs := make([]error, p)
	var wg sync.WaitGroup
	for r := range p {
		cfg := testConfig(r, p, store)
		if tweak != nil {
			tweak(&cfg)
		}
		wg.Go(func() { comms[r], errs[r] = New(context.Background(), cfg) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: New: %v", r, err)
		}
	}
	t.Cleanup(func() { closeAll(comms) })
	return comms
}

func closeAll(comms []*Comm) {
	var wg sync.WaitGroup
	for _, c := range comms {
		if c != nil {
			wg.Go(func() { c.Close() })
		}
	}
	wg.Wait()
}

// onAll runs f on every rank concurrently and fails on the first error.
func onAll(t testing.TB, comms []*Comm, f func(c *Comm) error) {
	t.Helper()
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for i, c := range comms {
		wg.Go(func() { errs[i] = f(c) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rankVec is rank r's deterministic test vector of length n.
func rankVec(r, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(r+1)*0.5 + float64(i%97) - float64(i%13)*0.25
	}
	return x
}

func TestCollectives(t *testing.T) {
	for p := 1; p <= 8; p++ {
		t.Run(fmt.Sprintf("P=%d", p), func(t *testing.T) {
			ctx := ctxT(t)
			comms := startRanks(t, p, nil)
			for _, n := range []int{0, 1, 7, 5000, 300_000} {
				// Allreduce sum, max, min.
				for _, op := range []Op{OpSum, OpMax, OpMin} {
					want := rankVec(0, n)
					for r := 1; r < p; r++ {
						reduceInto(op, want, rankVec(r, n))
					}
					onAll(t, comms, func(c *Comm) error {
						x := rankVec(c.Rank(), n)
						if err := c.Allreduce(ctx, x, op); err != nil {
							return err
						}
						return closeTo(x, want, 1e-9, "allreduce")
					})
				}
				root := (p - 1) / 2
				// Bcast.
				onAll(t, comms, func(c *Comm) error {
					x := rankVec(c.Rank(), n)
					if err := c.Bcast(ctx, root, x); err != nil {
						return err
					}
					return closeTo(x, rankVec(root, n), 0, "bcast")
				})
				// Reduce.
				want := rankVec(0, n)
				for r := 1; r < p; r++ {
					reduceInto(OpSum, want, rankVec(r, n))
				}
				onAll(t, comms, func(c *Comm) error {
					x := rankVec(c.Rank(), n)
					if err := c.Reduce(ctx, root, x, OpSum); err != nil {
						return err
					}
					if c.Rank() == root {
						return closeTo(x, want, 1e-9, "reduce")
					}
					return closeTo(x, rankVec(c.Rank(), n), 0, "reduce leaves non-root x")
				})
				// Gather.
				onAll(t, comms, func(c *Comm) error {
					x := rankVec(c.Rank(), n)
					var dst []float64
					if c.Rank() == root {
						dst = make([]float64, p*n)
					}
					if err := c.Gather(ctx, root, x, dst); err != nil {
						return err
					}
					for r := 0; c.Rank() == root && r < p; r++ {
						if err := closeTo(dst[r*n:(r+1)*n], rankVec(r, n), 0, "gather"); err != nil {
							return err
						}
					}
					return nil
				})
			}
			// Barrier: nobody leaves before the last one arrives.
			var mu sync.Mutex
			arrived := 0
			onAll(t, comms, func(c *Comm) error {
				time.Sleep(time.Duration(c.Rank()) * 5 * time.Millisecond)
				mu.Lock()
				arrived++
				mu.Unlock()
				if err := c.Barrier(ctx); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if arrived != p {
					return fmt.Errorf("left the barrier with %d of %d arrived", arrived, p)
				}
				return nil
			})
		})
	}
}

func closeTo(got, want []float64, tol float64, what string) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			return fmt.Errorf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
	return nil
}

// TestPointToPoint sends every kind of message between every pair, also
// through lazily opened links, and checks content and per-pair order.
func TestPointToPoint(t *testing.T) {
	for p := 1; p <= 8; p++ {
		t.Run(fmt.Sprintf("P=%d", p), func(t *testing.T) {
			ctx := ctxT(t)
			comms := startRanks(t, p, nil)
			const rounds = 3
			onAll(t, comms, func(c *Comm) error {
				var wg sync.WaitGroup
				var sendErr error
				wg.Go(func() {
					for k := range rounds {
						for dst := range p {
							if err := c.Send(ctx, dst, 7, testMsg(c.Rank(), dst, k)); err != nil {
								sendErr = err
								return
							}
						}
					}
				})
				var m Msg
				for k := range rounds {
					for src := range p {
						if err := c.Recv(ctx, src, 7, &m); err != nil {
							return err
						}
						if err := sameMsg(&m, testMsg(src, c.Rank(), k)); err != nil {
							return fmt.Errorf("from %d round %d: %v", src, k, err)
						}
					}
				}
				wg.Wait()
				return sendErr
			})
		})
	}
}

// testMsg is a message from src to dst in round k; its kind and size vary
// with k so dense, sparse, compressible and incompressible frames all occur.
func testMsg(src, dst, k int) *Msg {
	m := &Msg{Ints: []int64{int64(src), int64(dst), int64(k), -1 << 40}, Bytes: []byte(fmt.Sprintf("from %d to %d", src, dst))}
	rng := rand.New(rand.NewPCG(uint64(src), uint64(dst*10+k)))
	switch k % 3 {
	case 0:
		m.Dense = make([]float64, 20000)
		for i := range m.Dense {
			m.Dense[i] = float64(i % 10) // compressible
		}
	case 1:
		m.Dim = 100000
		for i := 0; i < m.Dim; i += 1 + rng.IntN(50) {
			m.Idx = append(m.Idx, int32(i))
			m.Vals = append(m.Vals, rng.NormFloat64())
		}
	case 2:
		m.Dense = make([]float64, 3000)
		for i := range m.Dense {
			m.Dense[i] = rng.NormFloat64() // incompressible
		}
	}
	return m
}

func sameMsg(got, want *Msg) error {
	switch {
	case !slices.Equal(got.Ints, want.Ints):
		return fmt.Errorf("ints %v, want %v", got.Ints, want.Ints)
	case !slices.Equal(got.Dense, want.Dense):
		return fmt.Errorf("dense vector differs (len %d, want %d)", len(got.Dense), len(want.Dense))
	case (got.Idx == nil) != (want.Idx == nil) || !slices.Equal(got.Idx, want.Idx) || !slices.Equal(got.Vals, want.Vals) || got.Dim != want.Dim:
		return fmt.Errorf("sparse vector differs")
	case string(got.Bytes) != string(want.Bytes):
		return fmt.Errorf("bytes %q, want %q", got.Bytes, want.Bytes)
	}
	return nil
}

// TestRecvAny: the master takes gradients in arrival order from whichever
// worker sent first.
func TestRecvAny(t *testing.T) {
	ctx := ctxT(t)
	const p, per = 5, 50
	comms := startRanks(t, p, nil)
	onAll(t, comms, func(c *Comm) error {
		if c.Rank() != 0 {
			for k := range per {
				m := &Msg{Ints: []int64{int64(k)}, Dense: rankVec(c.Rank(), 10)}
				if err := c.Send(ctx, 0, 1, m); err != nil {
					return err
				}
			}
			return nil
		}
		next := make([]int64, p)
		var m Msg
		for range (p - 1) * per {
			src, err := c.RecvAny(ctx, 1, &m)
			if err != nil {
				return err
			}
			if src != m.Src || m.Ints[0] != next[src] {
				return fmt.Errorf("from %d got seq %d, want %d", src, m.Ints[0], next[src])
			}
			next[src]++
			if err := closeTo(m.Dense, rankVec(src, 10), 0, "recvany"); err != nil {
				return err
			}
		}
		return nil
	})
	st := comms[0].Stats()
	var msgs uint64
	for _, ps := range st.Peers {
		msgs += ps.RecvMsgs
	}
	if msgs < (p-1)*per {
		t.Errorf("stats count %d received messages, want >= %d", msgs, (p-1)*per)
	}
}

func TestRecvCancel(t *testing.T) {
	comms := startRanks(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var m Msg
	err := comms[0].Recv(ctx, 1, 3, &m)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv with nothing sent: %v, want deadline exceeded", err)
	}
	// A message sent after the cancelled wait is still delivered.
	if err := comms[1].Send(context.Background(), 0, 3, &Msg{Ints: []int64{42}}); err != nil {
		t.Fatal(err)
	}
	if err := comms[0].Recv(ctxT(t), 1, 3, &m); err != nil || m.Ints[0] != 42 {
		t.Fatalf("Recv after cancel: %v %v", err, m.Ints)
	}
}

// TestStats: counters see the traffic, compression shows in the ratio,
// and latency percentiles are filled in.
func TestStats(t *testing.T) {
	comms := startRanks(t, 2, func(c *Config) { c.CompressLocal = true })
	ctx := ctxT(t)
	x := make([]float64, 50000) // zeros: compressible
	for range 10 {
		if err := comms[0].Send(ctx, 1, 1, &Msg{Dense: x}); err != nil {
			t.Fatal(err)
		}
	}
	var m Msg
	for range 10 {
		if err := comms[1].Recv(ctx, 0, 1, &m); err != nil {
			t.Fatal(err)
		}
	}
	s0, s1 := comms[0].Stats().Peers[0], comms[1].Stats().Peers[0]
	// +1: the table of ranks sent at the rendezvous.
	if s0.Rank != 1 || s1.Rank != 0 || s0.SentMsgs != 11 || s1.RecvMsgs != 11 {
		t.Fatalf("stats: %+v / %+v", s0, s1)
	}
	if s0.SentRaw < 10*8*50000 || s0.SentWire != s1.RecvWire || s0.SentRaw != s1.RecvRaw {
		t.Fatalf("byte counts disagree: %+v / %+v", s0, s1)
	}
	if s0.Ratio() < 10 || s0.SendP50 <= 0 || s0.SendP99 < s0.SendP50 || s1.RecvP99 <= 0 {
		t.Fatalf("ratio %.1f, send p50 %v p99 %v, recv p99 %v", s0.Ratio(), s0.SendP50, s0.SendP99, s1.RecvP99)
	}
}

// TestCollectivesDoNotAllocate: after warm-up, Allreduce, Bcast and
// Barrier calls of a fixed size allocate nothing on either rank (the
// receive buffers and scratch live in the communicator), and neither do
// Send and Recv of a reused Msg.
func TestCollectivesDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates: allocation counts are meaningless")
	}
	comms := startRanks(t, 2, nil)
	ctx := ctxT(t)
	xs := [][]float64{rankVec(0, 200_000), rankVec(1, 200_000)}
	small := [][]float64{rankVec(0, 100), rankVec(1, 100)}
	round := func(c *Comm) error {
		r := c.Rank()
		if err := c.Allreduce(ctx, xs[r], OpMax); err != nil {
			return err
		}
		if err := c.Allreduce(ctx, small[r], OpMax); err != nil {
			return err
		}
		if err := c.Bcast(ctx, 0, xs[r]); err != nil {
			return err
		}
		return c.Barrier(ctx)
	}
	const rounds = 50
	done := make(chan error, 1)
	start := make(chan struct{})
	go func() {
		<-start
		var err error
		for range 2 * rounds {
			if err = round(comms[1]); err != nil {
				break
			}
		}
		done <- err
	}()
	close(start)
	for range rounds { // warm-up
		if err := round(comms[0]); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		if err := round(comms[0]); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Both ranks run in this process; allow a few incidental runtime
	// allocations (timers, goroutine stacks) over the whole loop.
	n := after.Mallocs - before.Mallocs
	t.Logf("%d allocations in %d rounds", n, rounds)
	if n > rounds/5 {
		t.Fatalf("%d allocations in %d rounds of 4 collectives on 2 ranks", n, rounds)
	}
}

// TestLocalLinkSkipsCompression: on loopback frames go raw, however well
// they compress, unless CompressLocal is set.
func TestLocalLinkSkipsCompression(t *testing.T) {
	x := make([]float64, 4000) // zeros, 32 KB: below the link-measuring size
	for _, local := range []bool{false, true} {
		comms := startRanks(t, 2, func(c *Config) { c.CompressLocal = local })
		ctx := ctxT(t)
		var m Msg
		for range 50 {
			if err := comms[0].Send(ctx, 1, 1, &Msg{Dense: x}); err != nil {
				t.Fatal(err)
			}
			if err := comms[1].Recv(ctx, 0, 1, &m); err != nil {
				t.Fatal(err)
			}
		}
		r := comms[0].Stats().Peers[0].Ratio()
		if !local && r > 1.01 || local && r < 10 {
			t.Errorf("CompressLocal %v: raw/wire ratio %.2f over loopback, want %s", local, r, map[bool]string{false: "1 (raw)", true: ">= 10"}[local])
		}
	}
}
