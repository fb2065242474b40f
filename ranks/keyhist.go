package ranks

import (
	"hash/crc32"
	"slices"
)

// Key histories. With keyed pull both ends of a worker's link remember the
// last few key lists the worker sent (keyHist: the worker what it encoded,
// the master what it decoded), numbered in order from 0 since the link
// began (a worker's start or late join). Messages then name a list instead
// of carrying it again:
//
//   - a keyed reply carries x's values only, with the number, length and
//     CRC of the list they are on (the worker pairs them with the keys it
//     sent);
//   - a sparse gradient whose support is a list the worker sent (a batch
//     in local form: its gradient comes out on the batch's keys, sent one
//     or two gradients before) carries the list's number and CRC and the
//     values only.
//
// Anything else (dense gradients, refresh parts, batches not in local
// form, a list no longer held) goes with explicit indices, as before. A
// number not held, or a length or CRC that differs from the list held, is
// a protocol error, never a silent pairing with other keys.
const keyHistLen = 4

// keyHist holds one link's last keyHistLen key lists. The zero value is
// empty (a fresh link).
type keyHist struct {
	n    int64 // lists recorded so far: the next one's number
	ents [keyHistLen]keyList
}

// keyList is one recorded key list.
type keyList struct {
	seq  int64
	held bool
	crc  uint32 // CRC-32C of the list's delta-varint code (appendKeys)
	keys []int32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// keysCRC is the check of a key list sent with its code: CRC-32C, which
// hash/crc32 computes with the CPU's instruction (a few hundred ns for a
// 3,800-key list's 7 KB).
func keysCRC(code []byte) uint32 { return crc32.Checksum(code, castagnoli) }

// next returns the entry of the next list, numbered, in place of the
// oldest (its keys' buffer reused: the caller fills keys and crc).
func (h *keyHist) next() *keyList {
	e := &h.ents[h.n%keyHistLen]
	e.seq, e.held = h.n, true
	h.n++
	return e
}

// record keeps a copy of keys, whose code is code, as the next list, and
// returns its number.
func (h *keyHist) record(keys []int32, code []byte) int64 {
	e := h.next()
	e.keys = append(e.keys[:0], keys...)
	e.crc = keysCRC(code)
	return e.seq
}

// get returns list seq, or nil if it is not held (never sent, or too old;
// nil for a nil h).
func (h *keyHist) get(seq int64) *keyList {
	if h == nil || seq < 0 || seq >= h.n {
		return nil
	}
	e := &h.ents[seq%keyHistLen]
	if !e.held || e.seq != seq {
		return nil
	}
	return e
}

// find returns the newest list held equal to keys, or nil (nil for a nil
// h). A match is
// nearly always the newest or the one before, so it costs one comparison
// of len(keys) words (lists of other lengths are skipped at once).
func (h *keyHist) find(keys []int32) *keyList {
	if h == nil {
		return nil
	}
	for s := h.n - 1; s >= max(h.n-keyHistLen, 0); s-- {
		e := h.get(s)
		if e != nil && len(e.keys) == len(keys) && slices.Equal(e.keys, keys) {
			return e
		}
	}
	return nil
}

// reset forgets every list (a worker that joins again starts a new link).
func (h *keyHist) reset() {
	for i := range h.ents {
		h.ents[i].held = false
	}
	h.n = 0
}
