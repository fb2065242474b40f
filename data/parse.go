package data

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// builder accumulates parsed rows in CSR form. Its slices grow
// geometrically from what has been read, never from a count in the file.
type builder struct {
	limit    int // largest allowed 1-based index (Features, or maxIndex)
	indptr   []int64
	indices  []int32
	values   []float64
	y        []float64
	maxIndex int

	total  int64 // bytes to be parsed (the shard's range), for growth estimates
	parsed int64 // bytes of lines parsed so far
}

func newBuilder(features int, total int64) *builder {
	// Start small (a few KiB of text); reserve grows the slices as lines come.
	limit := maxIndex
	if features > 0 {
		limit = features
	}
	return &builder{
		limit:   limit,
		indptr:  make([]int64, 1, 1024),
		indices: make([]int32, 0, 4096),
		values:  make([]float64, 0, 4096),
		y:       make([]float64, 0, 1024),
		total:   total,
	}
}

// reserve makes room for a line of n bytes: at most n/4+1 entries
// ("i:v" plus a separator) and one row, so appends in parseLine never
// reallocate. When a slice is full it grows to the larger of twice its size
// and the count projected for the whole range from the bytes parsed so far
// (plus 1/8), so a file is usually parsed with one or two reallocations.
func (b *builder) reserve(n int) {
	b.parsed += int64(n) + 1
	need := n/4 + 1
	if len(b.indices)+need > cap(b.indices) {
		c := b.grow(len(b.indices), need, cap(b.indices))
		b.indices = slices.Grow(b.indices, c-len(b.indices))
		b.values = slices.Grow(b.values, c-len(b.values))
	}
	if len(b.y)+1 > cap(b.y) {
		c := b.grow(len(b.y), 1, cap(b.y))
		b.y = slices.Grow(b.y, c-len(b.y))
		b.indptr = slices.Grow(b.indptr, c+1-len(b.indptr))
	}
}

// grow returns the new capacity for a slice of length have that needs need
// more elements and has capacity old.
func (b *builder) grow(have, need, old int) int {
	c := max(2*old, have+need)
	if b.parsed > 0 && b.parsed < b.total {
		proj := float64(have) * float64(b.total) / float64(b.parsed) * 1.125
		if proj > float64(c) && proj < float64(b.total) {
			c = int(proj)
		}
	}
	return c
}

// lineError is a defect found on a line: col is the 0-based byte column.
// err == nil means no defect.
type lineError struct {
	col int
	msg string
	err error
}

// parseLine parses one line (without its '\n') and appends its row, if it
// has one: blank lines and comment lines add nothing. On a defect the
// builder is left in an unspecified state and must be discarded.
func (b *builder) parseLine(line []byte) lineError {
	b.reserve(len(line))
	if k := bytes.IndexByte(line, '#'); k >= 0 {
		line = line[:k]
	}
	if k := bytes.IndexByte(line, 0); k >= 0 {
		return lineError{k, "NUL byte: this looks like a binary file, not LIBSVM text", ErrBinary}
	}
	n := len(line)
	i := 0
	for i < n && isSpace(line[i]) {
		i++
	}
	if i == n {
		return lineError{}
	}
	y, j, ok := parseFloat(line, i)
	if !ok {
		return badNumber(line, i, "label", "a number such as -1, +1, 0 or 2.5")
	}
	prev := 0
	for {
		i = j
		for i < n && isSpace(line[i]) {
			i++
		}
		if i == n {
			break
		}
		// Fast path: digits and ':' for a valid next index, then a number;
		// anything unusual is re-examined by the slower, checking code.
		idx, k := 0, i
		for k < n && line[k]-'0' < 10 {
			idx = idx*10 + int(line[k]-'0')
			k++
		}
		if k == i || k-i > 18 || k == n || line[k] != ':' || idx <= prev || idx > b.limit {
			if line[i] == 'q' && bytes.HasPrefix(line[i:], []byte("qid:")) {
				if _, k, ok := parseIndex(line, i+4); !ok || (k < n && !isSpace(line[k])) {
					return lineError{i, fmt.Sprintf("bad query id %q: expected qid:N with N a non-negative integer", token(line, i)), ErrSyntax}
				}
				j = tokenEnd(line, i)
				continue
			}
			return b.featureError(line, i, prev)
		}
		k++
		v, next, ok := parseFloat(line, k)
		if !ok {
			if k == n || isSpace(line[k]) {
				return lineError{k, fmt.Sprintf("missing value after '%d:': expected index:value", idx), ErrSyntax}
			}
			return badNumber(line, k, fmt.Sprintf("value of feature %d", idx), "a number")
		}
		b.indices = append(b.indices, int32(idx-1))
		b.values = append(b.values, v)
		prev = idx
		j = next
	}
	b.y = append(b.y, y)
	b.indptr = append(b.indptr, int64(len(b.indices)))
	if prev > b.maxIndex {
		b.maxIndex = prev
	}
	return lineError{}
}

