package comm

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO reads and writes a link's TCP socket with raw system calls on the
// non-blocking descriptor, waiting in the netpoller (RawConn.Read/Write)
// on EAGAIN, and sets SO_RCVLOWAT for large reads.
//
// Raw calls, because a large read or writev spends hundreds of
// microseconds copying in the kernel: through net.Conn (syscall.Syscall)
// the runtime's monitor then hands the rank's only P (GOMAXPROCS=1) to
// another thread, which the call must take back when it returns: per
// 4-rank Allreduce of 8 MiB that was ~20 futex calls and ~45 sleeps per
// rank, and 5% of the time. Raw calls never block (the socket is
// non-blocking), so holding the P for the copy costs nothing.
//
// SO_RCVLOWAT, because while a large payload is coming the kernel
// otherwise wakes the reader for every 64 KiB segment: waiting until
// min(remaining, lowatMax) bytes are queued halves the wake-ups of a
// one-way stream, and it reached 0.95-1.05 of raw TCP's throughput instead
// of 0.8-0.9. The low-water mark is changed only when a read is about to
// wait, so a stream of reads that find data costs no extra system calls.
//
// A rawIO is used by one reader and, under link.wmu, one writer.
type rawIO struct {
	rc syscall.RawConn

	// Reader state (reader goroutine only).
	rb       []byte
	rn       int
	rerr     error
	lowat    int // the socket's SO_RCVLOWAT as last set
	lowatMax int // largest low-water mark used
	rfn      func(fd uintptr) bool

	// Writer state (under link.wmu).
	iov  []unix.Iovec
	wi   int // first iovec not fully written
	werr error
	wfn  func(fd uintptr) bool
}

// Low-water marks: reads of at least lowatMinRead bytes wait for
// min(len, lowatMax) bytes; smaller ones (frame headers) for one.
const (
	lowatMinRead = 64 << 10
	lowatMax     = 1 << 20
)

// newRawIO returns the raw I/O of nc, or nil when nc has no descriptor
// (the link then uses net.Conn's methods). sockBuf is Config.SockBuf: a
// fixed receive buffer bounds the low-water mark to half of it.
func newRawIO(nc net.Conn, sockBuf int) *rawIO {
	rc := rawConn(nc)
	if rc == nil {
		return nil
	}
	x := &rawIO{rc: rc, lowat: 1, lowatMax: lowatMax}
	if sockBuf > 0 {
		x.lowatMax = max(1, min(lowatMax, sockBuf/2))
	}
	x.rfn = x.doRead
	x.wfn = x.doWritev
	return x
}

// lowatFor is the low-water mark for a read into n bytes.
func (x *rawIO) lowatFor(n int) int {
	if n < lowatMinRead {
		return 1
	}
	return min(n, x.lowatMax)
}

func (x *rawIO) doRead(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(x.rb))), uintptr(len(x.rb)))
		switch e {
		case 0:
			x.rn = int(n)
			if n == 0 {
				x.rerr = io.EOF
			}
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// About to wait: set the low-water mark for this read, then
			// look once more (data may have come meanwhile).
			if want := x.lowatFor(len(x.rb)); want != x.lowat {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, want); err == nil {
					x.lowat = want
					continue
				}
				x.lowatMax = 1 // not supported: never try again
				x.lowat = 1
			}
			return false
		}
		x.rerr = os.NewSyscallError("read", e)
		return true
	}
}

// read reads into b (len(b) > 0) like net.Conn.Read: at least one byte,
// or an error (io.EOF at the end of the stream).
func (x *rawIO) read(b []byte) (int, error) {
	x.rb, x.rn, x.rerr = b, 0, nil
	err := x.rc.Read(x.rfn)
	x.rb = nil
	if err != nil {
		return 0, err
	}
	return x.rn, x.rerr
}

func (x *rawIO) doWritev(fd uintptr) bool {
	for x.wi < len(x.iov) {
		iov := x.iov[x.wi:]
		n, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(min(len(iov), maxIovecs)))
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			x.werr = os.NewSyscallError("writev", e)
			return true
		}
		for n > 0 {
			v := &x.iov[x.wi]
			if uint64(n) >= v.Len {
				n -= uintptr(v.Len)
				x.wi++
				continue
			}
			v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
			v.Len -= uint64(n)
			n = 0
		}
	}
	return true
}

// maxIovecs is the most iovecs given to one writev (Linux's IOV_MAX).
const maxIovecs = 1024

// writev writes every byte of bufs.
func (x *rawIO) writev(bufs [][]byte) error {
	x.iov = x.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			x.iov = append(x.iov, unix.Iovec{Base: unsafe.SliceData(b), Len: uint64(len(b))})
		}
	}
	x.wi, x.werr = 0, nil
	err := x.rc.Write(x.wfn)
	clear(x.iov) // drop the pointers into the caller's slices
	if err != nil {
		return err
	}
	return x.werr
}
