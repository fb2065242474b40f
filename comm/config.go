package comm

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Codec names a payload compression. It is recorded in every frame header.
type Codec uint8

// The codecs. Auto-selection never picks a codec other than Config.Codec:
// per message it only decides between Codec and CodecNone, by size and by
// whether compressing a sample actually shrinks it.
const (
	CodecNone Codec = 0
	CodecS2   Codec = 1
	CodecZstd Codec = 2
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec parses "none", "s2" or "zstd".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none", "":
		return CodecNone, nil
	case "s2":
		return CodecS2, nil
	case "zstd":
		return CodecZstd, nil
	}
	return 0, fmt.Errorf("comm: unknown codec %q (want none, s2 or zstd)", s)
}

// Defaults, in one place.
const (
	DefaultMaxFrame          = 1 << 30
	DefaultRendezvousTimeout = 60 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultHeartbeatInterval = 1 * time.Second
	DefaultHeartbeatTimeout  = 10 * time.Second
	DefaultMinCompress       = 4 << 10
	DefaultCodec             = CodecS2
)

// Config configures one rank's communicator. The zero value of every
// duration or size field means its default; Validate (called by New) fills
// them in and checks the rest.
type Config struct {
	// Rank is this process's rank in [0, Size).
	Rank int
	// Size is the number of ranks, >= 1.
	Size int
	// JobID names the job; ranks of different jobs refuse each other. At
	// most 64 bytes.
	JobID string
	// Secret is the job secret proven (never sent) by HMAC-SHA256 when a
	// link opens. Empty is allowed only for Size == 1. Pass it from the
	// environment or a file, never on a command line.
	Secret []byte

	// Addr is rank 0's rendezvous address host:port. Rank 0 listens on it
	// (port 0 picks a free port, which is then published through Store);
	// other ranks dial it. Empty means "read key AddrKey from Store".
	Addr string
	// Bind is the local address or interface name other ranks' listeners
	// and outgoing links use on multi-homed hosts ("10.0.0.5", "eth1",
	// "10.0.0.5:7000"); empty means the host of Addr for rank 0 and the
	// wildcard address for the others (their table entry then uses the
	// address this rank reached rank 0 from).
	Bind string
	// Store, optional, carries rank 0's actual address when Addr's port is
	// 0 or Addr is empty.
	Store Store

	// RendezvousTimeout bounds the whole rendezvous (dial retries included).
	RendezvousTimeout time.Duration
	// HandshakeTimeout bounds one connection's handshake.
	HandshakeTimeout time.Duration
	// HeartbeatInterval is how long a link may stay silent before we send
	// a heartbeat on it.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a link may stay silent (no frame, not
	// even a heartbeat) or a write may stay blocked before the peer is
	// declared lost. Must exceed HeartbeatInterval.
	HeartbeatTimeout time.Duration

	// MaxFrame bounds a frame's payload, compressed or not; larger claims
	// are refused before anything is allocated.
	MaxFrame int64
	// Codec is the compression tried on payloads of at least MinCompress
	// bytes. The zero value is CodecNone (no compression); DefaultConfig
	// and launch.FromEnv set CodecS2.
	Codec Codec
	// MinCompress is the smallest payload for which compression is tried.
	MinCompress int
	// CompressLocal makes links to peers on this host (loopback, or our
	// own address) compress too; by default they send every frame raw
	// (see encoder.local). Links with NetDelay or NetJitter always
	// compress as a network link would.
	CompressLocal bool

	// SockBuf, if > 0, sets SO_SNDBUF and SO_RCVBUF (disabling the
	// kernel's autotuning). 0 keeps the kernel's choice.
	SockBuf int
	// QuickAck sets TCP_QUICKACK after every read (Linux), to avoid
	// delayed ACKs on request/response traffic.
	QuickAck bool
	// Nagle turns Nagle's algorithm back on (off by default: TCP_NODELAY),
	// for experiments only: two small messages sent back to back then wait
	// for the peer's delayed ACK, 40 ms on Linux.
	Nagle bool
	// NetDelay and NetJitter, for experiments, hold every frame this rank
	// sends for NetDelay plus a uniform random time in [0, NetJitter)
	// (DelayConn; the link then uses plain net.Conn I/O).
	NetDelay, NetJitter time.Duration

	// Rejoin makes a rank other than 0 join a running job in place of a
	// rank that left it (whose departure rank 0 has acknowledged with
	// Forget): it dials rank 0 and talks to it only (no table of ranks,
	// no collectives).
	Rejoin bool

	// Log, if set, receives the listener's notices about refused and
	// garbage connections, at most one line per second (with a count).
	Log io.Writer
}

