package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
)

type createGameRequest struct {
	ID            string               `json:"id"`
	Name          string               `json:"name"`
	DefaultLocale string               `json:"default_locale"`
	Tags          map[string]games.Tag `json:"tags"`
	ZoneTag       string               `json:"zone_tag"`
}

func (s *Server) createGame(w http.ResponseWriter, r *http.Request) error {
	var req createGameRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if key := callerKey(r.Context()); !key.Allows(req.ID) {
		return &httpError{status: http.StatusForbidden, detail: "this API key may not touch game " + req.ID}
	}
	g := games.Game{ID: req.ID, Name: req.Name, DefaultLocale: req.DefaultLocale, Tags: req.Tags, ZoneTag: req.ZoneTag}
	if err := g.Validate(); err != nil {
		return err
	}
	created, err := s.Games.Create(r.Context(), g)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/games/"+created.ID)
	return writeJSON(w, http.StatusCreated, created)
}

func (s *Server) listGames(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := pageParams(r)
	if err == nil && cursor != "" && protocol.CheckID(cursor) != nil {
		err = errBadCursor
	}
	if err != nil {
		return err
	}
	list, more, err := s.Games.List(r.Context(), cursor, limit, callerKey(r.Context()).Games)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(list, more, func(g games.Game) string { return g.ID }))
}

func (s *Server) getGame(w http.ResponseWriter, r *http.Request) error {
	g, err := s.Games.Get(r.Context(), chi.URLParam(r, "game"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

// updateGameRequest holds the fields a PATCH may change; absent fields stay.
// Tags, when present, replace the whole schema.
type updateGameRequest struct {
	Name          *string               `json:"name"`
	DefaultLocale *string               `json:"default_locale"`
	Tags          *map[string]games.Tag `json:"tags"`
	// ZoneTag names the tag of the players' time zones; "" removes it.
	ZoneTag *string `json:"zone_tag"`
}

func (s *Server) updateGame(w http.ResponseWriter, r *http.Request) error {
	var req updateGameRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	change := func(g *games.Game) {
		if req.Name != nil {
			g.Name = *req.Name
		}
		if req.DefaultLocale != nil {
			g.DefaultLocale = *req.DefaultLocale
		}
		if req.Tags != nil {
			g.Tags = *req.Tags
		}
		if req.ZoneTag != nil {
			g.ZoneTag = *req.ZoneTag
		}
	}
	g, err := s.Games.Update(r.Context(), chi.URLParam(r, "game"), change,
		campaigns.GameChangeCheck(req.Tags != nil, req.DefaultLocale != nil, req.ZoneTag != nil))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

// requireGame loads the game named in the path, so that routes under an unknown
// game answer 404 before looking at anything else.
func (s *Server) requireGame(r *http.Request) (games.Game, error) {
	return s.Games.Get(r.Context(), chi.URLParam(r, "game"))
}
