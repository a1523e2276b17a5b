package segments

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/heraldpush/herald/protocol"
)

// An id's length fits the 8 bits an arena gives it (a compile error otherwise).
const _ = uint8(protocol.MaxIDLen)

// arena holds ids to be sorted, copied one after the other, with an index.
type arena struct {
	bytes []byte
	ids   []runID
	lcp   int // the length of the prefix all ids share
}

// runID is an id in the arena: where it is, and, for the sort, the 8 bytes
// that follow the prefix all ids in the arena share. Ids are mostly told
// apart by those bytes alone, so most comparisons are of two integers (an
// abbreviated key, as Postgres sorts text), several times faster than
// comparing the ids.
type runID struct {
	key uint64 // big-endian, zero-padded: ids hold no zero bytes, so this orders as the bytes do
	ref uint64 // offset << 8 | length
}

// newArena makes an arena for limit bytes of ids. Its index is made for ids
// of 16 bytes and more: growing it while the arena fills would leave copies
// behind for the collector.
func newArena(limit int) *arena {
	return &arena{bytes: make([]byte, 0, limit), ids: make([]runID, 0, limit/16)}
}

func (a *arena) reset() {
	a.bytes, a.ids = a.bytes[:0], a.ids[:0]
}

func (a *arena) add(id []byte) {
	if len(a.ids) == 0 {
		a.lcp = len(id)
	} else {
		first := a.id(a.ids[0])
		a.lcp = min(a.lcp, len(id))
		for i := range a.lcp {
			if id[i] != first[i] {
				a.lcp = i
				break
			}
		}
	}
	a.ids = append(a.ids, runID{ref: uint64(len(a.bytes))<<8 | uint64(len(id))})
	a.bytes = append(a.bytes, id...)
}

func (a *arena) id(e runID) []byte {
	off := e.ref >> 8
	return a.bytes[off : off+e.ref&0xff]
}

func (a *arena) sort() {
	var key [8]byte
	for i, e := range a.ids {
		clear(key[:])
		copy(key[:], a.id(e)[a.lcp:])
		a.ids[i].key = binary.BigEndian.Uint64(key[:])
	}
	slices.SortFunc(a.ids, func(x, y runID) int {
		if x.key != y.key {
			return cmp.Compare(x.key, y.key)
		}
		return bytes.Compare(a.id(x), a.id(y))
	})
}

// write sorts the arena and writes its ids to w, one a line, once each.
func (a *arena) write(w *bufio.Writer) error {
	a.sort()
	var prev []byte
	for _, e := range a.ids {
		id := a.id(e)
		if bytes.Equal(id, prev) {
			continue
		}
		prev = id
		w.Write(id) // a bufio.Writer keeps its first error for Flush
		w.WriteByte('\n')
	}
	return nil
}

// sorted returns the ids of a sorted arena in order, repeats included.
func (a *arena) sorted() idSource {
	i := 0
	return func() ([]byte, bool, error) {
		if i == len(a.ids) {
			return nil, false, nil
		}
		i++
		return a.id(a.ids[i-1]), true, nil
	}
}
