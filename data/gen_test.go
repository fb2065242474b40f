package data

import (
	"bytes"
	"crypto/sha256"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asyncmb/asyncmb/kernels"
)

func generate(t *testing.T, c GenConfig) []byte {
	t.Helper()
	var buf bytes.Buffer
	st, err := Generate(&buf, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != int64(c.Rows) || st.Bytes != int64(buf.Len()) {
		t.Fatalf("stats %+v for %d rows, %d bytes", st, c.Rows, buf.Len())
	}
	return buf.Bytes()
}

func TestGenerateDeterministic(t *testing.T) {
	c := GenConfig{Rows: 3000, Features: 500, Density: 0.02, Zipf: 1, Noise: 0.1, Seed: 7}
	a := generate(t, c)
	for _, w := range []int{1, 3} {
		c.Workers = w
		if b := generate(t, c); !bytes.Equal(a, b) {
			t.Fatalf("workers=%d: output differs (%x vs %x)", w, sha256.Sum256(a), sha256.Sum256(b))
		}
	}
	c.Seed = 8
	if b := generate(t, c); bytes.Equal(a, b) {
		t.Fatal("seeds 7 and 8 give the same output")
	}
}

// readGenerated writes out to a file and reads it back.
func readGenerated(t *testing.T, out []byte, opt Options) *Dataset {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gen")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Read(p, opt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGenerateShapes(t *testing.T) {
	cases := []struct {
		name string
		c    GenConfig
	}{
		{"sparse uniform", GenConfig{Rows: 2000, Features: 1000, Density: 0.01, Seed: 1}},
		{"sparse zipf", GenConfig{Rows: 2000, Features: 5000, Density: 0.004, Zipf: 1.1, Seed: 2}},
		{"half dense zipf", GenConfig{Rows: 500, Features: 100, Density: 0.5, Zipf: 2, Seed: 3}},
		{"dense", GenConfig{Rows: 300, Features: 40, Density: 1, Seed: 4}},
		{"regression", GenConfig{Rows: 1500, Features: 50, Density: 0.2, Task: Regression, Noise: 0.5, Seed: 5}},
		{"one feature", GenConfig{Rows: 10, Features: 1, Density: 0.5, Seed: 6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			d := readGenerated(t, generate(t, c), Options{Features: c.Features})
			if d.X.Rows != c.Rows || d.X.Cols != c.Features {
				t.Fatalf("shape %dx%d, want %dx%d", d.X.Rows, d.X.Cols, c.Rows, c.Features)
			}
			density := float64(d.X.NNZ()) / float64(c.Rows) / float64(c.Features)
			want := max(c.Density, 1/float64(c.Features))
			// Row counts are Binomial-like around the target: 5 sigma.
			sigma := math.Sqrt(float64(c.Rows)) / float64(c.Rows) / float64(c.Features)
			if math.Abs(density-want) > 5*sigma+1e-12 {
				t.Fatalf("density %g, want %g +- %g", density, want, 5*sigma)
			}
			for i := range d.X.Rows {
				_, val := d.X.Row(i)
				var n2 float64
				for _, v := range val {
					n2 += v * v
				}
				if math.Abs(math.Sqrt(n2)-1) > 1e-4 {
					t.Fatalf("row %d has norm %g, want 1", i, math.Sqrt(n2))
				}
			}
			vals := d.LabelValues()
			if c.Task == Classification {
				if len(vals) != 2 || vals[0] != -1 || vals[1] != 1 {
					t.Fatalf("labels %v, want -1 and 1", vals)
				}
			} else if len(vals) < c.Rows/2 {
				t.Fatalf("regression: only %d distinct targets", len(vals))
			}
		})
	}
}

// TestGenerateZipf checks that feature popularity falls off as j^-zipf:
// the ratio of the counts of features 1 and 10 is near 10^zipf at low
// density (drawing without replacement flattens it a little).
func TestGenerateZipf(t *testing.T) {
	c := GenConfig{Rows: 20000, Features: 1000, Density: 0.002, Zipf: 1, Seed: 9}
	d := readGenerated(t, generate(t, c), Options{Features: c.Features})
	counts := make([]int, c.Features)
	for _, j := range d.X.Indices {
		counts[j]++
	}
	ratio := float64(counts[0]) / float64(counts[9])
	if ratio < 7 || ratio > 12 {
		t.Fatalf("count(1)/count(10) = %d/%d = %.2f, want about 10", counts[0], counts[9], ratio)
	}
	if counts[0] <= counts[99] || counts[99] <= counts[999]/2 {
		t.Fatalf("counts not decreasing: %d %d %d", counts[0], counts[99], counts[999])
	}
}

// TestGeneratePlantedModel checks that labels follow one planted model:
// classes are balanced (w* is symmetric), noise flips a plausible share of
// labels without changing the rows, and noise-free regression targets are
// linear in the rows (a least-squares fit leaves only rounding residuals).
func TestGeneratePlantedModel(t *testing.T) {
	c := GenConfig{Rows: 4000, Features: 20, Density: 1, Seed: 11}
	var buf bytes.Buffer
	st, err := Generate(&buf, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if frac := float64(st.Positive) / float64(st.Rows); frac < 0.4 || frac > 0.6 {
		t.Fatalf("%.3f of labels are +1", frac)
	}
	clean := readGenerated(t, buf.Bytes(), Options{})
	c.Noise = 0.3
	noisy := readGenerated(t, generate(t, c), Options{})
	flips := 0
	for i := range clean.Y {
		if clean.Y[i] != noisy.Y[i] {
			flips++
		}
	}
	// Same seed: same rows, only the noise differs. Margins are ~N(0,1), so
	// noise 0.3 flips roughly a tenth of the labels.
	if flips < c.Rows/40 || flips > c.Rows/4 {
		t.Fatalf("%d of %d labels flipped by noise 0.3", flips, c.Rows)
	}
	if !slicesEqualRows(clean, noisy) {
		t.Fatal("noise changed the rows, not only the labels")
	}

	c = GenConfig{Rows: 2000, Features: 20, Density: 1, Task: Regression, Seed: 12, Digits: 12}
	reg := readGenerated(t, generate(t, c), Options{})
	if res := lstsqResidual(reg.Dense(), reg.Y); res > 1e-9 {
		t.Fatalf("noise-free regression: least-squares RMS residual %g, want rounding only", res)
	}
	c.Noise = 0.5
	reg = readGenerated(t, generate(t, c), Options{})
	if res := lstsqResidual(reg.Dense(), reg.Y); math.Abs(res-0.5) > 0.05 {
		t.Fatalf("regression with noise 0.5: RMS residual %g, want about 0.5", res)
	}
}

// lstsqResidual solves the normal equations A^T A w = A^T y by Gaussian
// elimination and returns the RMS of A w - y.
func lstsqResidual(a *kernels.Dense, y []float64) float64 {
	n := a.Cols
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n+1)
	}
	for r := range a.Rows {
		row := a.Row(r)
		for i := range n {
			for j := range n {
				m[i][j] += row[i] * row[j]
			}
			m[i][n] += row[i] * y[r]
		}
	}
	for p := range n {
		for i := p + 1; i < n; i++ {
			f := m[i][p] / m[p][p]
			for j := p; j <= n; j++ {
				m[i][j] -= f * m[p][j]
			}
		}
	}
	w := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := m[i][n]
		for j := i + 1; j < n; j++ {
			s -= m[i][j] * w[j]
		}
		w[i] = s / m[i][i]
	}
	var ss float64
	for r := range a.Rows {
		var p float64
		for j, v := range a.Row(r) {
			p += v * w[j]
		}
		ss += (p - y[r]) * (p - y[r])
	}
	return math.Sqrt(ss / float64(a.Rows))
}

func slicesEqualRows(a, b *Dataset) bool {
	y := a.Y
	a.Y = b.Y
	defer func() { a.Y = y }()
	return sameRows(a, b)
}

func TestGenConfigValidate(t *testing.T) {
	ok := GenConfig{Rows: 1, Features: 1, Density: 1}
	for _, c := range []struct {
		mod func(*GenConfig)
		msg string
	}{
		{func(c *GenConfig) { c.Rows = 0 }, "rows 0"},
		{func(c *GenConfig) { c.Features = 0 }, "features 0"},
		{func(c *GenConfig) { c.Density = 0 }, "density 0"},
		{func(c *GenConfig) { c.Density = math.NaN() }, "density NaN"},
		{func(c *GenConfig) { c.Density = 1.5 }, "density 1.5"},
		{func(c *GenConfig) { c.Density, c.Features = 0.5, MaxGenFeatures+1 }, "for sparse data"},
		{func(c *GenConfig) { c.Zipf = -1 }, "zipf -1"},
		{func(c *GenConfig) { c.Noise = math.Inf(1) }, "noise +Inf"},
		{func(c *GenConfig) { c.Task = 7 }, "unknown task"},
	} {
		cfg := ok
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want %q", cfg, err, c.msg)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}
