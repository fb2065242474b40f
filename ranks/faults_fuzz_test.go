package ranks

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/solver"
)

// FuzzMasterGradient feeds arbitrary gradient messages (comm payloads) from
// a hostile worker to the master: decodeGrad and Step may refuse or fail,
// but nothing may panic and x must stay finite (a NaN or Inf is never
// applied).
func FuzzMasterGradient(f *testing.F) {
	const d = 8
	var m comm.Msg
	for _, g := range []algo.Grad{
		{TRead: 0, Rows: 4, Loss: 0.5, Dense: []float64{1, 2, 3, 4, 5, 6, 7, 8}},
		{TRead: 0, Rows: 4, Loss: 0.5, Dense: []float64{1, math.NaN(), 3, 4, 5, 6, 7, 8}},
		{TRead: 0, Rows: 1, Loss: 1, Idx: []int32{1, 5}, Val: []float64{0.5, -2}},
		{TRead: 0, Rows: 1, Loss: 1, Idx: []int32{2}, Val: []float64{math.Inf(1)}},
		{TRead: 0, Rows: 1, Loss: 1, Idx: []int32{1, 5}, Val: []float64{0.5, -2}, Keys: []int32{0, 3, 7}},
		{TRead: 0, Rows: 1, Loss: 1, Idx: []int32{1}, Val: []float64{0.5}, Keys: []int32{}},
		// (a support that is the message's own keys: a reference)
		{TRead: 0, Rows: 1, Loss: 1, Idx: []int32{1, 5}, Val: []float64{0.5, math.Inf(-1)}, Keys: []int32{1, 5}},
	} {
		encodeGrad(&m, &g, d, new(keyHist))
		b, err := comm.AppendFrame(nil, 1, tagGrad, &m, comm.CodecNone, 64)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ms, err := algo.NewMaster(algo.MasterConfig{Workers: 2, X0: make([]float64, d), Reg: solver.Reg{Kind: solver.RegL1, Lambda: 0.1},
			Schedule: solver.Schedule{Kind: solver.StepConst, Alpha0: 0.1}, Pull: algo.PullKeys})
		if err != nil {
			t.Fatal(err)
		}
		ms.Start()
		fr := comm.FrameReader{R: bytes.NewReader(frame), MaxFrame: 1 << 16}
		fm, err := fr.Next()
		if err != nil {
			return
		}
		var msg comm.Msg
		if comm.DecodeMsg(fm.Payload, &msg) != nil {
			return
		}
		msg.Src = 1
		var g algo.Grad
		if decodeGrad(&msg, &g, d, new(keyHist)) != nil {
			return
		}
		rd, err := ms.Step(algo.Event{Kind: algo.EventGrad, Grad: &g})
		if err != nil {
			return
		}
		for _, r := range rd.Replies {
			if r.Kind == algo.ReplyKeyed && !slices.Equal(r.Idx, g.Keys) {
				t.Fatalf("keyed reply on %v, the gradient asked for %v", r.Idx, g.Keys)
			}
		}
		x := make([]float64, d)
		ms.Iterate(x)
		for j, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("x[%d] = %v after a gradient from a hostile worker", j, v)
			}
		}
	})
}
