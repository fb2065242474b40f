package study

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDrawDegenerate: figures of runs whose data span no range on a log
// axis (one worker: every delay is 0; one snapshot) are drawn, not a panic.
func TestDrawDegenerate(t *testing.T) {
	dir := t.TempDir()
	if err := DrawDelayHist(dir, []int64{4096}); err != nil {
		t.Fatal(err)
	}
	csv := "t,wall_s,epochs,phi_last,phi_avg,rel_subopt_last,rel_subopt_avg,nnz_last,nnz_avg\n0,0,0,1,1,0.5,0.5,0,0\n1,0.1,0.1,1,1,0.5,0.5,0,0\n"
	if err := os.WriteFile(filepath.Join(dir, "trace.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := DrawRun(dir, 1); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"delay_hist.png", "delay_hist.svg", "subopt_time.png", "subopt_updates.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
