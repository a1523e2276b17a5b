package segments

import "bytes"

// chunkBytes bounds the ids of one member_chunks row (see the migration that
// made it). With its key and header a row stays under Postgres' TOAST
// threshold (about 2 kB), so it is stored in place, uncompressed: a chunk
// costs one heap tuple and one index entry, where a member used to.
const chunkBytes = 1700

// idSource yields ids in ascending byte order without repeats; an id is valid
// until the next call. It returns false at the end, or the error that ends it.
type idSource func() ([]byte, bool, error)

// chunkRows is a pgx.CopyFromSource that packs the ids of from into
// member_chunks rows of the list list.
type chunkRows struct {
	list  int64
	from  idSource
	buf   []byte // ids of the chunk being filled, each followed by '\n'
	last  int    // where the last id in buf starts
	held  []byte // an id read that did not fit in the previous chunk
	row   []any
	count int64 // ids packed so far
	done  bool
	err   error
}

func (c *chunkRows) Next() bool {
	if c.done {
		return false
	}
	c.buf, c.last = c.buf[:0], 0
	if len(c.held) > 0 {
		c.add(c.held)
		c.held = c.held[:0]
	}
	for {
		id, ok, err := c.from()
		if err != nil {
			c.err, c.done = err, true
			return false
		}
		if !ok {
			c.done = true
			break
		}
		if len(c.buf) > 0 && len(c.buf)+len(id) >= chunkBytes {
			c.held = append(c.held, id...)
			break
		}
		c.add(id)
	}
	if len(c.buf) == 0 {
		return false
	}
	// A chunk's ids are read back with strings.Split, so the last '\n' goes.
	c.row = []any{c.list, string(c.buf[c.last : len(c.buf)-1]), string(c.buf[:len(c.buf)-1])}
	return true
}

func (c *chunkRows) add(id []byte) {
	c.last = len(c.buf)
	c.buf = append(append(c.buf, id...), '\n')
	c.count++
}

func (c *chunkRows) Values() ([]any, error) { return c.row, nil }

func (c *chunkRows) Err() error { return c.err }

// ascending yields the ids of lines while each is greater than the one before,
// skipping repeats of the one before. At the first id out of order it hands
// that id and the rest of the body to spill, and ends.
func ascending(lines *memberLines, spill func(first []byte) error) idSource {
	var prev []byte
	return func() ([]byte, bool, error) {
		for {
			id, ok, err := lines.next()
			if err != nil || !ok {
				return nil, false, err
			}
			switch bytes.Compare(id, prev) {
			case 1:
				prev = append(prev[:0], id...)
				return id, true, nil
			case 0:
				continue
			}
			return nil, false, spill(id)
		}
	}
}
