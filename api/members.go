package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

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
	body := http.MaxBytesReader(w, r.Body, maxMemberUpload)
	if _, err := s.Segments.ReplaceMembers(r.Context(), game, id, body); err != nil {
		s.writeError(w, r, err)
		return
	}
	seg, err := s.Segments.Get(r.Context(), game, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, seg)
}
