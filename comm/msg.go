package comm

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Msg is the unit of Send and Recv: a few int64 header words (for example
// the iteration t, the version read t_read, the loss as math.Float64bits,
// the compute time in ns), an optional float64 vector, dense or sparse, and
// optional opaque bytes.
//
// On Send the caller owns every slice; Send only reads them and they may be
// reused as soon as it returns. A vector is sparse when Idx != nil (Idx and
// Vals of equal length, Idx strictly increasing in [0, Dim)), dense when
// Dense != nil, absent otherwise.
//
// On Recv the fields are overwritten with views into a buffer the Msg owns
// until the next Recv into it (or Release): copy what you keep. Reusing one
// Msg per receiving goroutine makes Recv allocation-free in steady state. A
// Msg is not safe for concurrent use.
type Msg struct {
	Ints  []int64
	Dense []float64
	Idx   []int32
	Vals  []float64
	Dim   int // dimension of a sparse vector
	Bytes []byte

	// Src and Tag are set by Recv.
	Src, Tag int

	fr  *frame  // received frame whose buffer the views point into
	idx []int32 // decoded sparse indices (reused)
	// crcs, on Send: the payload CRCs of the message's frames when they
	// are known (a collective forwarding unchanged a vector it received
	// placed, see knownCRCs); nil: computed.
	crcs []uint32
	ints []int64 // copies when a view is impossible (big-endian, misaligned)
	flts []float64
}

// Release returns the Msg's receive buffer to the communicator's pool and
// clears the fields. It is optional: the next Recv into m does the same.
func (m *Msg) Release() {
	if m.fr != nil {
		m.fr.release()
		m.fr = nil
	}
	m.Ints, m.Dense, m.Idx, m.Vals, m.Dim, m.Bytes = nil, nil, nil, nil, 0, nil
}

// Message payload layout (the raw payload of a data frame; little-endian):
//
//	off size field
//	  0    4 nInts
//	  4    1 vector kind (vecNone, vecDense, vecSparse)
//	  5    3 zero
//	  8    8 vecLen: dense length, or sparse dimension
//	 16    8 nnz: number of sparse entries (0 otherwise)
//	 24    8 idxLen: bytes of the sparse index block
//	 32    8 nBytes: opaque bytes
//	 40      nInts int64
//	         float block: vecLen (dense) or nnz (sparse) float64, byte-shuffled
//	         when the frame has flagShuffled
//	         index block: nnz uvarints, the first index then the gaps
//	         opaque bytes
const (
	msgHeaderLen = 40
	vecNone      = 0
	vecDense     = 1
	vecSparse    = 2
	maxInts      = 1 << 16
)

// msgLayout is the decoded payload header with the block offsets.
type msgLayout struct {
	nInts          int
	kind           uint8
	vecLen, nnz    int
	idxLen, nBytes int
	intsOff        int
	floatOff, nFlt int
	idxOff, bytOff int
	total          int
}

func (l *msgLayout) appendHeader(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(l.nInts))
	dst = append(dst, l.kind, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(l.vecLen))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(l.nnz))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(l.idxLen))
	return binary.LittleEndian.AppendUint64(dst, uint64(l.nBytes))
}

func (l *msgLayout) finish() {
	l.intsOff = msgHeaderLen
	l.floatOff = l.intsOff + 8*l.nInts
	l.nFlt = l.vecLen
	if l.kind == vecSparse {
		l.nFlt = l.nnz
	}
	l.idxOff = l.floatOff + 8*l.nFlt
	l.bytOff = l.idxOff + l.idxLen
	l.total = l.bytOff + l.nBytes
}

