package segments

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
)

// memberLines reads an uploaded member list, one player id per line ("\n" or
// "\r\n" endings, empty lines skipped), and stops at the first invalid line.
// It hands out ids as slices of its read buffer, so that ten million lines
// cost no allocation each; an id is valid until the next call.
type memberLines struct {
	r    *bufio.Reader
	line int
}

func newMemberLines(body io.Reader) *memberLines {
	return &memberLines{r: bufio.NewReaderSize(body, 64<<10)}
}

// next returns the next player id, false at the end of the body, or the error
// that ends the upload: a fielderr.List naming the first invalid line, or the
// body's read error.
func (m *memberLines) next() ([]byte, bool, error) {
	for {
		raw, err := m.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			m.line++
			return nil, false, lineError(m.line, "longer than %d bytes", protocol.MaxIDLen)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, fmt.Errorf("read member list: %w", err)
		}
		if len(raw) == 0 && err != nil {
			return nil, false, nil // io.EOF
		}
		m.line++
		raw = bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		if len(raw) == 0 {
			continue
		}
		// The conversion does not escape CheckID, so for ids of up to 32 bytes
		// it is made on the stack.
		if idErr := protocol.CheckID(string(raw)); idErr != nil {
			return nil, false, lineError(m.line, "player id %v", idErr)
		}
		return raw, true, nil
	}
}

func lineError(line int, format string, args ...any) error {
	return fielderr.New("body", "line %d: "+format, append([]any{line}, args...)...)
}
