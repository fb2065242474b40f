package comm

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Store is the rendezvous key-value store (after gloo's rendezvous/store.h):
// rank 0 publishes its address in it when it listens on port 0. Keys are
// short strings of [A-Za-z0-9._-]; values at most 64 KiB. Implementations
// are safe for concurrent use.
type Store interface {
	// Set stores value under key, replacing any previous value.
	Set(key string, value []byte) error
	// Get returns the value of key, waiting until it is set or ctx is done.
	Get(ctx context.Context, key string) ([]byte, error)
}

// AddrKey is the Store key under which rank 0 publishes its address.
const AddrKey = "rank0-addr"

const maxStoreValue = 64 << 10

// ErrStoreKey reports an invalid store key or value.
var ErrStoreKey = errors.New("comm: invalid store key or value")

func checkKV(key string, value []byte) error {
	if key == "" || len(key) > 128 || len(value) > maxStoreValue {
		return ErrStoreKey
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: key %q", ErrStoreKey, key)
		}
	}
	return nil
}

// Wait waits until every key is set in s, or ctx is done; a timeout error
// names the keys still missing.
func Wait(ctx context.Context, s Store, keys ...string) error {
	for i, k := range keys {
		if _, err := s.Get(ctx, k); err != nil {
			return fmt.Errorf("comm: store: waiting for %v: %w", keys[i:], err)
		}
	}
	return nil
}

// MemStore is an in-memory Store for ranks that are goroutines of one
// process (tests).
type MemStore struct {
	mu      sync.Mutex // protects m and changed
	m       map[string][]byte
	changed chan struct{} // closed and replaced on every Set
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{m: map[string][]byte{}, changed: make(chan struct{})}
}

// Set implements Store.
func (s *MemStore) Set(key string, value []byte) error {
	if err := checkKV(key, value); err != nil {
		return err
	}
	s.mu.Lock()
	s.m[key] = append([]byte(nil), value...)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKV(key, nil); err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		v, ok := s.m[key]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return append([]byte(nil), v...), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("comm: store key %q: %w", key, ctx.Err())
		}
	}
}

// FileStore is a Store in a directory shared by the ranks (a temporary
// directory made by the local launcher, or a shared file system): one file
// per key, written to a temporary name and renamed, so readers never see a
// partial value. Get polls with backoff.
type FileStore struct{ Dir string }

// Set implements Store.
func (s FileStore) Set(key string, value []byte) error {
	if err := checkKV(key, value); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.Dir, ".tmp-"+key+"-*")
	if err != nil {
		return fmt.Errorf("comm: file store: %w", err)
	}
	_, err = f.Write(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.Dir, key))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("comm: file store: %w", err)
	}
	return nil
}

// Get implements Store.
func (s FileStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKV(key, nil); err != nil {
		return nil, err
	}
	p := filepath.Join(s.Dir, key)
	return poll(ctx, key, func() ([]byte, bool, error) {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return b, err == nil, err
	})
}

