package comm

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// rawPair is the baseline: two plain loopback TCP connections, no framing.
func rawPair(b *testing.B) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-acc
	b.Cleanup(func() { a.Close(); s.Close() })
	return a, s
}

var benchSizes = []int{8, 1 << 10, 64 << 10, 1 << 20, 4 << 20}

// BenchmarkPingPong: round trip of a message of n bytes, ours and raw TCP.
func BenchmarkPingPong(b *testing.B) {
	for _, n := range benchSizes {
		buf := make([]byte, n)
		b.Run(fmt.Sprintf("raw/%d", n), func(b *testing.B) {
			a, s := rawPair(b)
			go func() {
				rb := make([]byte, n)
				for {
					if _, err := io.ReadFull(s, rb); err != nil {
						return
					}
					s.Write(rb)
				}
			}()
			b.SetBytes(int64(2 * n))
			for b.Loop() {
				a.Write(buf)
				io.ReadFull(a, buf)
			}
		})
		b.Run(fmt.Sprintf("comm/%d", n), func(b *testing.B) {
			comms := startRanks(b, 2, func(c *Config) { c.Codec = CodecNone })
			ctx := context.Background()
			go func() {
				var m Msg
				for comms[1].Recv(ctx, 0, 1, &m) == nil {
					if comms[1].Send(ctx, 0, 2, &Msg{Bytes: m.Bytes}) != nil {
						return
					}
				}
			}()
			out := &Msg{Bytes: buf}
			var in Msg
			b.SetBytes(int64(2 * n))
			b.ReportAllocs()
			for b.Loop() {
				comms[0].Send(ctx, 1, 1, out)
				if err := comms[0].Recv(ctx, 1, 2, &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkThroughput: one-way stream of 4 MiB float64 messages.
func BenchmarkThroughput(b *testing.B) {
	const n = 4 << 20
	b.Run("raw", func(b *testing.B) {
		a, s := rawPair(b)
		done := make(chan struct{})
		go func() {
			io.Copy(io.Discard, s)
			close(done)
		}()
		buf := make([]byte, n)
		b.SetBytes(n)
		for b.Loop() {
			a.Write(buf)
		}
		a.Close()
		<-done
	})
	b.Run("comm", func(b *testing.B) {
		comms := startRanks(b, 2, nil)
		ctx := context.Background()
		x := make([]float64, n/8)
		for i := range x {
			x[i] = rand.NormFloat64()
		}
		done := make(chan struct{})
		count := make(chan int, 1)
		go func() {
			var m Msg
			k := 0
			for {
				if comms[1].Recv(ctx, 0, 1, &m) != nil || len(m.Dense) == 0 {
					break
				}
				k++
			}
			count <- k
			close(done)
		}()
		out := &Msg{Dense: x}
		b.SetBytes(n)
		b.ReportAllocs()
		k := 0
		for b.Loop() {
			comms[0].Send(ctx, 1, 1, out)
			k++
		}
		comms[0].Send(ctx, 1, 1, &Msg{})
		<-done
		if got := <-count; got != k {
			b.Fatalf("received %d of %d", got, k)
		}
	})
}

// BenchmarkRecvAny: the master's hot path with P-1 workers sending small
// gradients as fast as they can; reports messages per second.
func BenchmarkRecvAny(b *testing.B) {
	for _, p := range []int{2, 5, 9} {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) {
			comms := startRanks(b, p, func(c *Config) { c.Codec = CodecNone })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Each worker sends a gradient and waits for the master's reply,
			// as the asynchronous algorithm does.
			for r := 1; r < p; r++ {
				go func() {
					g := &Msg{Ints: []int64{0, 0}, Dense: make([]float64, 123)}
					var reply Msg
					for {
						if comms[r].Send(ctx, 0, 1, g) != nil || comms[r].Recv(ctx, 0, 2, &reply) != nil {
							return
						}
					}
				}()
			}
			var m Msg
			x := &Msg{Dense: make([]float64, 123)}
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				src, err := comms[0].RecvAny(ctx, 1, &m)
				if err != nil {
					b.Fatal(err)
				}
				comms[0].Send(ctx, src, 2, x)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSocketTuning: round trips with each socket option, to justify
// the defaults (TCP_NODELAY on; QUICKACK and fixed buffers off). "x2"
// sends two messages before waiting for the reply: the pattern that
// Nagle's algorithm stalls until the peer's delayed ACK.
func BenchmarkSocketTuning(b *testing.B) {
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"default", func(*Config) {}},
		{"nagle", func(c *Config) { c.Nagle = true }},
		{"quickack", func(c *Config) { c.QuickAck = true }},
		{"sockbuf4M", func(c *Config) { c.SockBuf = 4 << 20 }},
	}
	for _, tc := range cases {
		for _, n := range []int{8, 64 << 10} {
			for _, burst := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%dx%d", tc.name, n, burst), func(b *testing.B) {
					comms := startRanks(b, 2, func(c *Config) { c.Codec = CodecNone; tc.mod(c) })
					ctx := context.Background()
					go func() {
						var m Msg
						for {
							for range burst {
								if comms[1].Recv(ctx, 0, 1, &m) != nil {
									return
								}
							}
							if comms[1].Send(ctx, 0, 2, &Msg{Bytes: m.Bytes}) != nil {
								return
							}
						}
					}()
					out := &Msg{Bytes: make([]byte, n)}
					var in Msg
					for b.Loop() {
						for range burst {
							comms[0].Send(ctx, 1, 1, out)
						}
						comms[0].Recv(ctx, 1, 2, &in)
					}
				})
			}
		}
	}
}

// BenchmarkAllreduce: 1M float64 on P in-process ranks (the CLI bench runs
// them as processes and against Open MPI).
func BenchmarkAllreduce(b *testing.B) {
	for _, p := range []int{2, 4} {
		b.Run(fmt.Sprintf("P=%d", p), func(b *testing.B) {
			comms := startRanks(b, p, nil)
			xs := make([][]float64, p)
			for r := range xs {
				xs[r] = rankVec(r, 1<<20)
			}
			b.SetBytes(8 << 20)
			b.ReportAllocs()
			for b.Loop() {
				onAll(b, comms, func(c *Comm) error { return c.Allreduce(context.Background(), xs[c.Rank()], OpSum) })
			}
		})
	}
}
