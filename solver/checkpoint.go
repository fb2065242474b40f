package solver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
)

// Checkpoint is the state of a solver run: enough to continue it exactly.
// SGD.Checkpoint fills it for serial SGD; the master of the asynchronous
// algorithm stores the same fields (its RNG may be empty). The slices belong
// to the Checkpoint.
type Checkpoint struct {
	Tag      string    // what the state belongs to (e.g. a problem key); at most MaxCheckpointTag bytes
	T        int64     // updates applied
	Samples  int64     // rows used so far
	Pos      int64     // position in the current epoch's permutation
	Batch    int64     // mini-batch size
	RNG      []byte    // generator state (SGD: at the start of the current epoch); at most 64 bytes
	Schedule Schedule  // the step-size policy (with t it is the whole schedule state)
	Avg      Averager  // the averaging state, including its vectors
	X        []float64 // the current iterate
	// Ext is the rest of the state of the algorithm that wrote the
	// checkpoint, in that algorithm's own encoding (algo.Master.State:
	// its per-worker versions, withheld replies, lazy, svrg and stopping
	// state); nil for serial SGD. A checkpoint with Ext is written in
	// version 2, one without in version 1.
	Ext []byte
}

// The checkpoint file format, version 1. All integers and floats are
// little-endian; floats are IEEE-754 binary64 bits.
//
//	header  magic "ASYNCMBK" (8 bytes) | version uint16 | reserved uint16 (0) | body length uint64
//	body    tag: uint32 length + bytes
//	        t, samples, pos, batch: int64 each
//	        rng: uint32 length + bytes
//	        schedule: kind uint8 | tau int64 | alpha0, L, beta, mu, t0, tau0: float64
//	        average: kind uint8 | t0 float64 | horizon, n int64 | w float64 | curN, prevN int64
//	        d uint64 | x: d float64
//	        vectors uint8 (bit 0: Cur follows, bit 1: Prev follows) | Cur: d float64 | Prev: d float64
//	        version 2 only: ext: uint64 length + bytes (Checkpoint.Ext)
//	trailer CRC-32C (Castagnoli) uint32 of header and body
//
// The header layout is the same in every version, so any version is
// recognised and a newer one refused with ErrCheckpointVersion; version 1
// files (without Ext) are still read.
const (
	checkpointMagic   = "ASYNCMBK"
	CheckpointVersion = 2
	headerLen         = 8 + 2 + 2 + 8
	// MaxCheckpointTag bounds the tag so that a corrupt length is caught
	// before allocating.
	MaxCheckpointTag = 4096
	maxRNG           = 64
)

