package data

import (
	"errors"
	"fmt"
)

// Sentinel errors. A *ParseError wraps one of them (test with errors.Is).
var (
	// ErrSyntax: a token is not what LIBSVM allows at its place (bad label,
	// index 0, missing colon, decreasing or repeated index, bad value).
	ErrSyntax = errors.New("data: syntax error")
	// ErrNotFinite: a label or value is NaN or ±Inf.
	ErrNotFinite = errors.New("data: value is not finite")
	// ErrFeatures: an index is beyond Options.Features (or the dimension set by SetCols).
	ErrFeatures = errors.New("data: index beyond the dimension")
	// ErrEmpty: the file holds no rows (it is empty or only comments/blank lines).
	ErrEmpty = errors.New("data: no rows")
	// ErrBinary: the file holds NUL bytes or other non-text bytes where tokens belong.
	ErrBinary = errors.New("data: binary data in a text file")
	// ErrLineTooLong: a line is longer than Options.MaxLine.
	ErrLineTooLong = errors.New("data: line too long")
	// ErrLabels: the labels cannot be mapped to -1/+1 (more than two classes,
	// one class only, or a label outside a given LabelMap).
	ErrLabels = errors.New("data: labels are not binary")
)

// ParseError reports where and why a LIBSVM file could not be read. Line and
// Col are 1-based (Col counts bytes); Line is the line number in the whole
// file, also for shards. Offset is the byte offset of the line's start.
type ParseError struct {
	Path   string
	Line   int
	Col    int
	Offset int64
	Msg    string // what was found and what was expected
	Err    error  // one of the Err* sentinels, or an I/O error
}

func (e *ParseError) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
}

// Unwrap returns the sentinel (or I/O error) behind e.
func (e *ParseError) Unwrap() error { return e.Err }