// DefaultConfig returns a Config with every default filled in for the given
// rank and size.
func DefaultConfig(rank, size int) Config {
	c := Config{Rank: rank, Size: size, Codec: DefaultCodec}
	c.fillDefaults()
	return c
}

func (c *Config) fillDefaults() {
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.RendezvousTimeout == 0 {
		c.RendezvousTimeout = DefaultRendezvousTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.MinCompress == 0 {
		c.MinCompress = DefaultMinCompress
	}
}

// Validate fills in defaults and reports the first invalid field.
func (c *Config) Validate() error {
	c.fillDefaults()
	switch {
	case c.Size < 1:
		return fmt.Errorf("comm: Size=%d, want >= 1", c.Size)
	case c.Size > maxRanks:
		return fmt.Errorf("comm: Size=%d, want <= %d", c.Size, maxRanks)
	case c.Rank < 0 || c.Rank >= c.Size:
		return fmt.Errorf("comm: Rank=%d outside [0,%d)", c.Rank, c.Size)
	case len(c.JobID) > maxJobID:
		return fmt.Errorf("comm: JobID is %d bytes, want <= %d", len(c.JobID), maxJobID)
	case len(c.Secret) == 0 && c.Size > 1:
		return errors.New("comm: empty job secret (set ASYNCMB_SECRET or ASYNCMB_SECRET_FILE)")
	case c.MaxFrame < msgHeaderLen || c.MaxFrame > 1<<40:
		return fmt.Errorf("comm: MaxFrame=%d outside [%d, 2^40]", c.MaxFrame, msgHeaderLen)
	case c.Codec > CodecZstd:
		return fmt.Errorf("comm: unknown codec %d", c.Codec)
	case c.MinCompress < 0:
		return fmt.Errorf("comm: MinCompress=%d < 0", c.MinCompress)
	case c.NetDelay < 0 || c.NetJitter < 0:
		return errors.New("comm: negative NetDelay or NetJitter")
	case c.SockBuf < 0:
		return fmt.Errorf("comm: SockBuf=%d < 0", c.SockBuf)
	case c.RendezvousTimeout < 0 || c.HandshakeTimeout < 0 || c.HeartbeatInterval < 0:
		return errors.New("comm: negative timeout")
	case c.HeartbeatTimeout <= c.HeartbeatInterval:
		return fmt.Errorf("comm: HeartbeatTimeout=%v must exceed HeartbeatInterval=%v", c.HeartbeatTimeout, c.HeartbeatInterval)
	case c.Size > 1 && c.Addr == "" && c.Store == nil:
		return errors.New("comm: need Addr or Store to find rank 0")
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("comm: Addr: %w", err)
		}
	}
	if _, err := bindHost(c.Bind); err != nil {
		return err
	}
	return nil
}

// bindHost turns Config.Bind (address, host:port or interface name) into a
// host:port to listen on (port "0" when none is given); "" stays "".
func bindHost(bind string) (string, error) {
	if bind == "" {
		return "", nil
	}
	if _, _, err := net.SplitHostPort(bind); err == nil {
		return bind, nil
	}
	if ip := net.ParseIP(bind); ip != nil {
		return net.JoinHostPort(bind, "0"), nil
	}
	ifi, err := net.InterfaceByName(bind)
	if err != nil {
		return "", fmt.Errorf("comm: Bind %q is neither an address nor an interface: %w", bind, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", fmt.Errorf("comm: Bind interface %q: %w", bind, err)
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ipn.IP.To4() != nil {
			return net.JoinHostPort(ipn.IP.String(), "0"), nil
		}
		if v6 == "" && !ipn.IP.IsLinkLocalUnicast() {
			v6 = net.JoinHostPort(ipn.IP.String(), "0")
		}
	}
	if v6 != "" {
		return v6, nil
	}
	return "", fmt.Errorf("comm: Bind interface %q has no usable address", bind)
}
