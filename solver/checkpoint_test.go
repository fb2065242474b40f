package solver_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/asyncmb/asyncmb/solver"
)

func sampleCheckpoint() *solver.Checkpoint {
	return &solver.Checkpoint{
		Tag: "a9a l1 1e-4", T: 12345, Samples: 98760, Pos: 17, Batch: 8,
		RNG:      []byte("pcg:0123456789abcdef"),
		Schedule: solver.StrongSchedule(1.5, 3, 1e-4),
		Avg: solver.Averager{Kind: solver.AvgTail, N: 12345, CurN: 4000, PrevN: 4096,
			Cur: []float64{1, -2, 3.5}, Prev: []float64{0, math.SmallestNonzeroFloat64, -0.25}},
		X: []float64{0.5, math.Inf(1), -7},
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range []*solver.Checkpoint{sampleCheckpoint(), {}, {X: []float64{1}, Avg: solver.Averager{Kind: solver.AvgUniform, Cur: []float64{2}}}} {
		b, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got solver.Checkpoint
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		b2, err := got.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) || got.Tag != c.Tag || got.T != c.T || got.Schedule != c.Schedule || len(got.X) != len(c.X) {
			t.Fatalf("round trip changed the checkpoint: %+v -> %+v", c, got)
		}
	}
}

// TestCheckpointBadFiles: a truncated, corrupted, foreign or newer file is
// refused with the matching error, never decoded into garbage.
func TestCheckpointBadFiles(t *testing.T) {
	good, err := sampleCheckpoint().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		return b
	}
	newer := bytes.Clone(good)
	binary.LittleEndian.PutUint16(newer[8:], solver.CheckpointVersion+1)
	// Re-checksum so that only the version is wrong.
	end := len(newer) - 4
	binary.LittleEndian.PutUint32(newer[end:], crc32c(newer[:end]))
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, solver.ErrCheckpointTruncated},
		{"magic prefix", good[:5], solver.ErrCheckpointTruncated},
		{"foreign", []byte("PK\x03\x04 not a checkpoint at all"), solver.ErrCheckpointMagic},
		{"header only", good[:20], solver.ErrCheckpointTruncated},
		{"cut in the body", good[:len(good)/2], solver.ErrCheckpointTruncated},
		{"cut in the checksum", good[:len(good)-1], solver.ErrCheckpointTruncated},
		{"trailing bytes", append(bytes.Clone(good), 0), solver.ErrCheckpointCorrupt},
		{"flipped body bit", flip(40), solver.ErrCheckpointChecksum},
		{"flipped checksum bit", flip(len(good) - 2), solver.ErrCheckpointChecksum},
		{"flipped version bit", flip(8), solver.ErrCheckpointChecksum},
		{"newer version", newer, solver.ErrCheckpointVersion},
	}
	for _, c := range cases {
		var ck solver.Checkpoint
		err := ck.UnmarshalBinary(c.b)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// The file API names the path.
	dir := t.TempDir()
	p := filepath.Join(dir, "ck")
	if err := os.WriteFile(p, good[:len(good)-9], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := solver.ReadCheckpoint(p); !errors.Is(err, solver.ErrCheckpointTruncated) || !bytes.Contains([]byte(err.Error()), []byte(p)) {
		t.Errorf("ReadCheckpoint of a truncated file: %v", err)
	}
}

// TestWriteCheckpointAtomic: the write replaces the file and leaves no
// temporary file behind.
func TestWriteCheckpointAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.ckpt")
	c := sampleCheckpoint()
	for i := 0; i < 3; i++ {
		c.T = int64(i)
		if err := solver.WriteCheckpoint(p, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := solver.ReadCheckpoint(p)
	if err != nil || got.T != 2 {
		t.Fatalf("read back %v, %v", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries after atomic writes, want 1", len(ents))
	}
	if err := solver.WriteCheckpoint(filepath.Join(dir, "missing", "x"), c); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func crc32c(b []byte) uint32 {
	// Castagnoli, bitwise: independent of hash/crc32's table code.
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for k := 0; k < 8; k++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// FuzzCheckpointDecode: the decoder never panics or over-allocates, and
// whatever it accepts re-encodes to the same bytes.
func FuzzCheckpointDecode(f *testing.F) {
	for _, c := range []*solver.Checkpoint{sampleCheckpoint(), {}} {
		b, err := c.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c solver.Checkpoint
		if err := c.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded checkpoint does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
