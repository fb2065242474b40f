package comm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// noiseVec is rank r's vector of n normal values: incompressible, so that
// large collectives go uncompressed and their receives are placed.
func noiseVec(r, n int) []float64 {
	rng := rand.New(rand.NewPCG(uint64(r), 7))
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// TestPlacedCollectives: collectives whose messages the links' readers
// place straight into the caller's vectors (copied, or reduced piece by
// piece) give exact results, also when messages travel as fragments, and
// the placing path is taken.
func TestPlacedCollectives(t *testing.T) {
	for _, tc := range []struct {
		p, n, frag int
	}{
		{2, 100_000, 0},
		{3, 100_001, 0},
		{4, 1 << 20, 0},
		{5, 200_003, 100_000}, // fragments of 100 kB, not float-aligned
	} {
		t.Run(fmt.Sprintf("P=%d,n=%d,frag=%d", tc.p, tc.n, tc.frag), func(t *testing.T) {
			if tc.frag > 0 {
				defer func(old int) { fragSize = old }(fragSize)
				fragSize = tc.frag
			}
			ctx := ctxT(t)
			comms := startRanks(t, tc.p, func(c *Config) { c.Codec = CodecNone })
			for _, op := range []Op{OpSum, OpMax} {
				// The ring adds in another order on each rank: compute
				// the wanted sum in that order, chunk by chunk.
				onAll(t, comms, func(c *Comm) error {
					x := noiseVec(c.Rank(), tc.n)
					if err := c.Allreduce(ctx, x, op); err != nil {
						return err
					}
					return closeTo(x, ringWant(tc.p, tc.n, op), 0, "allreduce")
				})
			}
			root := tc.p - 1
			onAll(t, comms, func(c *Comm) error {
				x := noiseVec(c.Rank(), tc.n)
				if err := c.Bcast(ctx, root, x); err != nil {
					return err
				}
				return closeTo(x, noiseVec(root, tc.n), 0, "bcast")
			})
			onAll(t, comms, func(c *Comm) error {
				x := noiseVec(c.Rank(), tc.n)
				var dst []float64
				if c.Rank() == root {
					dst = make([]float64, tc.p*tc.n)
				}
				if err := c.Gather(ctx, root, x, dst); err != nil || c.Rank() != root {
					return err
				}
				for r := range tc.p {
					if err := closeTo(dst[r*tc.n:(r+1)*tc.n], noiseVec(r, tc.n), 0, "gather"); err != nil {
						return err
					}
				}
				return nil
			})
			onAll(t, comms, func(c *Comm) error {
				x := noiseVec(c.Rank(), tc.n)
				if err := c.Reduce(ctx, 0, x, OpMax); err != nil || c.Rank() != 0 {
					return err
				}
				return closeTo(x, ringWant(tc.p, tc.n, OpMax), 0, "reduce")
			})
			placed := 0
			for _, c := range comms {
				placed += c.coll.placed
			}
			if placed == 0 {
				t.Fatal("no receive was placed by a link's reader")
			}
			t.Logf("%d receives placed", placed)
		})
	}
}

// ringWant is what the ring Allreduce gives for noiseVec inputs: chunk i
// ends at rank i-1 with the values of ranks i, i+1, ..., i-1 combined in
// that order (exactly, for max).
func ringWant(p, n int, op Op) []float64 {
	xs := make([][]float64, p)
	for r := range p {
		xs[r] = noiseVec(r, n)
	}
	want := make([]float64, n)
	for i := range p {
		lo, hi := i*n/p, (i+1)*n/p
		if n < p || 8*n <= smallBytes {
			lo, hi = 0, n
		}
		// Each step adds the arriving partial sum to the local value:
		// acc = x[i]; acc = x[i+1] + acc; ...
		acc := append([]float64(nil), xs[i][lo:hi]...)
		for k := 1; k < p; k++ {
			next := append([]float64(nil), xs[(i+k)%p][lo:hi]...)
			reduceInto(op, next, acc)
			acc = next
		}
		copy(want[lo:hi], acc)
	}
	return want
}

// fakePeer starts real ranks 0 and 1 of 3 (codec none) and returns rank 0
// and the authenticated connection of the fake rank 2 to it, table read.
func fakePeer(t *testing.T) (*Comm, []*Comm, net.Conn) {
	t.Helper()
	comms, nc := startWithFake(t, 3, func(c *Config) { c.Codec = CodecNone })
	var fr FrameReader
	fr.R = nc
	if _, err := fr.Next(); err != nil { // the rendezvous table
		t.Fatal(err)
	}
	return comms[0], comms, nc
}

// TestPlacedFromFake drives rank 0's placed receives with frames written
// by hand: a vector placed by copy and by reduction, one of another length
// and one with ints (not placeable: judged like Recv, and the link lives
// on), a receive cancelled while its message is being placed (it returns
// once the message is in, and the next one is received whole), and a
// corrupted CRC or a cut-off frame in the middle of a placed vector (the
// receive fails naming the error, the other ranks carry on).
func TestPlacedFromFake(t *testing.T) {
	const n = 50_000
	frame := func(m *Msg) []byte {
		b, err := AppendFrame(nil, 2, tagAllreduce, m, CodecNone, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := noiseVec(9, n)
	post := func(c *Comm, dst []float64, reduce bool) *recvReq {
		r := &c.coll.reqs(1)[0]
		c.coll.postRecv(r, 2, tagAllreduce, dst, reduce, OpSum, "allreduce")
		if r.w == nil {
			t.Fatalf("receive not posted: %v %v", r.f, r.err)
		}
		return r
	}

	t.Run("copy, reduce, mismatches", func(t *testing.T) {
		c, _, nc := fakePeer(t)
		ctx := ctxT(t)
		dst := make([]float64, n)
		r := post(c, dst, false)
		nc.Write(frame(&Msg{Dense: v}))
		if err := c.coll.waitRecv(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := closeTo(dst, v, 0, "copy"); err != nil {
			t.Fatal(err)
		}
		r = post(c, dst, true)
		nc.Write(frame(&Msg{Dense: v}))
		if err := c.coll.waitRecv(ctx, r); err != nil {
			t.Fatal(err)
		}
		want := append([]float64(nil), v...)
		reduceInto(OpSum, want, v)
		if err := closeTo(dst, want, 0, "reduce"); err != nil {
			t.Fatal(err)
		}
		if c.coll.placed != 2 {
			t.Fatalf("%d receives placed, want 2", c.coll.placed)
		}
		// Another length: refused, and the link lives on.
		r = post(c, dst, false)
		nc.Write(frame(&Msg{Dense: v[:n-1]}))
		if err := c.coll.waitRecv(ctx, r); err == nil || !strings.Contains(err.Error(), "disagree on the length") {
			t.Fatalf("%d values for %d: %v", n-1, n, err)
		}
		// Ints as well: not placeable, received whole as before.
		clear(dst)
		r = post(c, dst, false)
		nc.Write(frame(&Msg{Dense: v, Ints: []int64{1}}))
		if err := c.coll.waitRecv(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := closeTo(dst, v, 0, "vector with ints"); err != nil || c.coll.placed != 2 {
			t.Fatalf("%v; %d placed, want 2", err, c.coll.placed)
		}
	})

	t.Run("cancelled while placing", func(t *testing.T) {
		c, _, nc := fakePeer(t)
		dst := make([]float64, n)
		r := post(c, dst, false)
		b := frame(&Msg{Dense: v})
		nc.Write(b[:len(b)/2])
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		time.AfterFunc(150*time.Millisecond, func() { nc.Write(b[len(b)/2:]) })
		start := time.Now()
		if err := c.coll.waitRecv(ctx, r); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled receive: %v", err)
		}
		if took := time.Since(start); took < 100*time.Millisecond {
			t.Fatalf("returned after %v, before the reader was done with the vector", took)
		}
		if err := closeTo(dst, v, 0, "placed before the cancelled receive returned"); err != nil {
			t.Fatal(err)
		}
		w := noiseVec(10, n)
		nc.Write(frame(&Msg{Dense: w}))
		if err := c.coll.recvInto(ctxT(t), 2, tagAllreduce, dst, false, 0, "allreduce"); err != nil {
			t.Fatal(err)
		}
		if err := closeTo(dst, w, 0, "next message"); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name string
		mod  func(b []byte) []byte
		want error
	}{
		{"corrupted CRC", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, ErrChecksum},
		{"cut off", func(b []byte) []byte { return b[:len(b)/2] }, ErrPeerLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, comms, nc := fakePeer(t)
			dst := make([]float64, n)
			r := post(c, dst, true)
			nc.Write(tc.mod(frame(&Msg{Dense: v})))
			nc.(*net.TCPConn).CloseWrite()
			err := c.coll.waitRecv(ctxT(t), r)
			var oe *OpError
			if !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.Peer != 2 {
				t.Fatalf("placed receive of a bad frame: %v, want %v naming rank 2", err, tc.want)
			}
			pingPong(t, comms, 0, 1)
		})
	}
}

// TestAddTo compares the vector kernel of OpSum with the Go loop on every
// length around its 16-value blocks and unaligned starts, with NaN guard
// bands around dst to catch stray writes.
func TestAddTo(t *testing.T) {
	if !addOK {
		t.Log("no AVX2 (or noasm build): checking the Go loop only")
	}
	const guard = 8
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 70 {
		for _, off := range []int{0, 1, 3} {
			buf := make([]float64, n+off+2*guard)
			for i := range buf {
				buf[i] = math.NaN()
			}
			dst := buf[guard+off : guard+off+n]
			src := make([]float64, n+1)
			want := make([]float64, n)
			for i := range dst {
				dst[i], src[i] = rng.NormFloat64(), rng.NormFloat64()
				want[i] = dst[i]
			}
			addGo(want, src)
			addTo(dst, src)
			for i := range dst {
				if dst[i] != want[i] {
					t.Fatalf("n %d off %d: dst[%d] = %v, want %v", n, off, i, dst[i], want[i])
				}
			}
			for i, v := range buf {
				if (i < guard+off || i >= guard+off+n) && !math.IsNaN(v) {
					t.Fatalf("n %d off %d: wrote outside dst at %d", n, off, i-guard-off)
				}
			}
		}
	}
}

// BenchmarkReduce: OpSum's kernel against the Go loop, on a vector in
// cache and on one that is not (what a collective's vector usually is).
func BenchmarkReduce(b *testing.B) {
	for _, n := range []int{16 << 10, 8 << 20} {
		dst, src := make([]float64, n), make([]float64, min(n, 16<<10))
		for _, impl := range []struct {
			name string
			f    func(dst, src []float64)
		}{{"go", addGo}, {"kernel", addTo}} {
			b.Run(fmt.Sprintf("%s/%dKiB", impl.name, n>>7), func(b *testing.B) {
				b.SetBytes(int64(8 * n))
				for b.Loop() {
					for lo := 0; lo < n; lo += len(src) {
						impl.f(dst[lo:lo+len(src)], src)
					}
				}
			})
		}
	}
}

// TestSmallSocketBuffers: with fixed socket buffers smaller than the
// low-water mark large reads ask for, large messages and collectives still
// flow (the mark is bounded by half the receive buffer).
func TestSmallSocketBuffers(t *testing.T) {
	comms := startRanks(t, 3, func(c *Config) { c.Codec = CodecNone; c.SockBuf = 64 << 10 })
	ctx := ctxT(t)
	n := 1 << 20
	onAll(t, comms, func(c *Comm) error {
		x := noiseVec(c.Rank(), n)
		if err := c.Allreduce(ctx, x, OpMax); err != nil {
			return err
		}
		return closeTo(x, ringWant(3, n, OpMax), 0, "allreduce")
	})
	m := &Msg{Dense: noiseVec(5, n)}
	errc := make(chan error, 1)
	go func() { errc <- comms[1].Send(ctx, 0, 3, m) }()
	var got Msg
	if err := comms[0].Recv(ctx, 1, 3, &got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := closeTo(got.Dense, m.Dense, 0, "recv"); err != nil {
		t.Fatal(err)
	}
}

// TestForwardKnownCRCs: a message sent with the CRCs its receiver recorded
// when the reader placed it is byte for byte the frame the original sender
// wrote, fragmented or not; wrong known CRCs are refused downstream.
func TestForwardKnownCRCs(t *testing.T) {
	defer func(old int) { fragSize = old }(fragSize)
	for _, frag := range []int{4 << 20, 100_000} {
		fragSize = frag
		c, _, nc := fakePeer(t)
		v := noiseVec(3, 50_000) // 400 kB: 1 frame, or 5 fragments
		sent, err := AppendFrame(nil, 2, tagBcast, &Msg{Dense: v}, CodecNone, 0)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float64, len(v))
		r := &c.coll.reqs(1)[0]
		c.coll.postRecv(r, 2, tagBcast, dst, false, 0, "bcast")
		nc.Write(sent)
		if err := c.coll.waitRecv(ctxT(t), r); err != nil {
			t.Fatal(err)
		}
		nfrag := (len(v)*8 + msgHeaderLen + frag - 1) / frag
		if len(r.known) != nfrag {
			t.Fatalf("fragments of %d: %d CRCs recorded, want %d", frag, len(r.known), nfrag)
		}
		// Re-encode as rank 2 would, with the recorded CRCs.
		var e encoder
		e.src = 2
		e.maxFrame = DefaultMaxFrame
		h, payload, _, _, err := e.encode(tagBcast, &Msg{Dense: dst})
		if err != nil {
			t.Fatal(err)
		}
		w := appendWriter{}
		var scratch [5][]byte
		writeFrames(&w, nil, &scratch, h, payload, r.known)
		if !bytes.Equal(w.b, sent) {
			t.Fatalf("fragments of %d: frame with known CRCs differs from the original", frag)
		}
		// Wrong CRCs: the next receiver refuses the frame.
		bad := append([]uint32(nil), r.known...)
		bad[len(bad)-1] ^= 1
		h, payload, _, _, _ = e.encode(tagBcast, &Msg{Dense: dst})
		w = appendWriter{}
		writeFrames(&w, nil, &scratch, h, payload, bad)
		fr := FrameReader{R: bytes.NewReader(w.b)}
		if _, err := fr.Next(); !errors.Is(err, ErrChecksum) {
			t.Fatalf("fragments of %d: frame with a wrong known CRC: %v, want ErrChecksum", frag, err)
		}
	}
}