// Checkpoint decoding errors; the errors of ReadCheckpoint and
// UnmarshalBinary wrap one of them (test with errors.Is).
var (
	ErrCheckpointMagic     = errors.New("solver: not an asyncmb checkpoint")
	ErrCheckpointVersion   = errors.New("solver: unsupported checkpoint version")
	ErrCheckpointTruncated = errors.New("solver: checkpoint is truncated")
	ErrCheckpointChecksum  = errors.New("solver: checkpoint checksum mismatch (corrupted file)")
	ErrCheckpointCorrupt   = errors.New("solver: checkpoint has an invalid field")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes c in the version-1 format.
func (c *Checkpoint) MarshalBinary() ([]byte, error) {
	d := len(c.X)
	if len(c.Tag) > MaxCheckpointTag || len(c.RNG) > maxRNG {
		return nil, fmt.Errorf("%w: tag or generator state too long", ErrCheckpointCorrupt)
	}
	if c.Avg.Cur != nil && len(c.Avg.Cur) != d || c.Avg.Prev != nil && len(c.Avg.Prev) != d {
		return nil, fmt.Errorf("%w: average vectors do not have the dimension %d of x", ErrCheckpointCorrupt, d)
	}
	b := make([]byte, headerLen, headerLen+256+8*3*d)
	copy(b, checkpointMagic)
	version := uint16(1)
	if len(c.Ext) > 0 {
		version = 2
	}
	binary.LittleEndian.PutUint16(b[8:], version)
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(len(c.Tag)))
	b = append(b, c.Tag...)
	for _, v := range []int64{c.T, c.Samples, c.Pos, c.Batch} {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint32(b, uint32(len(c.RNG)))
	b = append(b, c.RNG...)
	s := c.Schedule
	b = append(b, byte(s.Kind))
	b = le.AppendUint64(b, uint64(int64(s.Tau)))
	for _, v := range []float64{s.Alpha0, s.L, s.Beta, s.Mu, s.T0, s.Tau0} {
		b = le.AppendUint64(b, math.Float64bits(v))
	}
	a := c.Avg
	b = append(b, byte(a.Kind))
	b = le.AppendUint64(b, math.Float64bits(a.T0))
	b = le.AppendUint64(b, uint64(a.Horizon))
	b = le.AppendUint64(b, uint64(a.N))
	b = le.AppendUint64(b, math.Float64bits(a.W))
	b = le.AppendUint64(b, uint64(a.CurN))
	b = le.AppendUint64(b, uint64(a.PrevN))
	b = le.AppendUint64(b, uint64(d))
	b = appendFloats(b, c.X)
	var vecs byte
	if a.Cur != nil {
		vecs |= 1
	}
	if a.Prev != nil {
		vecs |= 2
	}
	b = append(b, vecs)
	b = appendFloats(b, a.Cur)
	b = appendFloats(b, a.Prev)
	if version == 2 {
		b = le.AppendUint64(b, uint64(len(c.Ext)))
		b = append(b, c.Ext...)
	}
	le.PutUint64(b[12:], uint64(len(b)-headerLen))
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

func appendFloats(b []byte, x []float64) []byte {
	for _, v := range x {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// UnmarshalBinary decodes a checkpoint, checking the magic, the lengths, the
// checksum and the version before it trusts any field, and every length
// against the bytes left before allocating. It replaces all of c.
func (c *Checkpoint) UnmarshalBinary(b []byte) error {
	if len(b) < 8 || string(b[:8]) != checkpointMagic {
		if len(b) < 8 && string(b) == checkpointMagic[:len(b)] {
			return fmt.Errorf("%w: %d bytes", ErrCheckpointTruncated, len(b))
		}
		return ErrCheckpointMagic
	}
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d-byte header", ErrCheckpointTruncated, len(b))
	}
	le := binary.LittleEndian
	bodyLen := le.Uint64(b[12:])
	if bodyLen > uint64(len(b)) || uint64(len(b)-headerLen) < bodyLen+4 {
		return fmt.Errorf("%w: %d bytes, the header announces %d", ErrCheckpointTruncated, len(b), uint64(headerLen)+bodyLen+4)
	}
	if uint64(len(b)-headerLen) > bodyLen+4 {
		return fmt.Errorf("%w: %d bytes after the checksum", ErrCheckpointCorrupt, uint64(len(b)-headerLen)-bodyLen-4)
	}
	end := headerLen + int(bodyLen)
	if want, got := le.Uint32(b[end:]), crc32.Checksum(b[:end], castagnoli); want != got {
		return fmt.Errorf("%w: stored %08x, computed %08x", ErrCheckpointChecksum, want, got)
	}
	version := le.Uint16(b[8:])
	if version < 1 || version > CheckpointVersion {
		return fmt.Errorf("%w: version %d, this build reads 1 to %d", ErrCheckpointVersion, version, CheckpointVersion)
	}
	r := reader{b: b[headerLen:end]}
	var out Checkpoint
	out.Tag = string(r.bytes(MaxCheckpointTag))
	out.T, out.Samples, out.Pos, out.Batch = r.i64(), r.i64(), r.i64(), r.i64()
	if rng := r.bytes(maxRNG); len(rng) > 0 {
		out.RNG = append([]byte(nil), rng...)
	}
	s := &out.Schedule
	s.Kind = StepKind(r.u8())
	tau := r.i64()
	s.Alpha0, s.L, s.Beta, s.Mu, s.T0, s.Tau0 = r.f64(), r.f64(), r.f64(), r.f64(), r.f64(), r.f64()
	a := &out.Avg
	a.Kind = AvgKind(r.u8())
	a.T0 = r.f64()
	a.Horizon, a.N = r.i64(), r.i64()
	a.W = r.f64()
	a.CurN, a.PrevN = r.i64(), r.i64()
	d := r.u64()
	if r.err == nil && d > uint64(len(r.b))/8 {
		r.err = fmt.Errorf("%w: dimension %d exceeds the data", ErrCheckpointCorrupt, d)
	}
	out.X = r.floats(d)
	vecs := r.u8()
	if vecs&1 != 0 {
		a.Cur = r.floats(d)
	}
	if vecs&2 != 0 {
		a.Prev = r.floats(d)
	}
	if version == 2 {
		if ext := r.take(r.u64()); r.err == nil {
			out.Ext = append([]byte(nil), ext...)
		}
	}
	switch {
	case r.err != nil:
		return r.err
	case len(r.b) != 0:
		return fmt.Errorf("%w: %d unread bytes in the body", ErrCheckpointCorrupt, len(r.b))
	case vecs > 3 || s.Kind >= numStepKinds || a.Kind >= numAvgKinds:
		return fmt.Errorf("%w: unknown kind (vectors %d, step %d, average %d)", ErrCheckpointCorrupt, vecs, s.Kind, a.Kind)
	case tau < 0 || tau > math.MaxInt32:
		return fmt.Errorf("%w: delay bound %d", ErrCheckpointCorrupt, tau)
	}
	s.Tau = int(tau)
	*c = out
	return nil
}

// reader decodes little-endian fields; the first short read sets err and
// every later read returns zero.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: a field needs %d bytes, %d are left in the body", ErrCheckpointCorrupt, n, len(r.b))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) u8() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) i64() int64   { return int64(r.u64()) }
func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

// bytes reads a uint32 length (at most limit) and that many bytes.
func (r *reader) bytes(limit uint32) []byte {
	p := r.take(4)
	if p == nil {
		return nil
	}
	n := binary.LittleEndian.Uint32(p)
	if n > limit {
		r.err = fmt.Errorf("%w: length %d exceeds the limit %d", ErrCheckpointCorrupt, n, limit)
		return nil
	}
	return r.take(uint64(n))
}

func (r *reader) floats(d uint64) []float64 {
	if r.err != nil || d > uint64(len(r.b))/8 {
		r.take(8 * d) // records the error
		return nil
	}
	x := make([]float64, d)
	for i := range x {
		x[i] = math.Float64frombits(binary.LittleEndian.Uint64(r.b[8*i:]))
	}
	r.b = r.b[8*d:]
	return x
}

// WriteCheckpoint writes c to path atomically: to a temporary file in the
// same directory, fsynced, renamed over path, and the directory fsynced, so
// that a crash leaves either the old file or the new one.
func WriteCheckpoint(path string, c *Checkpoint) error {
	b, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// ReadCheckpoint reads and decodes the checkpoint at path; a bad file gives
// an error naming the path and wrapping one of the ErrCheckpoint* values.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{}
	if err := c.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeFileAtomic replaces path with data: temp file in the same directory,
// write, fsync, close, rename, fsync the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	dh, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dh.Close()
	if err = dh.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
