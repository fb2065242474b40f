package solver

// AvgKind names the output of a run: the last iterate or an average of the
// iterates.
type AvgKind uint8

// The averages. The k-th iterate added (k = 1, 2, ...) is x_k:
//
//	AvgLast:     x_T
//	AvgUniform:  (1/T) sum_{k=1..T} x_k
//	AvgWeighted: sum_k (k + t0) x_k / sum_k (k + t0)      (t0 = Averager.T0)
//	AvgTail:     the uniform average of a suffix covering at least the last
//	             half of the iterates (see below)
//
// AvgTail without a horizon does not need T in advance: it keeps the
// averages of two blocks, the previous one [2^(j-1), 2^j) and the current one
// [2^j, k], and restarts at every power of two (the current block becomes the
// previous one). Its output, the average over [2^(j-1), T], covers between
// the last half and the last three quarters of the T iterates. With
// Averager.Horizon = H > 0 it is instead exactly the average of x_k for
// k > H/2 (the last half of a run known to stop at H).
const (
	AvgLast AvgKind = iota
	AvgUniform
	AvgWeighted
	AvgTail
	numAvgKinds
)

var avgNames = [numAvgKinds]string{"last", "uniform", "weighted", "tail"}

// AvgNames lists the accepted names, in AvgKind order.
func AvgNames() []string { return avgNames[:] }

// ParseAvgKind maps a name of AvgNames to its AvgKind.
func ParseAvgKind(s string) (AvgKind, error) { return parseName[AvgKind](avgNames[:], "average", s) }

func (k AvgKind) String() string { return nameOf(avgNames[:], "AvgKind", k) }

// Averager is the running average of the iterates, a small state machine:
// Add one iterate after each update, read the output with Value. All its
// state is in exported fields so that a checkpoint can save and restore it.
// It owns Cur and Prev (allocated on the first Add). Not safe for concurrent
// use.
type Averager struct {
	Kind    AvgKind
	T0      float64 // AvgWeighted: weight offset
	Horizon int64   // AvgTail: if > 0, average exactly the iterates k > Horizon/2

	N     int64     // iterates added so far
	W     float64   // AvgWeighted: sum of the weights so far
	Cur   []float64 // the running average (of the current block for AvgTail)
	CurN  int64     // AvgTail: iterates in Cur
	Prev  []float64 // AvgTail: average of the previous block
	PrevN int64     // AvgTail: iterates in Prev
}

// Add records the next iterate x (only read). O(d), no allocation after the
// first call.
func (a *Averager) Add(x []float64) {
	a.N++
	if a.Kind == AvgLast {
		return
	}
	if a.Cur == nil {
		a.Cur = make([]float64, len(x))
	}
	if len(x) != len(a.Cur) {
		panic("solver: Averager.Add dimension changed")
	}
	switch a.Kind {
	case AvgUniform:
		mixInto(a.Cur, x, 1/float64(a.N))
	case AvgWeighted:
		w := float64(a.N) + a.T0
		a.W += w
		mixInto(a.Cur, x, w/a.W)
	case AvgTail:
		if a.Horizon > 0 {
			if a.N <= a.Horizon/2 {
				return
			}
		} else if a.N >= 2 && a.N&(a.N-1) == 0 { // a power of two: new block
			if a.Prev == nil {
				a.Prev = make([]float64, len(x))
			}
			a.Prev, a.Cur = a.Cur, a.Prev
			a.PrevN, a.CurN = a.CurN, 0
		}
		a.CurN++
		mixInto(a.Cur, x, 1/float64(a.CurN))
	default:
		panic("solver: Averager of unknown kind")
	}
}

// mixInto does avg += c (x - avg); with c = 1 it copies x.
func mixInto(avg, x []float64, c float64) {
	x = x[:len(avg)]
	if c == 1 {
		copy(avg, x)
		return
	}
	for i, v := range x {
		avg[i] += c * (v - avg[i])
	}
}

// Value writes the output into dst: the average, or x (the current iterate)
// for AvgLast and while nothing has been averaged yet. dst may be x.
func (a *Averager) Value(x, dst []float64) {
	if len(dst) != len(x) {
		panic("solver: Averager.Value len(dst) != len(x)")
	}
	switch {
	case a.Kind == AvgLast || a.N == 0 || a.Cur == nil || (a.Kind == AvgTail && a.CurN == 0):
		copy(dst, x)
	case a.Kind == AvgTail && a.PrevN > 0:
		wp := float64(a.PrevN) / float64(a.PrevN+a.CurN)
		for i := range dst {
			dst[i] = a.Cur[i] + wp*(a.Prev[i]-a.Cur[i])
		}
	default:
		copy(dst, a.Cur)
	}
}

// Reset forgets every iterate, keeping the kind, T0, Horizon and buffers.
func (a *Averager) Reset() {
	a.N, a.W, a.CurN, a.PrevN = 0, 0, 0, 0
	clear(a.Cur)
	clear(a.Prev)
}
