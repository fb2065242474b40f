package comm

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestDelayConn: every write reaches the peer no sooner than the delay,
// in order even with jitter, and Close sends what is still held.
func TestDelayConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	const delay, jitter = 20 * time.Millisecond, 10 * time.Millisecond
	dc := NewDelayConn(raw, delay, jitter, 1)
	var want bytes.Buffer
	start := time.Now()
	for i := range 50 {
		msg := []byte{byte(i), byte(i), byte(i)}
		want.Write(msg)
		if n, err := dc.Write(msg); n != 3 || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if took := time.Since(start); took > delay {
		t.Errorf("50 writes took %v: Write must not wait for the delay", took)
	}
	first := make([]byte, 3)
	if _, err := io.ReadFull(peer, first); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay {
		t.Errorf("the first write arrived after %v, before the delay %v", el, delay)
	}
	if err := dc.Close(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("received %v, want %v (in order, complete after Close)", got, want.Bytes())
	}
	if _, err := dc.Write([]byte{1}); err == nil {
		t.Error("write after Close succeeded")
	}
}
