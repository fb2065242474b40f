package ranks

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/asyncmb/asyncmb/kernels"
	"github.com/asyncmb/asyncmb/solver"
)

// Model is a trained linear model, written in LIBLINEAR's model format so
// that liblinear-predict (Debian's liblinear-tools) reads it:
//
//	solver_type L1R_LR        (the LIBLINEAR solver of the same problem)
//	nr_class 2
//	label 1 -1                (classification: the class of w.x > 0 first)
//	nr_feature 123
//	bias -1                   (or 1: the last weight multiplies a constant 1)
//	w
//	0.123...                  (one weight per line)
//
// A K-class model (Classes = K > 2) has "nr_class K", the K labels in the
// order of W's columns, and one line of K weights per feature, W flat and
// row-major by feature as liblinear stores it.
type Model struct {
	Weights  []float64 // len (Features (+1 with Bias)) * max(Classes, 1)
	Loss     kernels.Loss
	Reg      solver.RegKind
	Features int
	Bias     bool
	// Labels are the raw labels of the positive and the negative class
	// (classification only); of a K-class model, the label of each column.
	Labels []float64
	// Classes is K for a K-class model (K > 2), 0 for one weight vector.
	Classes int
}

// solverType names the LIBLINEAR solver that fits the same kind of model.
func (m *Model) solverType() string {
	l1 := m.Reg == solver.RegL1 || m.Reg == solver.RegL1Box
	switch m.Loss {
	case kernels.Logistic:
		if l1 {
			return "L1R_LR"
		}
		return "L2R_LR"
	case kernels.SqHinge:
		if l1 {
			return "L1R_L2LOSS_SVC"
		}
		return "L2R_L2LOSS_SVC"
	}
	return "L2R_L2LOSS_SVR"
}

// WriteLiblinear writes the model in LIBLINEAR's format.
func (m *Model) WriteLiblinear(w io.Writer) error {
	if m.Classes > 0 {
		return m.writeMulti(w)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "solver_type %s\nnr_class 2\n", m.solverType())
	if m.Loss.Classification() {
		fmt.Fprintf(bw, "label %s %s\n", fmtLabel(m.Labels[0]), fmtLabel(m.Labels[1]))
	}
	bias := -1
	if m.Bias {
		bias = 1
	}
	fmt.Fprintf(bw, "nr_feature %d\nbias %d\nw\n", m.Features, bias)
	// strconv's 'g' with precision 17 is what %.17g prints, without
	// fmt's per-call work (d = 2^24: 3.2 s of the master's CPU).
	var line []byte
	for _, v := range m.Weights {
		line = append(strconv.AppendFloat(line[:0], v, 'g', 17, 64), ' ', '\n')
		bw.Write(line)
	}
	return bw.Flush()
}

func fmtLabel(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ReadModel reads a binary linear model in LIBLINEAR's format (ours or
// liblinear-train's, for a single weight vector).
func ReadModel(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseModel(f, path)
}

// maxModelLine bounds a line of a model file (a weight, or the header).
const maxModelLine = 1 << 16

// parseModel reads a model from r; path names it in errors.
func parseModel(r io.Reader, path string) (*Model, error) {
	m := &Model{Loss: kernels.Squared}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxModelLine)
	line := 0
	bias := -1.0
	inW := false
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		bad := func(what string) error { return fmt.Errorf("%s:%d: %s", path, line, what) }
		if inW {
			for _, s := range fields {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, bad(fmt.Sprintf("weight %q is not a number", s))
				}
				m.Weights = append(m.Weights, v)
			}
			continue
		}
		switch fields[0] {
		case "solver_type":
			if len(fields) != 2 {
				return nil, bad("solver_type needs one value")
			}
			switch {
			case strings.HasSuffix(fields[1], "_LR"):
				m.Loss = kernels.Logistic
			case strings.Contains(fields[1], "SVC"):
				m.Loss = kernels.SqHinge
			case strings.Contains(fields[1], "SVR"):
				m.Loss = kernels.Squared
			default:
				return nil, bad("unsupported solver_type " + fields[1])
			}
			if strings.HasPrefix(fields[1], "L1R") {
				m.Reg = solver.RegL1
			} else {
				m.Reg = solver.RegL2
			}
		case "nr_class":
			k, err := strconv.Atoi(fields[len(fields)-1])
			if len(fields) != 2 || err != nil || k < 2 || k > maxModelClasses {
				return nil, bad(fmt.Sprintf("nr_class %q: want 2..%d", fields[len(fields)-1], maxModelClasses))
			}
			if k > 2 {
				m.Classes = k
			}
		case "label":
			if len(fields) != max(m.Classes, 2)+1 {
				return nil, bad(fmt.Sprintf("label needs %d values", max(m.Classes, 2)))
			}
			for _, s := range fields[1:] {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, bad("bad label " + s)
				}
				m.Labels = append(m.Labels, v)
			}
		case "nr_feature":
			n, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil || n < 0 || n > math.MaxInt32 {
				return nil, bad("bad nr_feature")
			}
			m.Features = n
		case "bias":
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				return nil, bad("bad bias")
			}
			bias = v
		case "w":
			inW = true
		default:
			return nil, bad("unexpected " + fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: line %d: %w", path, line+1, err)
	}
	m.Bias = bias > 0
	want := m.Features
	if m.Bias {
		want++
	}
	want *= max(m.Classes, 1)
	if len(m.Weights) != want {
		return nil, fmt.Errorf("%s: %d weights, want %d (nr_feature %d, bias %v)", path, len(m.Weights), want, m.Features, bias)
	}
	if m.Loss.Classification() && len(m.Labels) != max(m.Classes, 2) {
		return nil, fmt.Errorf("%s: classification model without a label line", path)
	}
	if m.Classes > 0 && m.Loss != kernels.Logistic {
		return nil, fmt.Errorf("%s: a %d-class model of a %s solver: only logistic K-class models are supported", path, m.Classes, m.solverType())
	}
	return m, nil
}

