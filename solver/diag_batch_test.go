package solver

import "testing"

// TestBatchMetricFloorsRareColumns: a column present in fewer than N/b rows
// gets curv * RMS^2 / b, a frequent one keeps curv * mean a_ij^2, an empty
// one Metric's fallback.
func TestBatchMetricFloorsRareColumns(t *testing.T) {
	// N = 100 rows, b = 10: column 0 in every row (a = 2), column 1 in 2
	// rows (a = 3), column 2 empty.
	s := ColumnStats{Sq: []float64{400, 18, 0}, Count: []float64{100, 2, 0}, N: 100}
	got := s.BatchMetric(0.5, 10)
	want := []float64{0.5 * 4, 0.5 * 9 / 10, 0.5 * 18 / 100} // empty: the smallest plain entry
	for j := range want {
		if d := got[j] - want[j]; d > 1e-12 || d < -1e-12 {
			t.Errorf("c[%d] = %v, want %v (plain metric %v)", j, got[j], want[j], s.Metric(0.5)[j])
		}
	}
}

// TestVRRateCapRecovers: after a rejection caps the step, VRRecover accepted
// snapshots at the cap raise it by VRGrow, so a rejection from one noisy
// epoch does not bound the step for good.
func TestVRRateCapRecovers(t *testing.T) {
	r := NewVRRate(1)
	x, mu := []float64{0}, []float64{0}
	phi := 100.0
	r.Snapshot(x, mu, phi)
	for range 4 { // 1.5, 2.25, 3.375, 5.0625
		phi--
		r.Snapshot(x, mu, phi)
	}
	if a, revert := r.Snapshot(x, mu, phi+1); !revert || a != 5.0625/2 {
		t.Fatalf("rejection: alpha %v revert %v", a, revert)
	}
	capped := VRRetry * 5.0625
	var a float64
	for i := range VRRecover + 1 {
		phi--
		a, _ = r.Snapshot(x, mu, phi)
		if i < VRRecover-1 && a > capped {
			t.Fatalf("snapshot %d: alpha %v above the cap %v", i, a, capped)
		}
	}
	if !(a > capped) {
		t.Fatalf("after %d accepted snapshots at the cap the step is %v, want above %v", VRRecover+1, a, capped)
	}
}
