package ranks

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asyncmb/asyncmb/algo"
	"github.com/asyncmb/asyncmb/comm"
	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// startComms starts p communicators as goroutines over loopback.
func startComms(t testing.TB, p int) []*comm.Comm {
	t.Helper()
	store := comm.NewMemStore()
	comms := make([]*comm.Comm, p)
	errs := make([]error, p)
	var wg sync.WaitGroup
	for r := range p {
		cfg := comm.DefaultConfig(r, p)
		cfg.JobID, cfg.Secret, cfg.Store, cfg.Bind = "ranks-test", []byte("ranks-test-secret"), store, "127.0.0.1"
		cfg.RendezvousTimeout = 20 * time.Second
		wg.Go(func() { comms[r], errs[r] = comm.New(context.Background(), cfg) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() {
		for _, c := range comms {
			if c != nil {
				c.Close()
			}
		}
	})
	return comms
}

// runInProcess runs every rank of a training run as a goroutine and
// returns the master's summary.
func runInProcess(t *testing.T, ranks int, cfg Config) *Summary {
	t.Helper()
	comms := startComms(t, ranks)
	errs := make([]error, ranks)
	var res *Result
	var wg sync.WaitGroup
	for r := range ranks {
		c := cfg
		wg.Go(func() {
			if r == 0 {
				res, errs[r] = runMaster(context.Background(), comms[r], &c)
				return
			}
			errs[r] = runWorker(context.Background(), comms[r], &c)
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return res.Summary
}

func TestRunInProcessA9a(t *testing.T) {
	const phiStar = 0.32689896196913504 // testdata/reference.jsonl, a9a l1-logistic 1e-4
	out := t.TempDir()
	cfg := Config{
		Data: "../testdata/a9a", Loss: kernels.Logistic,
		Reg:  solver.Reg{Kind: solver.RegL1, Lambda: 1e-4},
		Mode: algo.ModeAsync, Batch: 64, Epochs: 10, Seed: 1,
		Step: StepSpec{Kind: solver.StepInvSqrt, Alpha0: 2, Tau: -1, Average: "tail"},
		Out:  out, PhiStar: phiStar, Summary: os.Stderr,
		Manifest: map[string]any{"test": true},
	}
	s := runInProcess(t, 4, cfg)
	if s.Final == nil || !(s.Final.RelAvg < 1e-2) {
		t.Fatalf("final %+v", s.Final)
	}
	for _, f := range []string{"trace.csv", "trace.bin", "summary.json", "model"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	if err := json.Unmarshal(b, &js); err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.Epochs-10) > 0.1 {
		t.Errorf("epochs %v", s.Epochs)
	}
}

func TestRunSerialA9a(t *testing.T) {
	const phiStar = 0.32689896196913504
	cfg := Config{
		Data: "../testdata/a9a", Loss: kernels.Logistic,
		Reg:   solver.Reg{Kind: solver.RegL1, Lambda: 1e-4},
		Batch: 64, Epochs: 5, Seed: 1,
		Step: StepSpec{Kind: solver.StepInvSqrt, Alpha0: 2, Tau: -1, Average: "tail"},
		Out:  t.TempDir(), PhiStar: phiStar,
	}
	res, err := RunSerial(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.Summary.Table(os.Stderr)
}
