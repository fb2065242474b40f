package commbench

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asyncmb/asyncmb/comm"
)

// payload is a float64 vector the ranks will send: a dense iterate, an
// L1-sparse iterate or a sparse mini-batch gradient.
type payload struct {
	name  string
	dense []float64 // length dim
	idx   []int32   // its nonzeros
	vals  []float64
}

// sparsify fills p.idx and p.vals from p.dense.
func (p *payload) sparsify() {
	p.idx, p.vals = p.idx[:0], p.vals[:0]
	for j, v := range p.dense {
		if v != 0 {
			p.idx = append(p.idx, int32(j))
			p.vals = append(p.vals, v)
		}
	}
}

// realisticPayloads trains L2- and L1-regularized logistic regression by
// mini-batch (prox-)SGD on rcv1-like synthetic data (47236 features with
// Zipf popularity, ~75 unit-norm tf-idf-like entries per row, labels from
// a planted sparse model) and returns the two iterates and a mini-batch
// gradient: the three vectors asyncmb's ranks exchange. The kernels
// package is not used so that this benchmark depends on comm alone.
func realisticPayloads() []payload {
	const (
		dim, rows, perRow = 47236, 20000, 75
		batch, steps      = 64, 1500
	)
	rng := rand.New(rand.NewPCG(7, 8))
	zipf := rand.NewZipf(rng, 1.2, 8, dim-1)
	truth := make([]float64, dim)
	for j := range truth {
		if rng.IntN(10) == 0 {
			truth[j] = rng.NormFloat64()
		}
	}
	indptr := []int{0}
	var cols []int32
	var vals []float64
	y := make([]float64, rows)
	for i := range rows {
		start := len(cols)
		seen := map[int32]bool{}
		for range perRow/2 + rng.IntN(perRow) {
			j := int32(zipf.Uint64())
			if !seen[j] {
				seen[j] = true
				cols = append(cols, j)
			}
		}
		slices.Sort(cols[start:])
		var norm, margin float64
		for _, j := range cols[start:] {
			v := (1 + math.Log(1+3*rng.Float64())) * math.Log(float64(dim)/(1+float64(j)))
			vals = append(vals, v)
			norm += v * v
		}
		for k := start; k < len(cols); k++ {
			vals[k] /= math.Sqrt(norm)
			margin += vals[k] * truth[cols[k]]
		}
		y[i] = 1
		if margin+0.1*rng.NormFloat64() < 0 {
			y[i] = -1
		}
		indptr = append(indptr, len(cols))
	}
	// gradient of the logistic loss on a mini-batch at w, into g (dense).
	grad := func(w, g []float64, r *rand.Rand) {
		clear(g)
		for range batch {
			i := r.IntN(rows)
			lo, hi := indptr[i], indptr[i+1]
			var m float64
			for k := lo; k < hi; k++ {
				m += vals[k] * w[cols[k]]
			}
			s := -y[i] / (1 + math.Exp(y[i]*m)) / batch
			for k := lo; k < hi; k++ {
				g[cols[k]] += s * vals[k]
			}
		}
	}
	train := func(l1, l2 float64) []float64 {
		w, g := make([]float64, dim), make([]float64, dim)
		r := rand.New(rand.NewPCG(9, 10))
		for t := range steps {
			eta := 2 / math.Sqrt(1+float64(t)/50)
			grad(w, g, r)
			for j := range w {
				v := (1-eta*l2)*w[j] - eta*g[j]
				w[j] = math.Copysign(math.Max(math.Abs(v)-eta*l1, 0), v) // prox of eta*l1*|.|
			}
		}
		return w
	}
	dense := payload{name: "dense iterate (L2)", dense: train(0, 1e-4)}
	l1 := payload{name: "L1-sparse iterate", dense: train(2e-4, 1e-5)}
	g := payload{name: "mini-batch gradient", dense: make([]float64, dim)}
	grad(dense.dense, g.dense, rand.New(rand.NewPCG(11, 12)))
	out := []payload{dense, l1, g}
	for i := range out {
		out[i].sparsify()
	}
	return out
}

// benchCompression frames each payload, dense and sparse, with each codec,
// and measures the frame size and the encode and decode speed (frame
// writer and reader of comm, as the links use them).
func benchCompression(emit func(benchRecord)) error {
	for _, p := range realisticPayloads() {
		msgs := []struct {
			repr string
			m    *comm.Msg
		}{
			{"dense", &comm.Msg{Ints: []int64{1, 2, 3, 4}, Dense: p.dense}},
			{"sparse", &comm.Msg{Ints: []int64{1, 2, 3, 4}, Dim: len(p.dense), Idx: p.idx, Vals: p.vals}},
		}
		for _, x := range msgs {
			for _, codec := range []comm.Codec{comm.CodecNone, comm.CodecS2, comm.CodecZstd} {
				rec, err := measureCodec(x.m, codec)
				if err != nil {
					return fmt.Errorf("bench comm: %s %s %v: %w", p.name, x.repr, codec, err)
				}
				rec.Payload, rec.Repr, rec.NNZ, rec.Dim = p.name, x.repr, len(p.idx), len(p.dense)
				emit(rec)
			}
		}
	}
	return nil
}

func measureCodec(m *comm.Msg, codec comm.Codec) (benchRecord, error) {
	frame, err := comm.AppendFrame(nil, 0, 1, m, codec, comm.DefaultMinCompress)
	if err != nil {
		return benchRecord{}, err
	}
	r := bytes.NewReader(frame)
	fr := comm.FrameReader{R: r}
	var got comm.Msg
	f, err := fr.Next()
	if err != nil {
		return benchRecord{}, err
	}
	if err := comm.DecodeMsg(f.Payload, &got); err != nil {
		return benchRecord{}, err
	}
	if !slices.Equal(got.Dense, m.Dense) || !slices.Equal(got.Idx, m.Idx) || !slices.Equal(got.Vals, m.Vals) {
		return benchRecord{}, fmt.Errorf("round trip changed the vector")
	}
	rawLen := len(f.Payload)
	const budget = 50 * time.Millisecond
	n, start := 0, time.Now()
	for ; n < 3 || time.Since(start) < budget; n++ {
		if frame, err = comm.AppendFrame(frame[:0], 0, 1, m, codec, comm.DefaultMinCompress); err != nil {
			return benchRecord{}, err
		}
	}
	enc := float64(n*rawLen) / time.Since(start).Seconds() / 1e6
	n, start = 0, time.Now()
	for ; n < 3 || time.Since(start) < budget; n++ {
		r.Reset(frame)
		f, err := fr.Next()
		if err != nil {
			return benchRecord{}, err
		}
		if err := comm.DecodeMsg(f.Payload, &got); err != nil {
			return benchRecord{}, err
		}
	}
	dec := float64(n*rawLen) / time.Since(start).Seconds() / 1e6
	return benchRecord{Kind: "compress", Codec: codec.String(), RawBytes: rawLen, Wire: len(frame), EncMBs: enc, DecMBs: dec}, nil
}
