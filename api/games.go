package api

import (
	"encoding/json"
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
	ConfirmOver   *int64               `json:"confirm_over"`
}

func (s *Server) createGame(w http.ResponseWriter, r *http.Request) error {
	var req createGameRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if key := callerKey(r.Context()); !key.Allows(req.ID) {
		return &httpError{status: http.StatusForbidden, detail: "this API key may not touch game " + req.ID}
	}
	g := games.Game{ID: req.ID, Name: req.Name, DefaultLocale: req.DefaultLocale, Tags: req.Tags, ZoneTag: req.ZoneTag,
		ConfirmOver: req.ConfirmOver}
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
	archived, err := boolQuery(r, "archived")
	if err != nil {
		return err
	}
	list, more, err := s.Games.List(r.Context(), cursor, limit, callerKey(r.Context()).Games, archived)
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
// Tags, when present, replace the whole schema; confirm_over null unsets it.
type updateGameRequest struct {
	Name          *string               `json:"name"`
	DefaultLocale *string               `json:"default_locale"`
	Tags          *map[string]games.Tag `json:"tags"`
	// ZoneTag names the tag of the players' time zones; "" removes it.
	ZoneTag     *string         `json:"zone_tag"`
	ConfirmOver nullable[int64] `json:"confirm_over"`
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
		if req.ConfirmOver.Set {
			g.ConfirmOver = req.ConfirmOver.Value
		}
	}
	g, err := s.Games.Update(r.Context(), chi.URLParam(r, "game"), change,
		campaigns.GameChangeCheck(req.Tags != nil, req.DefaultLocale != nil, req.ZoneTag != nil))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

// archiveGame archives a game none of whose campaigns is unfinished.
func (s *Server) archiveGame(w http.ResponseWriter, r *http.Request) error {
	g, err := s.Games.Archive(r.Context(), chi.URLParam(r, "game"), campaigns.GameArchiveCheck)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

// unarchiveGame makes an archived game usable again.
func (s *Server) unarchiveGame(w http.ResponseWriter, r *http.Request) error {
	g, err := s.Games.Unarchive(r.Context(), chi.URLParam(r, "game"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

// nullable is a JSON member that may be absent (Set false), null (Value nil)
// or a value, for a PATCH that can unset a field.
type nullable[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the member was given, and its value unless null.
func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set, n.Value = true, nil
	if string(b) == "null" {
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.Value = &v
	return nil
}
