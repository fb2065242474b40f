package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// runCLI runs asyncmb with args and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"asyncmb"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// field returns the value printed after key in info output.
func field(t *testing.T, out, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + key + ` +(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", key, out)
	}
	return m[1]
}

// checkInfo runs `asyncmb info [flags...] path` and checks the given fields,
// the size and the SHA-256 of the file.
func checkInfo(t *testing.T, path string, want map[string]string, flags ...string) {
	t.Helper()
	out, errOut, code := runCLI(t, append(append([]string{"info"}, flags...), path)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for k, v := range want {
		if got := field(t, out, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := field(t, out, "size"); !strings.HasPrefix(got, strconv.Itoa(len(content))+" bytes (") {
		t.Errorf("size = %q, want %d bytes", got, len(content))
	}
	sum := sha256.Sum256(content)
	if got := field(t, out, "sha256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 = %q, want %x", got, sum)
	}
}

func TestInfoTestdata(t *testing.T) {
	binary := "-1 -> -1, 1 -> +1"
	for _, c := range []struct {
		file, samples, features, nnz, density, labels, binary string
	}{
		{"heart_scale", "270", "13", "3378", "0.962393", "2 values: -1 (150 rows), 1 (120 rows)", binary},
		{"a9a", "32561", "123", "451592", "0.112757", "2 values: -1 (24720 rows), 1 (7841 rows)", binary},
		{"a9a.t", "16281", "123", "225732", "0.112722", "2 values: -1 (12435 rows), 1 (3846 rows)", binary},
		{"rcv1_small", "1000", "47117", "77739", "0.00164991", "2 values: -1 (541 rows), 1 (459 rows)", binary},
		{"abalone_scale", "4177", "8", "32080", "0.960019", "multiclass: 28 labels: 1 (1 row), 2 (1 row), 3 (15 rows), 4 (57 rows), 5 (115 rows), 6 (259 rows), 7 (391 rows), 8 (568 rows), 9 (689 rows), 10 (634 rows), 11 (487 rows), 12 (267 rows), 13 (203 rows), 14 (126 rows), 15 (103 rows), 16 (67 rows), 17 (58 rows), 18 (42 rows), 19 (32 rows), 20 (26 rows), ... (8 more)",
			"none: 28 classes (--loss logistic trains one softmax model, --multiclass ovr 28 one-vs-rest problems; a regression loss reads them as targets: min 1, max 29, mean 9.93368)"},
		{"wine.sklearn", "178", "13", "2314", "1", "multiclass: 3 labels: 1 (59 rows), 2 (71 rows), 3 (48 rows)",
			"none: 3 classes (--loss logistic trains one softmax model, --multiclass ovr 3 one-vs-rest problems; a regression loss reads them as targets: min 1, max 3, mean 1.9382)"},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("..", "..", "testdata", c.file)
			samples, _ := strconv.Atoi(c.samples)
			nnz, _ := strconv.Atoi(c.nnz)
			checkInfo(t, path, map[string]string{
				"file":     path,
				"samples":  c.samples,
				"features": c.features + " (largest index)",
				"nonzeros": c.nnz,
				"density":  c.density + " (" + strconv.FormatFloat(float64(nnz)/float64(samples), 'f', 2, 64) + " nonzeros per row)",
				"labels":   c.labels,
				"binary":   c.binary,
			})
		})
	}
	// A test set read with its training set's dimension.
	checkInfo(t, filepath.Join("..", "..", "testdata", "heart_scale"), map[string]string{
		"features": "20 (--features; largest index 13)",
		"density":  "0.625556 (12.51 nonzeros per row)",
	}, "--features", "20")
}

// TestInfoLabels checks the label report and binary mapping on small files
// with the label conventions found in LIBSVM data sets.
func TestInfoLabels(t *testing.T) {
	for _, c := range []struct {
		name, labels, wantLabels, wantBinary string
	}{
		{"zero-one", "0 1 1 0 1", "2 values: 0 (2 rows), 1 (3 rows)", "0 -> -1, 1 -> +1"},
		{"one-two", "2 1 2", "2 values: 1 (1 row), 2 (2 rows)", "1 -> -1, 2 -> +1"},
		{"two-four", "4 2 2 2", "2 values: 2 (3 rows), 4 (1 row)", "2 -> -1, 4 -> +1"},
		{"minus-plus", "+1 -1 -1", "2 values: -1 (2 rows), 1 (1 row)", "-1 -> -1, 1 -> +1"},
		{"one class", "1 1", "1 value: 1 (2 rows)", "undefined: one class only (a test set can use its training set's mapping)"},
		{"three classes", "1 2 3", "multiclass: 3 labels: 1 (1 row), 2 (1 row), 3 (1 row)",
			"none: 3 classes (--loss logistic trains one softmax model, --multiclass ovr 3 one-vs-rest problems; a regression loss reads them as targets: min 1, max 3, mean 2)"},
		{"three fractional", "0.5 1 2", "3 values: 0.5 (1 row), 1 (1 row), 2 (1 row)",
			"none: 3 distinct labels (a classification loss needs exactly two, or more than two integer labels)"},
		{"regression", "0.5 1.25 -3 7 8 9 10 11 12 13 14 15", "regression: 12 distinct targets, min -3, max 15, mean 8.14583",
			"none: 12 distinct labels (a classification loss needs exactly two, or more than two integer labels)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sb strings.Builder
			for i, l := range strings.Fields(c.labels) {
				sb.WriteString(l + " 1:1 " + strconv.Itoa(i+2) + ":0.5\n")
			}
			path := filepath.Join(t.TempDir(), "f.svm")
			if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			n := len(strings.Fields(c.labels))
			checkInfo(t, path, map[string]string{
				"samples":  strconv.Itoa(n),
				"nonzeros": strconv.Itoa(2 * n),
				"features": strconv.Itoa(n+1) + " (largest index)",
				"labels":   c.wantLabels,
				"binary":   c.wantBinary,
			})
		})
	}
}

func TestInfoErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.svm")
	if err := os.WriteFile(bad, []byte("1 1:1 2:1\n-1 3:1 2:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad file", []string{"info", bad}, 1, bad + ":2:8: feature index 2 after 3"},
		{"index beyond --features", []string{"info", "--features", "2", bad}, 1, bad + ":2:4: feature index 3 is beyond the dimension 2"},
		{"missing file", []string{"info", filepath.Join(dir, "nope")}, 1, "no such file"},
		{"no file", []string{"info"}, 2, "want exactly one FILE"},
		{"two files", []string{"info", bad, bad}, 2, "want exactly one FILE"},
		{"bad flag", []string{"info", "--bogus", bad}, 2, "flag provided but not defined: -bogus"},
		{"bad flag value", []string{"info", "--features", "x", bad}, 2, "invalid value \"x\""},
		{"negative features", []string{"info", "--features", "-3", bad}, 2, "--features -3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q (stdout %q)", code, errOut, c.code, c.msg, out)
			}
		})
	}
}

func TestInfoFeaturesEnv(t *testing.T) {
	t.Setenv("ASYNCMB_FEATURES", "30")
	out, errOut, code := runCLI(t, "info", filepath.Join("..", "..", "testdata", "heart_scale"))
	if code != 0 || field(t, out, "features") != "30 (--features; largest index 13)" {
		t.Fatalf("exit %d %s\n%s", code, errOut, out)
	}
}
