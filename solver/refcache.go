package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asyncmb/asyncmb/kernels"
)

// ProblemKey is the canonical description of a problem that keys the cache
// of optima: the data file's SHA-256, the dimension, whether a bias column
// was appended, the loss, and the regularizer with the parameters its kind
// uses (floats printed exactly). Two problems with the same key have the same
// optimum. The leading version is bumped when the solver behind the cached
// values changes: v2 is proximal Newton, whose optima are more accurate than
// v1's FISTA (which stopped short on ill-conditioned data), so v1 entries
// are not reused.
func ProblemKey(dataHash string, d int, bias bool, loss kernels.Loss, r Reg) string {
	var b strings.Builder
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	fmt.Fprintf(&b, "v2 data=%s d=%d bias=%t loss=%s reg=%s", dataHash, d, bias, loss, r.Kind)
	switch r.Kind {
	case RegL1, RegL2, RegGroup:
		b.WriteString(" lambda=" + f(r.Lambda))
	case RegElastic:
		b.WriteString(" lambda=" + f(r.Lambda) + " lambda2=" + f(r.Lambda2))
	case RegL1Box:
		b.WriteString(" lambda=" + f(r.Lambda) + " lo=" + f(r.Lo) + " hi=" + f(r.Hi))
	case RegBox:
		b.WriteString(" lo=" + f(r.Lo) + " hi=" + f(r.Hi))
	case RegBall:
		b.WriteString(" radius=" + f(r.Radius))
	}
	if r.Kind == RegGroup {
		sizes := make([]string, 0, len(r.Groups))
		for k := 0; k+1 < len(r.Groups); k++ {
			sizes = append(sizes, strconv.Itoa(r.Groups[k+1]-r.Groups[k]))
		}
		b.WriteString(" groups=" + strings.Join(sizes, ","))
	}
	return b.String()
}

// RefEntry is one cached optimum, stored as a small JSON file.
type RefEntry struct {
	Key       string  `json:"key"`
	Method    string  `json:"method"` // RefResult.Method of the solve
	Phi       float64 `json:"phi"`
	NNZ       int     `json:"nnz"`
	Iters     int     `json:"iters"`
	Converged bool    `json:"converged"`
	MapNorm   float64 `json:"map_norm"`
	Seconds   float64 `json:"seconds"` // wall time of the solve that produced it
}

// RefEntryOf is the cache entry of a solve that took the given time.
func RefEntryOf(key string, res RefResult, took time.Duration) RefEntry {
	return RefEntry{Key: key, Method: res.Method, Phi: res.Phi, NNZ: res.NNZ, Iters: res.Iters, Converged: res.Converged,
		MapNorm: res.MapNorm, Seconds: took.Seconds()}
}

// RefCachePath is the file that holds the optimum for key in dir:
// dir/ref-<first 24 hex digits of SHA-256(key)>.json.
func RefCachePath(dir, key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(dir, "ref-"+hex.EncodeToString(h[:12])+".json")
}

// ReadRefCache returns the cached optimum for key; ok is false (and err
// nil) when there is none. A file that does not parse or holds another key
// is an error.
func ReadRefCache(dir, key string) (e RefEntry, ok bool, err error) {
	path := RefCachePath(dir, key)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("solver: reference cache %s: %w", path, err)
	}
	if e.Key != key {
		return e, false, fmt.Errorf("solver: reference cache %s holds %q, want %q", path, e.Key, key)
	}
	return e, true, nil
}

// WriteRefCache stores e (under e.Key) in dir, creating dir if needed; the
// file is replaced atomically.
func WriteRefCache(dir string, e RefEntry) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(RefCachePath(dir, e.Key), append(b, '\n'))
}

// CachedReference is CachedReferenceContext without cancellation.
func CachedReference(dir, key string, p *Problem, opt RefOptions) (e RefEntry, cached bool, err error) {
	return CachedReferenceContext(context.Background(), dir, key, p, opt)
}

// CachedReferenceContext returns phi* for the problem keyed by key: from the
// cache in dir if present, else by running ReferenceContext on p (which must
// be the problem the key describes) and storing the result. cached says
// which. A solve that does not converge is returned but not cached; one
// stopped by ctx returns ctx.Err(). dir == "" disables the cache.
func CachedReferenceContext(ctx context.Context, dir, key string, p *Problem, opt RefOptions) (e RefEntry, cached bool, err error) {
	if dir != "" {
		if e, ok, err := ReadRefCache(dir, key); err != nil || ok {
			return e, ok, err
		}
	}
	start := time.Now()
	res, err := ReferenceContext(ctx, p, opt)
	e = RefEntryOf(key, res, time.Since(start))
	if err != nil {
		return e, false, err
	}
	if dir != "" && res.Converged {
		if err := WriteRefCache(dir, e); err != nil {
			return e, false, err
		}
	}
	return e, false, nil
}
