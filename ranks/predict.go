package ranks

import (
	"fmt"
	"io"
	"math"

	"github.com/asyncmb/asyncmb/data"
)

// Predict evaluates the model in file mp on the data file dp and prints
// `asyncmb predict`'s report to w: accuracy, log-loss and AUC (K classes:
// per-class precision and recall and the confusion matrix), or the RMSE of a
// regression model.
func Predict(w io.Writer, mp, dp string) error {
	m, err := ReadModel(mp)
	if err != nil {
		return err
	}
	ds, err := data.Read(dp, data.Options{})
	if err != nil {
		return err
	}
	res, err := m.Evaluate(&ds.X, ds.Y)
	if err != nil {
		return fmt.Errorf("%s: %w", dp, err)
	}
	fmt.Fprintf(w, "model     %s (%v, %d features, bias %v)\n", mp, m.Loss, m.Features, m.Bias)
	fmt.Fprintf(w, "data      %s (%d rows)\n", dp, res.Rows)
	if !m.Loss.Classification() {
		fmt.Fprintf(w, "rmse      %.6g\n", res.RMSE)
		return nil
	}
	fmt.Fprintf(w, "accuracy  %.4f%% (%d/%d)\n", 100*res.Accuracy, int(math.Round(res.Accuracy*float64(res.Rows))), res.Rows)
	if m.Classes > 0 {
		writeMulti(w, res)
		return nil
	}
	if !math.IsNaN(res.LogLoss) {
		fmt.Fprintf(w, "log-loss  %.6g\n", res.LogLoss)
	}
	fmt.Fprintf(w, "auc       %.6g\n", res.AUC)
	return nil
}

// writeMulti prints a K-class model's figures after the accuracy: the
// multinomial log-loss, per-class precision and recall, and the confusion
// matrix (rows: true class, columns: predicted).
func writeMulti(w io.Writer, res Metrics) {
	fmt.Fprintf(w, "log-loss  %.6g (multinomial, softmax of the scores)\n", res.LogLoss)
	fmt.Fprintf(w, "%-10s %9s %9s %7s\n", "class", "precision", "recall", "rows")
	for c, l := range res.Labels {
		rows := 0
		for _, v := range res.Confusion[c] {
			rows += v
		}
		fmt.Fprintf(w, "%-10g %9.4f %9.4f %7d\n", l, res.Precision[c], res.Recall[c], rows)
	}
	fmt.Fprintf(w, "confusion (rows: true class, columns: predicted)\n%-8s", "")
	for _, l := range res.Labels {
		fmt.Fprintf(w, " %6g", l)
	}
	fmt.Fprintln(w)
	for c, l := range res.Labels {
		fmt.Fprintf(w, "%-8g", l)
		for _, v := range res.Confusion[c] {
			fmt.Fprintf(w, " %6d", v)
		}
		fmt.Fprintln(w)
	}
}
