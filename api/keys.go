package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/audit"
	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/fielderr"
)

// createdKey is the one answer that carries a key's secret.
type createdKey struct {
	auth.Key
	Secret string `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var in auth.Input
	if err := decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	key, secret, err := s.Keys.Create(r.Context(), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdKey{Key: key, Secret: secret})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	limit, after, err := idPageParams(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	keys, more, err := s.Keys.List(r.Context(), after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(keys, more, func(k auth.Key) string { return k.ID.String() }))
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, auth.ErrNotFound)
		return
	}
	if _, err := s.Keys.Revoke(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := pageParams(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := audit.Query{Game: r.URL.Query().Get("game"), Limit: limit}
	var errs fielderr.List
	if v := r.URL.Query().Get("since"); v != "" {
		if q.Since, err = time.Parse(time.RFC3339, v); err != nil {
			errs.Add("since", "must be an RFC 3339 time")
		}
	}
	if cursor != "" {
		if q.After, err = strconv.ParseInt(cursor, 10, 64); err != nil {
			errs.Add("cursor", "is not a cursor this endpoint returned")
		}
	}
	if len(errs) > 0 {
		s.writeError(w, r, errs)
		return
	}
	rows, more, err := audit.List(r.Context(), s.DB, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newPage(rows, more, func(row audit.Row) string { return strconv.FormatInt(row.ID, 10) }))
}
