package ranks

import (
	"bufio"
	"fmt"
	"io"
	"math"

	"github.com/asyncmb/asyncmb/kernels"
)

// maxModelClasses bounds nr_class in a model file we read.
const maxModelClasses = 1 << 16

// writeMulti writes a K-class model in LIBLINEAR's format: one line of K
// weights per feature (and one for the bias), columns in the order of the
// label line, which is how liblinear-train writes its one-vs-rest models
// and what liblinear-predict reads (it predicts the argmax column).
func (m *Model) writeMulti(w io.Writer) error {
	k := m.Classes
	rows := m.Features
	if m.Bias {
		rows++
	}
	if len(m.Labels) != k || len(m.Weights) != rows*k {
		panic(fmt.Sprintf("ranks: %d-class model with %d labels and %d weights for %d features", k, len(m.Labels), len(m.Weights), rows))
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "solver_type %s\nnr_class %d\nlabel", m.solverType(), k)
	for _, l := range m.Labels {
		fmt.Fprintf(bw, " %s", fmtLabel(l))
	}
	bias := -1
	if m.Bias {
		bias = 1
	}
	fmt.Fprintf(bw, "\nnr_feature %d\nbias %d\nw\n", m.Features, bias)
	for j := range rows {
		for _, v := range m.Weights[j*k : j*k+k] {
			fmt.Fprintf(bw, "%.17g ", v)
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// Scores writes the K class scores of the sparse row (idx, val) into s:
// s_c = sum_j a_j W[j][c] + bias weight; features beyond the model's are
// ignored, as liblinear-predict does.
func (m *Model) Scores(idx []int32, val, s []float64) {
	k, nf := m.Classes, m.Features
	clear(s[:k])
	for t, j := range idx {
		if int(j) >= nf {
			break
		}
		w := m.Weights[int(j)*k : int(j)*k+k]
		for c := range w {
			s[c] += val[t] * w[c]
		}
	}
	if m.Bias {
		for c, w := range m.Weights[nf*k : nf*k+k] {
			s[c] += w
		}
	}
}

// evaluateMulti scores a K-class model: the prediction is the argmax class
// (the first on ties, as liblinear-predict), the log-loss that of the
// softmax of the scores.
func (m *Model) evaluateMulti(a *kernels.CSR, y []float64) (Metrics, error) {
	k := m.Classes
	res := Metrics{Rows: a.Rows, LogLoss: math.NaN(), AUC: math.NaN(), RMSE: math.NaN(), Loss: math.NaN(), Labels: m.Labels}
	res.Confusion = make([][]int, k)
	for c := range res.Confusion {
		res.Confusion[c] = make([]int, k)
	}
	class := make(map[float64]int, k)
	for c, l := range m.Labels {
		class[l] = c
	}
	s, dm := make([]float64, k), make([]float64, k)
	soft := kernels.Multi{K: k}
	correct := 0
	var ll float64
	for i := 0; i < a.Rows; i++ {
		yc, ok := class[y[i]]
		if !ok {
			return res, fmt.Errorf("row %d: label %v is none of the model's %d labels", i+1, y[i], k)
		}
		idx, val := a.Row(i)
		m.Scores(idx, val, s)
		best := 0
		for c := 1; c < k; c++ {
			if s[c] > s[best] {
				best = c
			}
		}
		res.Confusion[yc][best]++
		if best == yc {
			correct++
		}
		ll += soft.ValueDeriv(s, yc, dm)
	}
	n := float64(max(a.Rows, 1))
	res.Accuracy = float64(correct) / n
	res.LogLoss = ll / n
	res.Loss = res.LogLoss // the softmax loss (one-vs-rest models are scored by it too)
	res.Precision, res.Recall = make([]float64, k), make([]float64, k)
	for c := range k {
		var predicted, actual int
		for r := range k {
			predicted += res.Confusion[r][c]
			actual += res.Confusion[c][r]
		}
		res.Precision[c], res.Recall[c] = math.NaN(), math.NaN()
		if predicted > 0 {
			res.Precision[c] = float64(res.Confusion[c][c]) / float64(predicted)
		}
		if actual > 0 {
			res.Recall[c] = float64(res.Confusion[c][c]) / float64(actual)
		}
	}
	return res, nil
}
