package segments

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/heraldpush/herald/protocol"
)

// defaultRunBytes is how many bytes of ids an upload that is not in order
// sorts in memory at a time: half a million ids of 16 bytes, some 16 MiB with
// their index. Larger runs save little (ten million ids make 20 runs, merged
// in one pass) and cost memory that every concurrent upload holds.
const defaultRunBytes = 8 << 20

// An id's length fits the 8 bits runs gives it (a compile error otherwise).
const _ = uint8(protocol.MaxIDLen)

// runs sorts the ids of an upload that did not arrive in order, in bounded
// memory: it gathers them in an arena, and each time the arena is full sorts
// it and writes it, without repeats, to a temporary file (a run), which merge
// then reads back in one pass. The disk needed is about the body's size, in
// os.TempDir (TMPDIR); close removes the files.
type runs struct {
	dir   string // "" for os.TempDir
	limit int
	arena []byte
	ids   []runID
	lcp   int // the length of the prefix all ids in arena share
	files []*os.File
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

func newRuns(dir string, limit int) *runs {
	// The index is made for ids of 16 bytes and more: growing it while the
	// arena fills would leave copies behind for the collector.
	return &runs{dir: dir, limit: limit, arena: make([]byte, 0, limit), ids: make([]runID, 0, limit/16)}
}

// add copies id into the arena, first writing out a full arena as a run.
func (r *runs) add(id []byte) error {
	if len(r.arena)+len(id) > r.limit && len(r.ids) > 0 {
		if err := r.addRun(r.writeArena); err != nil {
			return err
		}
		r.arena, r.ids = r.arena[:0], r.ids[:0]
	}
	if len(r.ids) == 0 {
		r.lcp = len(id)
	} else {
		first := r.id(r.ids[0])
		r.lcp = min(r.lcp, len(id))
		for i := range r.lcp {
			if id[i] != first[i] {
				r.lcp = i
				break
			}
		}
	}
	r.ids = append(r.ids, runID{ref: uint64(len(r.arena))<<8 | uint64(len(id))})
	r.arena = append(r.arena, id...)
	return nil
}

func (r *runs) id(e runID) []byte {
	off := e.ref >> 8
	return r.arena[off : off+e.ref&0xff]
}

func (r *runs) sortArena() {
	var key [8]byte
	for i, e := range r.ids {
		clear(key[:])
		copy(key[:], r.id(e)[r.lcp:])
		r.ids[i].key = binary.BigEndian.Uint64(key[:])
	}
	slices.SortFunc(r.ids, func(a, b runID) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return bytes.Compare(r.id(a), r.id(b))
	})
}

// writeArena sorts the arena and writes its ids to w, one a line, once each.
func (r *runs) writeArena(w *bufio.Writer) error {
	r.sortArena()
	var prev []byte
	for _, e := range r.ids {
		id := r.id(e)
		if bytes.Equal(id, prev) {
			continue
		}
		prev = id
		w.Write(id) // a bufio.Writer keeps its first error for Flush
		w.WriteByte('\n')
	}
	return nil
}

// addRun adds a run that write fills with ids in ascending order, one a line.
func (r *runs) addRun(write func(*bufio.Writer) error) error {
	f, err := os.CreateTemp(r.dir, "herald-members-*")
	if err != nil {
		return fmt.Errorf("sort member list: %w", err)
	}
	r.files = append(r.files, f)
	w := bufio.NewWriterSize(f, 64<<10)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("sort member list: write %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("sort member list: rewind %s: %w", f.Name(), err)
	}
	return nil
}

// close removes the runs' files.
func (r *runs) close() error {
	var errs []error
	for _, f := range r.files {
		errs = append(errs, f.Close(), os.Remove(f.Name()))
	}
	return errors.Join(errs...)
}

// merge returns the ids of every run and of the arena in ascending order,
// once each.
func (r *runs) merge() (idSource, error) {
	r.sortArena()
	var h mergeHeap
	push := func(next idSource) error {
		head, ok, err := next()
		if ok {
			h = append(h, &mergeInput{head: head, next: next})
		}
		return err
	}
	for _, f := range r.files {
		rd := bufio.NewReaderSize(f, 64<<10)
		name := f.Name()
		err := push(func() ([]byte, bool, error) {
			line, err := rd.ReadSlice('\n')
			if errors.Is(err, io.EOF) && len(line) == 0 {
				return nil, false, nil
			}
			if err != nil {
				return nil, false, fmt.Errorf("sort member list: read %s: %w", name, err)
			}
			return line[:len(line)-1], true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	i := 0
	if err := push(func() ([]byte, bool, error) {
		if i == len(r.ids) {
			return nil, false, nil
		}
		i++
		return r.id(r.ids[i-1]), true, nil
	}); err != nil {
		return nil, err
	}
	heap.Init(&h)
	var last []byte
	return func() ([]byte, bool, error) {
		for len(h) > 0 {
			top := h[0]
			repeat := bytes.Equal(top.head, last)
			if !repeat {
				last = append(last[:0], top.head...)
			}
			head, ok, err := top.next()
			if err != nil {
				return nil, false, err
			}
			if ok {
				top.head = head
				heap.Fix(&h, 0)
			} else {
				heap.Pop(&h)
			}
			if !repeat {
				return last, true, nil
			}
		}
		return nil, false, nil
	}, nil
}

// mergeInput is one sorted input of a merge, with its smallest id not taken yet.
type mergeInput struct {
	head []byte
	next idSource
}

// mergeHeap orders merge inputs by their heads (container/heap).
type mergeHeap []*mergeInput

func (h mergeHeap) Len() int           { return len(h) }
func (h mergeHeap) Less(i, j int) bool { return bytes.Compare(h[i].head, h[j].head) < 0 }
func (h mergeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)        { *h = append(*h, x.(*mergeInput)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
