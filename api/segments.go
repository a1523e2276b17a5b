package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/segments"
)

type createSegmentRequest struct {
	Name string               `json:"name"`
	Rule *segments.StrictRule `json:"rule"`
}

func (s *Server) createSegment(w http.ResponseWriter, r *http.Request) {
	var req createSegmentRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Rule == nil {
		s.writeError(w, r, fielderr.New("rule", "is required"))
		return
	}
	seg, err := s.Segments.Create(r.Context(), segments.Segment{
		GameID: chi.URLParam(r, "game"), Name: req.Name, Rule: req.Rule.Rule,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/games/"+seg.GameID+"/segments/"+seg.ID.String())
	s.writeJSON(w, r, http.StatusCreated, seg)
}

func (s *Server) listSegments(w http.ResponseWriter, r *http.Request) {
	limit, after, err := idPageParams(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.requireGame(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.Segments.List(r.Context(), g.ID, after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newPage(list, more, func(seg segments.Segment) string { return seg.ID.String() }))
}

func (s *Server) getSegment(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	seg, err := s.Segments.Get(r.Context(), chi.URLParam(r, "game"), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, seg)
}

// updateSegmentRequest holds the fields a PATCH may change; absent fields stay.
type updateSegmentRequest struct {
	Name *string              `json:"name"`
	Rule *segments.StrictRule `json:"rule"`
}

func (s *Server) updateSegment(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req updateSegmentRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	seg, err := s.Segments.Update(r.Context(), chi.URLParam(r, "game"), id, func(seg *segments.Segment) {
		if req.Name != nil {
			seg.Name = *req.Name
		}
		if req.Rule != nil {
			seg.Rule = req.Rule.Rule
		}
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, seg)
}

func (s *Server) deleteSegment(w http.ResponseWriter, r *http.Request) {
	id, err := segmentID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Segments.Delete(r.Context(), chi.URLParam(r, "game"), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// segmentID reads the {id} path parameter. An id that cannot be a segment's is
// simply not found.
func segmentID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, segments.ErrNotFound
	}
	return id, nil
}
