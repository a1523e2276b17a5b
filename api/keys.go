package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/games"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/valid"
)

// createdKey is the one answer that carries a key's secret.
type createdKey struct {
	auth.Key
	Secret string `json:"secret"`
}

// createKey, listKeys, revokeKey and listAudit keep an admin key limited to
// some games inside them: it creates keys limited to some of its games, lists
// and revokes only such keys (others answer as if they did not exist), and
// reads only the audit rows of its games and of those keys (auth.Key.Covers).
// An unlimited admin key sees and does everything.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	var in auth.Input
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if caller := callerKey(r.Context()); !caller.Covers(in.Games) {
		return &httpError{status: http.StatusForbidden,
			detail: "this API key is limited to games " + strings.Join(caller.Games, ", ") + ": it may only create keys limited to some of them",
			fields: fielderr.List{{Field: "games", Message: "must name only games among " + strings.Join(caller.Games, ", ")}}}
	}
	key, secret, err := s.Keys.Create(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, createdKey{Key: key, Secret: secret})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	limit, after, err := idPageParams(r)
	if err != nil {
		return err
	}
	keys, more, err := s.Keys.List(r.Context(), after, limit, callerKey(r.Context()).Games)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(keys, more, func(k auth.Key) string { return k.ID.String() }))
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return auth.ErrNotFound
	}
	if _, err := s.Keys.Revoke(r.Context(), id, callerKey(r.Context()).Games); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	limit, cursor, err := pageParams(r)
	if err != nil {
		return err
	}
	caller := callerKey(r.Context())
	q := audit.Query{Game: r.URL.Query().Get("game"), Limit: limit, Within: caller.Games}
	var errs fielderr.List
	if q.Game != "" {
		if err := protocol.CheckID(q.Game); err != nil {
			errs.Add("game", "%v", err)
		}
	}
	if v := r.URL.Query().Get("since"); v != "" {
		if q.Since, err = valid.ParseTime(v); err != nil {
			errs.Add("since", "%v", err)
		}
	}
	if cursor != "" {
		if q.After, err = strconv.ParseInt(cursor, 10, 64); err != nil {
			errs.Add("cursor", "is not a cursor this endpoint returned")
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if q.Game != "" && !caller.Allows(q.Game) {
		return games.ErrNotFound // as on every route of a game out of scope
	}
	rows, more, err := s.Audit.List(r.Context(), q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(rows, more, func(row audit.Row) string { return strconv.FormatInt(row.ID, 10) }))
}
