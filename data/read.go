package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/asyncmb/asyncmb/kernels"
)

// DefaultMaxLine is the longest line (in bytes, without its newline) the
// reader accepts when Options.MaxLine is 0. A longer line is an error
// (ErrLineTooLong): it bounds the memory a hostile or corrupt file can take.
const DefaultMaxLine = 64 << 20

// readChunk is the size of each read from the file inside a byte range.
const readChunk = 256 << 10

// tailChunk is the size of each read past the end of a shard's byte range,
// where only the rest of one line is wanted.
const tailChunk = 512

// Options control parsing. The zero value is ready to use.
type Options struct {
	// Features > 0 fixes the dimension: an index beyond it is an error
	// (ErrFeatures) and X.Cols is Features. 0 means the dimension is the
	// largest index in the file (or shard).
	Features int
	// MaxLine is the longest accepted line in bytes; 0 means DefaultMaxLine.
	MaxLine int
	// Workers is how many goroutines Read may use (one byte range each, at
	// least MinPiece bytes); 0 means GOMAXPROCS, 1 parses serially.
	// ReadShard always uses one.
	Workers int
}

func (o Options) validate() error {
	if o.Features < 0 || o.Features > maxIndex {
		return fmt.Errorf("data: Features=%d outside [0, %d]", o.Features, maxIndex)
	}
	if o.Workers < 0 {
		return fmt.Errorf("data: Workers=%d is negative", o.Workers)
	}
	if o.MaxLine < 0 {
		return fmt.Errorf("data: MaxLine=%d is negative", o.MaxLine)
	}
	return nil
}

// ReadBinary reads the LIBSVM file at path with default Options and maps
// its labels to -1/+1 (Dataset.ToBinary; an error names the file).
func ReadBinary(path string) (*Dataset, error) {
	ds, err := Read(path, Options{})
	if err != nil {
		return nil, err
	}
	if _, err := ds.ToBinary(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ds, nil
}

// Read parses the whole LIBSVM file at path. A file without any row is an
// error (ErrEmpty). Defects are reported as *ParseError naming the file,
// line and column (the first defect in the file, also when parsing in
// parallel). Files of at least 2*MinPiece bytes are parsed by up to
// opt.Workers goroutines, each on its own byte range, and the pieces are
// concatenated (at peak this holds the pieces and the result, about twice
// the CSR's memory; Workers: 1 avoids that).
func Read(path string, opt Options) (*Dataset, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, size, path, opt)
}

