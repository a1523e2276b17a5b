package api

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/heraldpush/herald/fielderr"
)

// idleTimeout is how long a member upload may go without sending data.
const idleTimeout = time.Minute

// progressReader moves the connection's read deadline forward before each read,
// and keeps the first read error: the body broke off, was malformed (a bad
// chunk), stalled or was too large.
type progressReader struct {
	r   io.Reader
	rc  *http.ResponseController
	err error
}

func (p *progressReader) Read(b []byte) (int, error) {
	_ = p.rc.SetReadDeadline(time.Now().Add(idleTimeout))
	n, err := p.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) && p.err == nil {
		p.err = err
	}
	return n, err
}

// errNotMembers refuses a member list for a segment whose rule would not use it.
var errNotMembers = &httpError{status: http.StatusConflict,
	detail: `this segment's rule does not use its member list: add {"members": true} to the rule before uploading members`}

// maxMemberUpload bounds one member list upload. At about 10 bytes an id, it
// leaves room for far more than a hundred million players.
const maxMemberUpload = 4 << 30

// replaceMembers streams a text/plain body of player ids, one per line, into the
// segment's member list; the previous list stays until the new one is complete.
func (s *Server) replaceMembers(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	game := chi.URLParam(r, "game")
	seg, err := s.Segments.Get(r.Context(), game, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !seg.Rule.UsesMembers() {
		s.writeError(w, r, errNotMembers)
		return
	}
	// A list of millions streams for longer than the server's read and write
	// timeouts allow a request: this one instead gets idleTimeout after each
	// piece of body that arrives, so only a client that stalls is cut off.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // errors mean "not supported": the server's own timeouts stay
	body := &progressReader{r: http.MaxBytesReader(w, r.Body, maxMemberUpload), rc: rc}
	_, err = s.Segments.ReplaceMembers(r.Context(), game, id, body)
	_ = rc.SetWriteDeadline(time.Now().Add(idleTimeout))
	var tooBig *http.MaxBytesError
	if err != nil && body.err != nil && !errors.As(body.err, &tooBig) {
		// The caller's body, not the server, failed: a 400, not a 500.
		err = badRequest("the request body could not be read to its end: "+body.err.Error(), fielderr.List{{Field: "body", Message: "could not be read"}})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	seg, err = s.Segments.Get(r.Context(), game, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, seg)
}