// featureError explains what is wrong with the feature token at line[i]
// (prev is the previous index on the line), as the fast path in parseLine
// found it not to be a valid "index:" prefix.
func (b *builder) featureError(line []byte, i, prev int) lineError {
	n := len(line)
	idx, k, ok := parseIndex(line, i)
	switch {
	case !ok && k > i: // digits, but too many
		return lineError{i, fmt.Sprintf("feature index %q is larger than %d", token(line, i), maxIndex), ErrSyntax}
	case !ok && line[i] == ':':
		return lineError{i, fmt.Sprintf("missing feature index before ':' in %q: expected index:value", token(line, i)), ErrSyntax}
	case !ok:
		return badText(line, i, fmt.Sprintf("bad feature %q: expected index:value with a positive integer index", token(line, i)))
	case k == n || isSpace(line[k]):
		return lineError{k, fmt.Sprintf("missing ':' after feature index %d: expected index:value", idx), ErrSyntax}
	case line[k] != ':':
		return badText(line, k, fmt.Sprintf("bad feature %q: expected ':' after the index", token(line, i)))
	case idx == 0:
		return lineError{i, "feature index 0: LIBSVM indices start at 1", ErrSyntax}
	case idx == prev:
		return lineError{i, fmt.Sprintf("repeated feature index %d: indices must increase along a line", idx), ErrSyntax}
	case idx < prev:
		return lineError{i, fmt.Sprintf("feature index %d after %d: indices must increase along a line", idx, prev), ErrSyntax}
	case idx > b.limit:
		return lineError{i, fmt.Sprintf("feature index %d is beyond the dimension %d (--features)", idx, b.limit), ErrFeatures}
	}
	return lineError{i, fmt.Sprintf("bad feature %q", token(line, i)), ErrSyntax} // not reached
}

// token returns the token starting at s[i], cut to 40 bytes for messages.
func token(s []byte, i int) []byte {
	t := s[i:tokenEnd(s, i)]
	if len(t) > 40 {
		t = t[:40]
	}
	return t
}

// badNumber explains why the number token at s[i] was rejected: not finite,
// out of range, binary junk, or not a number.
func badNumber(s []byte, i int, what, want string) lineError {
	tok := s[i:tokenEnd(s, i)]
	f, err := strconv.ParseFloat(string(tok), 64)
	switch {
	case err == nil && (math.IsNaN(f) || math.IsInf(f, 0)):
		return lineError{i, fmt.Sprintf("%s is %q: NaN and Inf are not allowed", what, token(s, i)), ErrNotFinite}
	case err != nil && errorsIsRange(err):
		return lineError{i, fmt.Sprintf("%s %q is out of the float64 range", what, token(s, i)), ErrNotFinite}
	}
	return badText(s, i, fmt.Sprintf("bad %s %q: expected %s", what, token(s, i), want))
}

func errorsIsRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// badText returns a syntax error for the token at s[i], or a binary-data
// error if the token holds control bytes or is not valid UTF-8.
func badText(s []byte, i int, msg string) lineError {
	tok := s[i:tokenEnd(s, i)]
	for k, c := range tok {
		if c < 0x20 || c == 0x7f {
			return lineError{i + k, fmt.Sprintf("control byte 0x%02x: this looks like a binary file, not LIBSVM text", c), ErrBinary}
		}
	}
	if !utf8.Valid(tok) {
		return lineError{i, fmt.Sprintf("invalid UTF-8 text %q: this looks like a binary file, not LIBSVM text", token(s, i)), ErrBinary}
	}
	return lineError{i, msg, ErrSyntax}
}