// readAll is Read on any ReaderAt of size bytes (size > 0).
func readAll(f io.ReaderAt, size int64, path string, opt Options) (*Dataset, error) {
	w := opt.Workers
	if w == 0 {
		w = runtime.GOMAXPROCS(0)
	}
	w = int(max(1, min(int64(w), size/MinPiece)))
	parts := make([]*Dataset, w)
	errs := make([]error, w)
	var wg sync.WaitGroup
	for k := range w {
		wg.Go(func() {
			start, end := shardRange(size, k, w)
			parts[k], errs[k] = readRange(f, path, start, end, opt)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	d := concat(parts)
	d.Size = size
	if d.X.Rows == 0 {
		return nil, &ParseError{Path: path, Msg: "no rows: the file holds only comments and blank lines", Err: ErrEmpty}
	}
	return d, nil
}

// MinPiece is the smallest byte range Read gives one goroutine.
const MinPiece = 1 << 20

// concat joins consecutive byte-range pieces of one file into one Dataset.
// A single piece is returned as is.
func concat(parts []*Dataset) *Dataset {
	if len(parts) == 1 {
		return parts[0]
	}
	var rows, nnz int
	first, last := parts[0], parts[len(parts)-1]
	d := &Dataset{Path: first.Path, Start: first.Start, End: last.End}
	for _, p := range parts {
		rows += p.X.Rows
		nnz += p.X.NNZ()
		d.MaxIndex = max(d.MaxIndex, p.MaxIndex)
		d.X.Cols = max(d.X.Cols, p.X.Cols)
		d.BytesRead += p.BytesRead
	}
	d.X.Rows = rows
	d.X.Indptr = make([]int64, 1, rows+1)
	d.X.Indices = make([]int32, 0, nnz)
	d.X.Data = make([]float64, 0, nnz)
	d.Y = make([]float64, 0, rows)
	for _, p := range parts {
		base := int64(len(d.X.Indices))
		for _, q := range p.X.Indptr[1:] {
			d.X.Indptr = append(d.X.Indptr, base+q)
		}
		d.X.Indices = append(d.X.Indices, p.X.Indices...)
		d.X.Data = append(d.X.Data, p.X.Data...)
		d.Y = append(d.Y, p.Y...)
	}
	return d
}

// openSized opens path and returns its size; an empty file is ErrEmpty.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("data: %s is not a regular file (the reader needs its size and random access)", path)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, 0, &ParseError{Path: path, Msg: "no rows: the file is empty", Err: ErrEmpty}
	}
	return f, st.Size(), nil
}

// ReadShard parses shard k of K of the file at path: the rows whose lines
// start in the byte range [k*size/K, (k+1)*size/K). It seeks to the start of
// the range and reads only the range plus the rest of its last line, so K
// workers can read one large file in parallel, each holding its part; the K
// shards together hold every row of the file exactly once, in order.
//
// A shard may be empty (more shards than lines); an empty file is an error
// (ErrEmpty). X.Cols is opt.Features if set, otherwise the shard's own
// MaxIndex: callers combining shards agree on the dimension with SetCols.
func ReadShard(path string, k, K int, opt Options) (*Dataset, error) {
	if K < 1 || k < 0 || k >= K {
		return nil, fmt.Errorf("data: shard %d of %d: want 0 <= k < K", k, K)
	}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start, end := shardRange(size, k, K)
	d, err := readRange(f, path, start, end, opt)
	if err != nil {
		return nil, err
	}
	d.Size = size
	return d, nil
}

// shardRange returns [k*size/K, (k+1)*size/K) without overflowing int64.
func shardRange(size int64, k, K int) (int64, int64) {
	at := func(k int) int64 {
		q, r := size/int64(K), size%int64(K)
		return q*int64(k) + r*int64(k)/int64(K)
	}
	return at(k), at(k + 1)
}

// readRange parses the lines of f that start in [start, end).
func readRange(f io.ReaderAt, path string, start, end int64, opt Options) (*Dataset, error) {
	maxLine := opt.MaxLine
	if maxLine == 0 {
		maxLine = DefaultMaxLine
	}
	pos := start
	if start > 0 {
		// Read from the byte before the range: if it is a newline, a line
		// starts at start; otherwise the partial line is skipped below.
		pos = start - 1
	}
	if start == 0 {
		if err := checkCompressed(f, path); err != nil {
			return nil, err
		}
	}
	br := &boundedReader{r: f, pos: pos, end: end}
	lr := newLineReader(br, pos, maxLine)
	b := newBuilder(opt.Features, end-start)
	skip := start > 0
	for {
		if !skip && lr.pos() >= end {
			break // the next line starts beyond the range: do not read it
		}
		line, ls, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, withLine(f, path, err)
		}
		if skip {
			skip = false
			continue
		}
		if le := b.parseLine(line); le.err != nil {
			return nil, withLine(f, path, &ParseError{Offset: ls, Col: le.col + 1, Msg: le.msg, Err: le.err})
		}
	}
	rows := len(b.y)
	cols := b.maxIndex
	if opt.Features > 0 {
		cols = opt.Features
	}
	return &Dataset{
		X: kernels.CSR{
			Rows:    rows,
			Cols:    cols,
			Indptr:  b.indptr,
			Indices: b.indices,
			Data:    b.values,
		},
		Y:         b.y,
		MaxIndex:  b.maxIndex,
		Path:      path,
		Start:     start,
		End:       end,
		BytesRead: br.read,
	}, nil
}

// compressedMagic are the first bytes of compressed files LIBSVM data sets
// are often distributed as.
var compressedMagic = []struct {
	magic, name, tool string
}{
	{"\x1f\x8b", "gzip", "gunzip"},
	{"BZh", "bzip2", "bunzip2"},
	{"\xfd7zXZ\x00", "xz", "unxz"},
	{"\x28\xb5\x2f\xfd", "zstd", "unzstd"},
}

// checkCompressed returns an ErrBinary *ParseError naming the format if f
// starts like a compressed file.
func checkCompressed(f io.ReaderAt, path string) error {
	var head [6]byte
	n, _ := f.ReadAt(head[:], 0)
	for _, c := range compressedMagic {
		if bytes.HasPrefix(head[:n], []byte(c.magic)) {
			return &ParseError{Path: path, Line: 1, Col: 1, Err: ErrBinary,
				Msg: fmt.Sprintf("this is a %s-compressed file, not LIBSVM text: decompress it first (%s)", c.name, c.tool)}
		}
	}
	return nil
}

// withLine completes a *ParseError from the line reader or parser with the
// path and the line number, found by counting newlines before its offset (a
// second read of the file's prefix, paid only on error). Other errors are
// wrapped with the path.
func withLine(f io.ReaderAt, path string, err error) error {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("data: reading %s: %w", path, err)
	}
	pe.Path = path
	n, cerr := countNewlines(f, pe.Offset)
	if cerr != nil {
		return fmt.Errorf("data: reading %s: %w", path, cerr)
	}
	pe.Line = int(n) + 1
	return pe
}

