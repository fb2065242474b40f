package comm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// Handshake records (see README.md): every record is
//
//	off size field
//	  0    4 magic "AMBH"
//	  4    1 protocol version of the sender
//	  5    1 kind (hsChallenge, hsHello, hsWelcome, hsOK, hsRefuse)
//	  6    2 body length (<= hsMaxBody)
//	  8      body
//
// The record framing never changes between versions, so a refusal for a
// version mismatch is readable by both sides.
//
// The dialer proves the secret first: the listener's first record is a
// random challenge and nothing else, and its refusals of a dialer that has
// not proven the secret are all the same bytes ("refused"), so a client
// without the secret learns nothing about the job (id, size, the
// listener's MAC) and cannot test guesses of the secret offline.
//
//	listener -> dialer  challenge: nonce_L
//	dialer -> listener  hello:     hello_D | HMAC(secret, "asyncmb-dialer-2" | nonce_L | hello_D)
//	listener -> dialer  welcome:   hello_L | HMAC(secret, "asyncmb-listener-2" | hello_D | hello_L)
//	dialer -> listener  ok
//
// hello_D carries the dialer's nonce and hello_L the listener's (nonce_L),
// so both MACs cover both nonces and both identities, with different
// labels: a proof can be neither replayed nor reflected.
const (
	hsMagic     = "AMBH"
	hsHeaderLen = 8
	hsMaxBody   = 512
	nonceLen    = 32
	macLen      = sha256.Size

	hsChallenge = 1
	hsHello     = 2
	hsWelcome   = 3
	hsOK        = 4
	hsRefuse    = 5

	// refusal codes (first body byte of hsRefuse)
	refuseOther   = 0
	refuseVersion = 1
	refuseJob     = 2
	refuseAuth    = 3

	labelDialer   = "asyncmb-dialer-2"
	labelListener = "asyncmb-listener-2"
)

// refusedText is all a refusal says to a dialer that has not proven the
// secret.
const refusedText = "refused"

// hello is what each side of a link says about itself.
type hello struct {
	rank, size int
	job        string
	addr       string // the sender's listen address ("" from a listener)
	nonce      [nonceLen]byte
}

func (h *hello) append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.rank))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.size))
	dst = append(dst, byte(len(h.job)))
	dst = append(dst, h.job...)
	dst = append(dst, byte(len(h.addr)))
	dst = append(dst, h.addr...)
	return append(dst, h.nonce[:]...)
}

func parseHello(b []byte) (hello, []byte, error) {
	var h hello
	bad := fmt.Errorf("%w: malformed hello", ErrCorrupt)
	if len(b) < 9 {
		return h, nil, bad
	}
	h.rank = int(binary.LittleEndian.Uint32(b))
	h.size = int(binary.LittleEndian.Uint32(b[4:]))
	n := int(b[8])
	b = b[9:]
	if len(b) < n+1 {
		return h, nil, bad
	}
	h.job, b = string(b[:n]), b[n:]
	n = int(b[0])
	b = b[1:]
	if len(b) < n+nonceLen {
		return h, nil, bad
	}
	h.addr, b = string(b[:n]), b[n:]
	copy(h.nonce[:], b)
	return h, b[nonceLen:], nil
}

// hsConn reads and writes handshake records on a connection with a
// deadline; its buffer is bounded by hsMaxBody, so random bytes on the
// port cannot make it allocate.
type hsConn struct {
	nc  net.Conn
	buf [hsHeaderLen + hsMaxBody]byte
}

func (c *hsConn) write(kind byte, body []byte) error {
	if len(body) > hsMaxBody {
		panic("comm: handshake body too long")
	}
	b := append(c.buf[:0], hsMagic...)
	b = append(b, ProtocolVersion, kind)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(body)))
	b = append(b, body...)
	_, err := c.nc.Write(b)
	return err
}

