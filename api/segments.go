package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/segments"
)

type createSegmentRequest struct {
	Name string               `json:"name"`
	Rule *segments.StrictRule `json:"rule"`
}

func (s *Server) createSegment(w http.ResponseWriter, r *http.Request) error {
	var req createSegmentRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Rule == nil {
		return fielderr.New("rule", "is required")
	}
	seg, err := s.Segments.Create(r.Context(), segments.Segment{
		GameID: chi.URLParam(r, "game"), Name: req.Name, Rule: req.Rule.Rule,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/games/"+seg.GameID+"/segments/"+seg.ID.String())
	return writeJSON(w, http.StatusCreated, seg)
}

func (s *Server) listSegments(w http.ResponseWriter, r *http.Request) error {
	limit, after, err := idPageParams(r)
	if err != nil {
		return err
	}
	game := chi.URLParam(r, "game") // liveGame answered 404 or 410 already
	list, more, err := s.Segments.List(r.Context(), game, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(list, more, func(seg segments.Segment) string { return seg.ID.String() }))
}

func (s *Server) getSegment(w http.ResponseWriter, r *http.Request) error {
	id, err := segmentID(r)
	if err != nil {
		return err
	}
	seg, err := s.Segments.Get(r.Context(), chi.URLParam(r, "game"), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, seg)
}

// updateSegmentRequest holds the fields a PATCH may change; absent fields stay.
type updateSegmentRequest struct {
	Name *string              `json:"name"`
	Rule *segments.StrictRule `json:"rule"`
}

func (s *Server) updateSegment(w http.ResponseWriter, r *http.Request) error {
	id, err := segmentID(r)
	if err != nil {
		return err
	}
	var req updateSegmentRequest
	if err := decode(w, r, &req); err != nil {
		return err
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
		return err
	}
	return writeJSON(w, http.StatusOK, seg)
}

func (s *Server) deleteSegment(w http.ResponseWriter, r *http.Request) error {
	id, err := segmentID(r)
	if err != nil {
		return err
	}
	if err := s.Segments.Delete(r.Context(), chi.URLParam(r, "game"), id, campaigns.SegmentUsers); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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