// parseLayout decodes and bounds-checks the payload header against the
// payload length n, without trusting any field.
func parseLayout(b []byte) (msgLayout, error) {
	var l msgLayout
	if len(b) < msgHeaderLen {
		return l, fmt.Errorf("%w: message of %d bytes, header needs %d", ErrCorrupt, len(b), msgHeaderLen)
	}
	n := uint64(len(b))
	nInts := uint64(binary.LittleEndian.Uint32(b[0:]))
	kind := b[4]
	vecLen := binary.LittleEndian.Uint64(b[8:])
	nnz := binary.LittleEndian.Uint64(b[16:])
	idxLen := binary.LittleEndian.Uint64(b[24:])
	nBytes := binary.LittleEndian.Uint64(b[32:])
	nFlt := vecLen
	switch kind {
	case vecNone:
		if vecLen != 0 || nnz != 0 || idxLen != 0 {
			return l, fmt.Errorf("%w: vector fields set without a vector", ErrCorrupt)
		}
	case vecDense:
		if nnz != 0 || idxLen != 0 {
			return l, fmt.Errorf("%w: sparse fields set on a dense vector", ErrCorrupt)
		}
	case vecSparse:
		nFlt = nnz
		if nnz > vecLen || vecLen > math.MaxInt32+1 || idxLen < nnz || idxLen > 5*nnz {
			return l, fmt.Errorf("%w: sparse vector nnz %d dim %d index bytes %d", ErrCorrupt, nnz, vecLen, idxLen)
		}
	default:
		return l, fmt.Errorf("%w: unknown vector kind %d", ErrCorrupt, kind)
	}
	// Every count is checked against n before it is multiplied or summed,
	// so the sums below cannot overflow.
	if nInts > n/8 || nFlt > n/8 || idxLen > n || nBytes > n ||
		msgHeaderLen+8*nInts+8*nFlt+idxLen+nBytes != n {
		return l, fmt.Errorf("%w: message blocks do not add up to its %d bytes", ErrCorrupt, n)
	}
	l = msgLayout{nInts: int(nInts), kind: kind, vecLen: int(vecLen), nnz: int(nnz), idxLen: int(idxLen), nBytes: int(nBytes)}
	l.finish()
	return l, nil
}

// layoutOf describes m for sending; idxLen is filled in by the caller once
// the index block is encoded. It panics on a malformed m (a caller bug).
func layoutOf(m *Msg) msgLayout {
	l := msgLayout{nInts: len(m.Ints), nBytes: len(m.Bytes)}
	if len(m.Ints) > maxInts {
		panic("comm: Msg has more than 65536 Ints")
	}
	switch {
	case m.Idx != nil:
		if len(m.Vals) != len(m.Idx) {
			panic("comm: Msg sparse vector with len(Idx) != len(Vals)")
		}
		if m.Dim < 0 || m.Dim > math.MaxInt32+1 {
			panic("comm: Msg sparse vector Dim out of range")
		}
		l.kind, l.vecLen, l.nnz = vecSparse, m.Dim, len(m.Idx)
	case m.Dense != nil:
		l.kind, l.vecLen = vecDense, len(m.Dense)
	}
	return l
}

// floats returns the float block of m being sent.
func (m *Msg) floats() []float64 {
	if m.Idx != nil {
		return m.Vals
	}
	return m.Dense
}

// decode points m's fields into the raw payload b (views when the host is
// little-endian and b is 8-byte aligned, copies otherwise).
func (m *Msg) decode(b []byte) error {
	l, err := parseLayout(b)
	if err != nil {
		return err
	}
	m.Ints = m.viewInts(b[l.intsOff:l.floatOff])
	m.Dense, m.Idx, m.Vals, m.Dim = nil, nil, nil, 0
	fl := m.viewFloats(b[l.floatOff:l.idxOff])
	switch l.kind {
	case vecDense:
		m.Dense = fl
	case vecSparse:
		if m.idx == nil {
			m.idx = make([]int32, 0, l.nnz)
		}
		m.idx, err = decodeIdx(m.idx[:0], b[l.idxOff:l.bytOff], l.nnz, l.vecLen)
		if err != nil {
			return err
		}
		m.Idx, m.Vals, m.Dim = m.idx, fl, l.vecLen
	}
	m.Bytes = b[l.bytOff:l.total:l.total]
	return nil
}

var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

func aligned8(b []byte) bool {
	return len(b) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 == 0
}

func (m *Msg) viewInts(b []byte) []int64 {
	n := len(b) / 8
	if littleEndian && aligned8(b) {
		if n == 0 {
			return []int64{}
		}
		return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(b))), n)
	}
	m.ints = m.ints[:0]
	for i := range n {
		m.ints = append(m.ints, int64(binary.LittleEndian.Uint64(b[8*i:])))
	}
	return m.ints
}

func (m *Msg) viewFloats(b []byte) []float64 {
	n := len(b) / 8
	if littleEndian && aligned8(b) {
		if n == 0 {
			return []float64{}
		}
		return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b))), n)
	}
	m.flts = DecodeFloat64s(m.flts[:0], b)
	return m.flts
}

// floatBytes returns the little-endian bytes of x: a view on little-endian
// hosts, else an encoding appended to scratch.
func floatBytes(x []float64, scratch []byte) []byte {
	if len(x) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(x))), 8*len(x))
	}
	return AppendFloat64s(scratch[:0], x)
}

func appendInt64s(dst []byte, x []int64) []byte {
	for _, v := range x {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(v))
	}
	return dst
}