// Metrics are a model's figures on a labelled data set: accuracy, log-loss
// and AUC for classification, RMSE for regression.
type Metrics struct {
	Rows     int
	Accuracy float64
	LogLoss  float64 // logistic models only (NaN otherwise)
	Loss     float64 // the mean of the model's own loss (logistic, squared, squared hinge)
	AUC      float64
	RMSE     float64
	// K-class models: the labels of the classes, Confusion[true][predicted]
	// counts, and per-class precision and recall (NaN for a class never
	// predicted, or absent).
	Labels            []float64
	Confusion         [][]int
	Precision, Recall []float64
}

// Evaluate scores rows of a with labels y (raw labels: mapped with the
// model's labels for classification). Features beyond the model's are
// ignored, as liblinear-predict does.
func (m *Model) Evaluate(a *kernels.CSR, y []float64) (Metrics, error) {
	if m.Classes > 0 {
		return m.evaluateMulti(a, y)
	}
	res := Metrics{Rows: a.Rows, LogLoss: math.NaN(), AUC: math.NaN(), Accuracy: math.NaN(), RMSE: math.NaN(), Loss: math.NaN()}
	margins := make([]float64, a.Rows)
	nf := m.Features
	for i := range margins {
		idx, val := a.Row(i)
		var s float64
		for k, j := range idx {
			if int(j) < nf {
				s += val[k] * m.Weights[j]
			}
		}
		if m.Bias {
			s += m.Weights[nf]
		}
		margins[i] = s
	}
	if !m.Loss.Classification() {
		var se float64
		for i, v := range margins {
			r := v - y[i]
			se += r * r
		}
		res.RMSE = math.Sqrt(se / float64(max(a.Rows, 1)))
		res.Loss = se / (2 * float64(max(a.Rows, 1))) // the squared loss (m-y)^2/2
		return res, nil
	}
	pos, neg := m.Labels[0], m.Labels[1]
	sign := make([]float64, len(y))
	correct := 0
	var ll, own float64
	for i, v := range y {
		switch v {
		case pos:
			sign[i] = 1
		case neg:
			sign[i] = -1
		default:
			return res, fmt.Errorf("row %d: label %v is neither of the model's labels %v and %v", i+1, v, pos, neg)
		}
		if (margins[i] > 0) == (sign[i] > 0) {
			correct++
		}
		ll += kernels.Logistic.Value(margins[i], sign[i])
		own += m.Loss.Value(margins[i], sign[i])
	}
	res.Loss = own / float64(max(a.Rows, 1))
	res.Accuracy = float64(correct) / float64(max(a.Rows, 1))
	if m.Loss == kernels.Logistic {
		res.LogLoss = ll / float64(max(a.Rows, 1))
	}
	res.AUC = auc(margins, sign)
	return res, nil
}

// auc is the area under the ROC curve of scores for labels +-1, with ties
// counted half (the Mann-Whitney statistic).
func auc(score, label []float64) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case score[a] < score[b]:
			return -1
		case score[a] > score[b]:
			return 1
		}
		return 0
	})
	var nPos, nNeg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avgRank := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if label[idx[k]] > 0 {
				rankSum += avgRank
				nPos++
			} else {
				nNeg++
			}
		}
		i = j
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg)
}
