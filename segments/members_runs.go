package segments

import (
	"bufio"
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
)

// defaultRunBytes is how many bytes of ids an upload that is not in order
// sorts in memory at a time: a quarter of a million ids of 16 bytes, 8 MiB
// with their index, twice (one arena fills while the other is sorted). Larger
// runs save little (ten million ids make 40 runs, merged in one pass) and
// cost memory that every concurrent upload holds: with 8 MiB runs a 10M-id
// upload peaked at 93 MiB of RSS, with 4 MiB at 63 MiB, at the same speed.
const defaultRunBytes = 4 << 20

// runs sorts the ids of an upload that did not arrive in order, in bounded
// memory: it gathers them in an arena, and each time the arena is full sorts
// it and writes it, without repeats, to a temporary file (a run), which merge
// then reads back in one pass. A full arena is sorted and written in the
// background while the next one fills, so the sort costs the upload little
// time where a core is free. The disk needed is about the body's size, in
// os.TempDir (TMPDIR); close removes the files.
type runs struct {
	dir     string // "" for os.TempDir
	limit   int
	cur     *arena
	spare   *arena     // nil until the first run, then free or being written
	writing chan error // the result of the run being written; nil if none is
	files   []*os.File
}

// newRuns starts with an arena that grows as it fills, so that a short list
// out of order takes no more memory than it needs.
func newRuns(dir string, limit int) *runs {
	return &runs{dir: dir, limit: limit, cur: &arena{}}
}

// add copies id into the arena, first handing a full arena to the background
// to be written out as a run.
func (r *runs) add(id []byte) error {
	if len(r.cur.bytes)+len(id) > r.limit && len(r.cur.ids) > 0 {
		if err := r.wait(); err != nil {
			return err
		}
		f, err := r.newFile()
		if err != nil {
			return err
		}
		if r.spare == nil {
			r.spare = newArena(r.limit)
		}
		full := r.cur
		r.cur, r.spare = r.spare, full
		r.cur.reset()
		done := make(chan error, 1)
		r.writing = done
		go func() { done <- fill(f, full.write) }()
	}
	r.cur.add(id)
	return nil
}

// wait waits for the run being written, if any, and returns its error.
func (r *runs) wait() error {
	if r.writing == nil {
		return nil
	}
	err := <-r.writing
	r.writing = nil
	return err
}

// addRun adds a run that write fills with ids in ascending order, one a line.
func (r *runs) addRun(write func(*bufio.Writer) error) error {
	f, err := r.newFile()
	if err != nil {
		return err
	}
	return fill(f, write)
}

func (r *runs) newFile() (*os.File, error) {
	f, err := os.CreateTemp(r.dir, "herald-members-*")
	if err != nil {
		return nil, fmt.Errorf("sort member list: %w", err)
	}
	r.files = append(r.files, f)
	return f, nil
}

// fill writes a run to f with write and rewinds f for the merge.
func fill(f *os.File, write func(*bufio.Writer) error) error {
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

// close waits for the run being written and removes the runs' files.
func (r *runs) close() error {
	errs := []error{r.wait()}
	for _, f := range r.files {
		errs = append(errs, f.Close(), os.Remove(f.Name()))
	}
	return errors.Join(errs...)
}

// merge returns the ids of every run and of the arena in ascending order,
// once each.
func (r *runs) merge() (idSource, error) {
	if err := r.wait(); err != nil {
		return nil, err
	}
	r.cur.sort()
	var h mergeHeap
	push := func(next idSource) error {
		head, ok, err := next()
		if ok {
			h = append(h, &mergeInput{head: head, next: next})
		}
		return err
	}
	for _, f := range r.files {
		if err := push(lines(f)); err != nil {
			return nil, err
		}
	}
	if err := push(r.cur.sorted()); err != nil {
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

// lines reads a run's file, one id a line.
func lines(f *os.File) idSource {
	rd := bufio.NewReaderSize(f, 64<<10)
	return func() ([]byte, bool, error) {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("sort member list: read %s: %w", f.Name(), err)
		}
		return line[:len(line)-1], true, nil
	}
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