// read returns the next record's version, kind and body (valid until the
// next call).
func (c *hsConn) read() (version, kind byte, body []byte, err error) {
	h := c.buf[:hsHeaderLen]
	if _, err = io.ReadFull(c.nc, h); err != nil {
		return 0, 0, nil, err
	}
	if string(h[:4]) != hsMagic {
		return 0, 0, nil, ErrBadMagic
	}
	n := int(binary.LittleEndian.Uint16(h[6:]))
	if n > hsMaxBody {
		return 0, 0, nil, fmt.Errorf("%w: handshake record of %d bytes", ErrFrameTooLarge, n)
	}
	body = c.buf[hsHeaderLen : hsHeaderLen+n]
	if _, err = io.ReadFull(c.nc, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, err
	}
	return h[4], h[5], body, nil
}

// refuseBlind refuses a dialer that has not proven the secret: the
// record says only "refused" (with code, which the dialer can tell
// anyway: its version, or that its proof was wrong); err is for our side.
func (c *hsConn) refuseBlind(code byte, err error) error {
	_ = c.write(hsRefuse, append([]byte{code}, refusedText...))
	return err
}

func (c *hsConn) refuse(code byte, err error) error {
	msg := err.Error()
	if len(msg) > hsMaxBody-1 {
		msg = msg[:hsMaxBody-1]
	}
	_ = c.write(hsRefuse, append([]byte{code}, msg...))
	return err
}

// refusal turns a peer's hsRefuse body into an error wrapping the sentinel
// for its code.
func refusal(body []byte) error {
	if len(body) == 0 {
		return ErrRefused
	}
	sentinel := ErrRefused
	switch body[0] {
	case refuseVersion:
		sentinel = ErrVersion
	case refuseJob:
		sentinel = ErrJobID
	case refuseAuth:
		sentinel = ErrAuth
	}
	return fmt.Errorf("%w: refused by peer: %s", sentinel, body[1:])
}