// countNewlines counts '\n' bytes in f[0:off).
func countNewlines(f io.ReaderAt, off int64) (int64, error) {
	buf := make([]byte, readChunk)
	var n, pos int64
	for pos < off {
		m := int(min(int64(len(buf)), off-pos))
		k, err := f.ReadAt(buf[:m], pos)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		pos += int64(k)
		if err != nil && !(err == io.EOF && pos >= off) {
			return n, err
		}
	}
	return n, nil
}

// boundedReader reads r from pos on, in large reads up to end, then in
// tailChunk reads, so a shard reads at most its range plus one line plus
// tailChunk bytes. It counts the bytes read. It uses ReadAt, so several
// boundedReaders may share one file.
type boundedReader struct {
	r    io.ReaderAt
	pos  int64
	end  int64
	read int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	limit := int64(tailChunk)
	if b.pos < b.end {
		limit = b.end - b.pos
	}
	if int64(len(p)) > limit {
		p = p[:limit]
	}
	n, err := b.r.ReadAt(p, b.pos)
	if n > 0 && err == io.EOF {
		err = nil // report EOF on the next call, as io.Reader does
	}
	b.pos += int64(n)
	b.read += int64(n)
	return n, err
}

// lineReader splits a reader into lines, reusing one buffer that grows
// (doubling) only while a single line does not fit, up to maxLine.
type lineReader struct {
	r       io.Reader
	buf     []byte
	lo, hi  int   // unconsumed bytes are buf[lo:hi]
	scan    int   // buf[lo:scan] is known to hold no '\n'
	nulScan int   // buf[lo:nulScan] is known to hold no NUL (checked for long lines only)
	off     int64 // file offset of buf[0]
	eof     bool
	maxLine int
}

func newLineReader(r io.Reader, off int64, maxLine int) *lineReader {
	return &lineReader{r: r, buf: make([]byte, min(readChunk, maxLine+1)), off: off, maxLine: maxLine}
}

// pos is the file offset of the next line's first byte.
func (lr *lineReader) pos() int64 { return lr.off + int64(lr.lo) }

// longLine is the length past which an unfinished line is checked for NUL
// bytes, so a binary file without newlines is rejected early instead of
// after maxLine bytes.
const longLine = 64 << 10

// next returns the next line without its '\n' (a sub-slice of the buffer,
// valid until the next call) and the file offset of its first byte. It
// returns io.EOF after the last line. A line longer than maxLine, or a long
// line holding NUL bytes, is a *ParseError without Path and Line.
func (lr *lineReader) next() ([]byte, int64, error) {
	for {
		if k := bytes.IndexByte(lr.buf[lr.scan:lr.hi], '\n'); k >= 0 {
			end := lr.scan + k
			line, start := lr.buf[lr.lo:end], lr.off+int64(lr.lo)
			lr.lo, lr.scan, lr.nulScan = end+1, end+1, end+1
			return line, start, nil
		}
		lr.scan = lr.hi
		pending := lr.hi - lr.lo
		if pending > lr.maxLine {
			return nil, 0, &ParseError{Offset: lr.off + int64(lr.lo), Col: lr.maxLine + 1,
				Msg: fmt.Sprintf("line longer than %d bytes (the MaxLine limit): is this a LIBSVM file?", lr.maxLine), Err: ErrLineTooLong}
		}
		if pending > longLine {
			if k := bytes.IndexByte(lr.buf[lr.nulScan:lr.hi], 0); k >= 0 {
				return nil, 0, &ParseError{Offset: lr.off + int64(lr.lo), Col: lr.nulScan + k - lr.lo + 1,
					Msg: "NUL byte: this looks like a binary file, not LIBSVM text", Err: ErrBinary}
			}
			lr.nulScan = lr.hi
		}
		if lr.eof {
			if pending > 0 {
				line, start := lr.buf[lr.lo:lr.hi], lr.off+int64(lr.lo)
				lr.lo = lr.hi
				return line, start, nil
			}
			return nil, 0, io.EOF
		}
		if err := lr.fill(); err != nil {
			return nil, 0, err
		}
	}
}

// fill reads more bytes, first moving the unconsumed bytes to the front of
// the buffer and, if the buffer is still full, doubling it (up to maxLine+1
// bytes, enough for one maximal line and the byte that proves it too long).
func (lr *lineReader) fill() error {
	if lr.lo > 0 {
		n := copy(lr.buf, lr.buf[lr.lo:lr.hi])
		lr.off += int64(lr.lo)
		lr.scan -= lr.lo
		lr.nulScan -= lr.lo
		lr.hi = n
		lr.lo = 0
	}
	if lr.hi == len(lr.buf) {
		nb := make([]byte, min(2*len(lr.buf), lr.maxLine+1))
		copy(nb, lr.buf[:lr.hi])
		lr.buf = nb
	}
	for tries := 0; tries < 100; tries++ {
		n, err := lr.r.Read(lr.buf[lr.hi:])
		lr.hi += n
		if err == io.EOF {
			lr.eof = true
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}
