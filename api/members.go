package api

import (
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// idleTimeout is how long a member upload may go without sending data.
const idleTimeout = time.Minute

// progressReader moves the connection's read deadline forward before each read.
type progressReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (p *progressReader) Read(b []byte) (int, error) {
	_ = p.rc.SetReadDeadline(time.Now().Add(idleTimeout))
	return p.r.Read(b)
}

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
	// A list of millions streams for longer than the server's read and write
	// timeouts allow a request: this one instead gets idleTimeout after each
	// piece of body that arrives, so only a client that stalls is cut off.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // errors mean "not supported": the server's own timeouts stay
	body := &progressReader{r: http.MaxBytesReader(w, r.Body, maxMemberUpload), rc: rc}
	_, err = s.Segments.ReplaceMembers(r.Context(), game, id, body)
	_ = rc.SetWriteDeadline(time.Now().Add(idleTimeout))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	seg, err := s.Segments.Get(r.Context(), game, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, seg)
}
