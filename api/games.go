package api

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/segments"
	"github.com/heraldpush/herald/topics"
)

type createGameRequest struct {
	ID            string               `json:"id"`
	Name          string               `json:"name"`
	DefaultLocale string               `json:"default_locale"`
	Tags          map[string]games.Tag `json:"tags"`
	ZoneTag       string               `json:"zone_tag"`
}

func (s *Server) createGame(w http.ResponseWriter, r *http.Request) {
	var req createGameRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if key := callerKey(r.Context()); !key.Allows(req.ID) {
		s.writeError(w, r, &httpError{status: http.StatusForbidden, detail: "this API key may not touch game " + req.ID})
		return
	}
	g := games.Game{ID: req.ID, Name: req.Name, DefaultLocale: req.DefaultLocale, Tags: req.Tags, ZoneTag: req.ZoneTag}
	if err := g.Validate(); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.Games.Create(r.Context(), g)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/games/"+created.ID)
	s.writeJSON(w, r, http.StatusCreated, created)
}

func (s *Server) listGames(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageParams(r)
	if err == nil && cursor != "" && topics.CheckID(cursor) != nil {
		err = errBadCursor
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.Games.List(r.Context(), cursor, limit, callerKey(r.Context()).Games)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newPage(list, more, func(g games.Game) string { return g.ID }))
}

func (s *Server) getGame(w http.ResponseWriter, r *http.Request) {
	g, err := s.Games.Get(r.Context(), chi.URLParam(r, "game"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, g)
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

func (s *Server) updateGame(w http.ResponseWriter, r *http.Request) {
	var req updateGameRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
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
	var checks []func(context.Context, pgx.Tx, games.Game) error
	if req.Tags != nil {
		checks = append(checks, segments.CheckSchema, campaigns.CheckSchema) // a new schema must keep every audience valid
	}
	if req.DefaultLocale != nil {
		checks = append(checks, campaigns.CheckLocale) // unfinished campaigns must speak the new default locale
	}
	if req.Tags != nil || req.ZoneTag != nil {
		checks = append(checks, campaigns.CheckZones) // campaigns in players' time need the zone tag
	}
	g, err := s.Games.Update(r.Context(), chi.URLParam(r, "game"), change, allOf(checks))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, g)
}

// requireGame loads the game named in the path, so that routes under an unknown
// game answer 404 before looking at anything else.
func (s *Server) requireGame(r *http.Request) (games.Game, error) {
	return s.Games.Get(r.Context(), chi.URLParam(r, "game"))
}

// allOf runs every check of a changed game and names all that it would break:
// segment rules and inline campaign audiences that a new tag schema no longer
// fits, campaigns without text in a new default locale.
func allOf(checks []func(context.Context, pgx.Tx, games.Game) error) func(context.Context, pgx.Tx, games.Game) error {
	return func(ctx context.Context, tx pgx.Tx, g games.Game) error {
		var errs fielderr.List
		for _, check := range checks {
			err := check(ctx, tx, g)
			if l, ok := fielderr.As(err); ok {
				errs = append(errs, l...)
			} else if err != nil {
				return err
			}
		}
		return errs.Err()
	}
}