func mac(secret []byte, label string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// handshakeDial runs the dialing side on nc: read the listener's
// challenge, introduce ourselves with our proof, check the listener's
// identity and proof, say ok. wantPeer >= 0 is the rank we expect to
// reach. It returns the listener's hello.
func (c *Comm) handshakeDial(nc net.Conn, wantPeer int, myAddr string) (hello, error) {
	hc := &hsConn{nc: nc}
	nc.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	ver, kind, body, err := hc.read()
	switch {
	case err != nil:
		return hello{}, err
	case kind == hsRefuse:
		return hello{}, refusal(body)
	case ver != ProtocolVersion:
		return hello{}, hc.refuse(refuseVersion, fmt.Errorf("%w: peer speaks version %d, we speak %d", ErrVersion, ver, ProtocolVersion))
	case kind != hsChallenge || len(body) != nonceLen:
		return hello{}, fmt.Errorf("%w: handshake record kind %d of %d bytes, want a challenge", ErrCorrupt, kind, len(body))
	}
	var challenge [nonceLen]byte
	copy(challenge[:], body)
	me := hello{rank: c.cfg.Rank, size: c.cfg.Size, job: c.cfg.JobID, addr: myAddr}
	if _, err := rand.Read(me.nonce[:]); err != nil {
		return hello{}, err
	}
	myBody := me.append(nil)
	if err := hc.write(hsHello, append(myBody, mac(c.cfg.Secret, labelDialer, challenge[:], myBody)...)); err != nil {
		return hello{}, err
	}
	_, kind, body, err = hc.read()
	switch {
	case err != nil:
		return hello{}, err
	case kind == hsRefuse:
		return hello{}, refusal(body)
	case kind != hsWelcome:
		return hello{}, fmt.Errorf("%w: handshake record kind %d, want welcome", ErrCorrupt, kind)
	}
	peer, rest, err := parseHello(body)
	if err != nil {
		return hello{}, err
	}
	if len(rest) != macLen {
		return hello{}, fmt.Errorf("%w: welcome without a proof", ErrCorrupt)
	}
	peerBody := body[:len(body)-macLen]
	switch {
	case peer.nonce != challenge || !hmac.Equal(rest, mac(c.cfg.Secret, labelListener, myBody, peerBody)):
		return hello{}, hc.refuse(refuseAuth, fmt.Errorf("%w: the listener's proof does not match our secret", ErrAuth))
	case peer.job != c.cfg.JobID:
		return hello{}, hc.refuse(refuseJob, fmt.Errorf("%w: peer is in job %q, we are in %q", ErrJobID, peer.job, c.cfg.JobID))
	case peer.size != c.cfg.Size || (wantPeer >= 0 && peer.rank != wantPeer):
		return hello{}, hc.refuse(refuseOther, fmt.Errorf("%w: reached rank %d of %d, wanted rank %d of %d", ErrRefused, peer.rank, peer.size, wantPeer, c.cfg.Size))
	}
	if err := hc.write(hsOK, nil); err != nil {
		return hello{}, err
	}
	return peer, nil
}

// handshakeAccept runs the listening side on nc and returns the dialer's
// hello (zero until the dialer has proven the secret). Every refusal is
// sent to the dialer before the error is returned; until the dialer's
// proof has been checked, every refusal is the same record.
func (c *Comm) handshakeAccept(nc net.Conn) (hello, error) {
	hc := &hsConn{nc: nc}
	nc.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout))
	defer nc.SetDeadline(time.Time{})
	me := hello{rank: c.cfg.Rank, size: c.cfg.Size, job: c.cfg.JobID}
	if _, err := rand.Read(me.nonce[:]); err != nil {
		return hello{}, err
	}
	if err := hc.write(hsChallenge, me.nonce[:]); err != nil {
		return hello{}, err
	}
	ver, kind, body, err := hc.read()
	switch {
	case err != nil:
		return hello{}, err
	case kind == hsRefuse:
		return hello{}, refusal(body)
	case ver != ProtocolVersion:
		return hello{}, hc.refuseBlind(refuseVersion, fmt.Errorf("%w: dialer speaks version %d, we speak %d", ErrVersion, ver, ProtocolVersion))
	case kind != hsHello:
		return hello{}, fmt.Errorf("%w: handshake record kind %d, want hello", ErrCorrupt, kind)
	}
	peer, rest, err := parseHello(body)
	if err != nil || len(rest) != macLen {
		return hello{}, fmt.Errorf("%w: malformed hello", ErrCorrupt)
	}
	peerBody := append([]byte(nil), body[:len(body)-macLen]...)
	if !hmac.Equal(rest, mac(c.cfg.Secret, labelDialer, me.nonce[:], peerBody)) {
		return hello{}, hc.refuseBlind(refuseAuth, fmt.Errorf("%w: the dialer's proof does not match our secret", ErrAuth))
	}
	// The dialer holds the secret: from here on it may know why.
	switch {
	case peer.job != c.cfg.JobID:
		return peer, hc.refuse(refuseJob, fmt.Errorf("%w: dialer is in job %q, we are in %q", ErrJobID, peer.job, c.cfg.JobID))
	case peer.size != c.cfg.Size:
		return peer, hc.refuse(refuseOther, fmt.Errorf("%w: dialer's job has %d ranks, ours %d", ErrRefused, peer.size, c.cfg.Size))
	case peer.rank < 0 || peer.rank >= c.cfg.Size || peer.rank == c.cfg.Rank:
		return peer, hc.refuse(refuseOther, fmt.Errorf("%w: dialer claims rank %d", ErrRefused, peer.rank))
	}
	if err := c.admit(peer.rank); err != nil {
		return peer, hc.refuse(refuseOther, err)
	}
	myBody := me.append(nil)
	if err := hc.write(hsWelcome, append(myBody, mac(c.cfg.Secret, labelListener, peerBody, myBody)...)); err != nil {
		return peer, err
	}
	_, kind, body, err = hc.read()
	switch {
	case err != nil:
		return peer, err
	case kind == hsRefuse:
		return peer, refusal(body)
	case kind != hsOK:
		return peer, fmt.Errorf("%w: handshake record kind %d, want ok", ErrCorrupt, kind)
	}
	return peer, nil
}