// poll calls try with exponential backoff (1 ms to 100 ms) until it reports
// found, fails, or ctx is done.
func poll(ctx context.Context, key string, try func() ([]byte, bool, error)) ([]byte, error) {
	wait := time.Millisecond
	for {
		v, ok, err := try()
		if err != nil || ok {
			return v, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("comm: store key %q: %w", key, ctx.Err())
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// TCP store protocol: a request is op (1 byte: 'S' set, 'G' get), key
// length (1 byte), key, value length (uint32 LE, set only), value; the reply
// is status (1 byte: 0 ok, 1 not found, 2 error), value length (uint32 LE)
// and value (the value for a get, the error text otherwise).

// StoreServer serves a MemStore over TCP for ranks on several hosts without
// a shared file system. It is safe for concurrent use.
type StoreServer struct {
	ln    net.Listener
	store *MemStore
	wg    sync.WaitGroup
}

// ServeStore listens on addr and serves a fresh MemStore until Close.
func ServeStore(addr string) (*StoreServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("comm: store server: %w", err)
	}
	s := &StoreServer{ln: ln, store: NewMemStore()}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the address the server listens on.
func (s *StoreServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for its connections to end.
func (s *StoreServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *StoreServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer nc.Close()
			s.serveConn(nc)
		}()
	}
}

func (s *StoreServer) serveConn(nc net.Conn) {
	br := bufio.NewReader(nc)
	var hdr [2]byte
	for {
		nc.SetReadDeadline(time.Now().Add(5 * time.Minute))
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		key := make([]byte, hdr[1])
		if _, err := io.ReadFull(br, key); err != nil {
			return
		}
		var reply []byte
		switch hdr[0] {
		case 'S':
			var lb [4]byte
			if _, err := io.ReadFull(br, lb[:]); err != nil {
				return
			}
			n := binary.LittleEndian.Uint32(lb[:])
			if n > maxStoreValue {
				return
			}
			v := make([]byte, n)
			if _, err := io.ReadFull(br, v); err != nil {
				return
			}
			reply = storeReply(0, nil)
			if err := s.store.Set(string(key), v); err != nil {
				reply = storeReply(2, []byte(err.Error()))
			}
		case 'G':
			s.store.mu.Lock()
			v, ok := s.store.m[string(key)]
			s.store.mu.Unlock()
			reply = storeReply(0, v)
			if !ok {
				reply = storeReply(1, nil)
			}
		default:
			return
		}
		if _, err := nc.Write(reply); err != nil {
			return
		}
	}
}

func storeReply(status byte, v []byte) []byte {
	b := binary.LittleEndian.AppendUint32([]byte{status}, uint32(len(v)))
	return append(b, v...)
}

// TCPStore is the client of a StoreServer. Each call opens a short
// connection (rendezvous traffic is a handful of calls), so it is safe for
// concurrent use.
type TCPStore struct {
	Addr string
	// DialTimeout bounds one connection attempt (default 5 s).
	DialTimeout time.Duration
}

func (s TCPStore) call(ctx context.Context, op byte, key string, value []byte) (byte, []byte, error) {
	d := net.Dialer{Timeout: s.DialTimeout}
	if d.Timeout == 0 {
		d.Timeout = 5 * time.Second
	}
	nc, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return 0, nil, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	req := append([]byte{op, byte(len(key))}, key...)
	if op == 'S' {
		req = binary.LittleEndian.AppendUint32(req, uint32(len(value)))
		req = append(req, value...)
	}
	if _, err := nc.Write(req); err != nil {
		return 0, nil, err
	}
	var hdr [5]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[1:])
	if n > maxStoreValue {
		return 0, nil, fmt.Errorf("%w: store reply of %d bytes", ErrFrameTooLarge, n)
	}
	v := make([]byte, n)
	_, err = io.ReadFull(nc, v)
	return hdr[0], v, err
}

// Set implements Store.
func (s TCPStore) Set(key string, value []byte) error {
	if err := checkKV(key, value); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, v, err := s.call(ctx, 'S', key, value)
	if err == nil && st != 0 {
		err = errors.New(string(v))
	}
	if err != nil {
		return fmt.Errorf("comm: tcp store %s: set %q: %w", s.Addr, key, err)
	}
	return nil
}

// Get implements Store; it polls the server (dial errors included, since
// the server may not be up yet) until the key is set or ctx is done.
func (s TCPStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKV(key, nil); err != nil {
		return nil, err
	}
	var last error
	v, err := poll(ctx, key, func() ([]byte, bool, error) {
		st, v, err := s.call(ctx, 'G', key, nil)
		if err != nil {
			last = err
			return nil, false, nil
		}
		switch st {
		case 0:
			return v, true, nil
		case 1:
			return nil, false, nil
		}
		return nil, false, errors.New(strings.TrimSpace(string(v)))
	})
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last error: %v)", err, last)
	}
	return v, err
}
