package comm

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tune applies the socket options of the config to a TCP connection.
func (c *Comm) tune(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetNoDelay(!c.cfg.Nagle)
	if c.cfg.SockBuf > 0 {
		tc.SetReadBuffer(c.cfg.SockBuf)
		tc.SetWriteBuffer(c.cfg.SockBuf)
	}
}

// quickAcker returns a function that sets TCP_QUICKACK on nc (Linux resets
// it after some ACKs, so it is re-armed after every received frame), or nil
// when nc is not a TCP connection.
func quickAcker(nc net.Conn) func() {
	rc := rawConn(nc)
	if rc == nil {
		return nil
	}
	set := func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) }
	return func() { rc.Control(set) }
}

// rawConn is nc's syscall.RawConn, or nil when it has none.
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
