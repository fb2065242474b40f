package ranks

import (
	"fmt"
	"math"

	"github.com/asyncmb/asyncmb/data"
	"github.com/asyncmb/asyncmb/kernels"
)

// heldOut is the --test set on the master: read before training (so that
// a bad file fails at once), scored after the run at every snapshot of the
// trace and for the model written, as the training objective is.
type heldOut struct {
	path string
	a    *kernels.CSR
	y    []float64 // raw labels: Model.Evaluate maps them with the model's
	tmpl Model     // everything but the weights
}

// loadHeldOut reads cfg.Test for a model of the dimension and labels the
// setup fixed. Features beyond the training data's are ignored (as
// liblinear-predict does); a label the training data does not have is an
// error.
func loadHeldOut(cfg *Config, f *facts) (*heldOut, error) {
	ds, err := data.Read(cfg.Test, data.Options{})
	if err != nil {
		return nil, fmt.Errorf("--test: %w", err)
	}
	h := &heldOut{path: cfg.Test, a: &ds.X, y: ds.Y,
		tmpl: Model{Loss: cfg.Loss, Reg: cfg.Reg.Kind, Features: f.dRaw, Bias: cfg.Bias}}
	if f.classes != nil {
		if err := h.useClasses(f); err != nil {
			return nil, err
		}
	}
	if f.labelMap != nil {
		h.tmpl.Labels = []float64{f.labelMap.Pos, f.labelMap.Neg}
		for i, v := range ds.Y {
			if v != f.labelMap.Pos && v != f.labelMap.Neg {
				return nil, fmt.Errorf("--test %s: row %d has label %v; the training data's labels are %v and %v",
					cfg.Test, i+1, v, f.labelMap.Neg, f.labelMap.Pos)
			}
		}
	}
	return h, nil
}

// score evaluates the weights w (len d, only read) on the held-out rows.
func (h *heldOut) score(w []float64) Metrics {
	m := h.tmpl
	m.Weights = w
	res, err := m.Evaluate(h.a, h.y)
	if err != nil {
		panic("ranks: held-out labels were checked at load: " + err.Error())
	}
	return res
}

// TestInfo is summary.json's record of the held-out figures of the model
// written: the mean loss (the training loss's kind), accuracy and AUC for
// classification, RMSE for regression (the others are null).
type TestInfo struct {
	Path     string   `json:"path"`
	Rows     int      `json:"rows"`
	Loss     *float64 `json:"loss"`
	Accuracy *float64 `json:"accuracy"`
	AUC      *float64 `json:"auc"`
	RMSE     *float64 `json:"rmse"`
}

func (h *heldOut) info(m Metrics) *TestInfo {
	return &TestInfo{Path: h.path, Rows: m.Rows, Loss: finitePtr(m.Loss), Accuracy: finitePtr(m.Accuracy), AUC: finitePtr(m.AUC), RMSE: finitePtr(m.RMSE)}
}

// testCSVHeader and testCSVFields are the held-out columns of trace.csv
// for a model with loss l.
func testCSVHeader(l kernels.Loss) string {
	if l.Classification() {
		return ",test_loss,test_accuracy,test_auc"
	}
	return ",test_loss,test_rmse"
}

func testCSVFields(l kernels.Loss, m *Metrics) string {
	if l.Classification() {
		return fmt.Sprintf(",%.10g,%.6g,%.6g", m.Loss, m.Accuracy, m.AUC)
	}
	return fmt.Sprintf(",%.10g,%.6g", m.Loss, m.RMSE)
}

func finitePtr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
