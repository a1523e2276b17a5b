package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/kickouts"
)

// maxKickoutBody is the largest kick-out request: room for 10,000 player ids
// of the longest kind (128 bytes).
const maxKickoutBody = 2 << 20

// kickoutRoutes registers the kick-out routes. Neither has the request-wide
// database bound: a request may wait up to kickouts.MaxWait for receipts, and
// the kick-outs service bounds each of its database steps itself.
func (s *Server) kickoutRoutes(r chi.Router) {
	s.handleCreate(r, "/games/{game}/kickouts", auth.PermKickouts, replayAnswer, nil, s.createKickout)
	s.handleLong(r, "GET", "/games/{game}/kickouts/{id}", auth.PermKickouts, s.getKickout)
}

// createKickout publishes a kick-out at once and answers 201 with its status;
// with ?wait= it answers once every targeted player confirmed, the ttl passed
// or the wait ended.
func (s *Server) createKickout(w http.ResponseWriter, r *http.Request) error {
	wait, err := waitQuery(r)
	if err != nil {
		return err
	}
	var in kickouts.Input
	if err := decodeUpTo(w, r, &in, maxKickoutBody); err != nil {
		return err
	}
	g, ok := checkedGame(r.Context())
	if !ok { // the route is under /games/{game}: liveGame guards it
		return errors.New("create kick-out: the game was not read by the live-game check")
	}
	st, err := s.Kickouts.CreateAndWait(r.Context(), g, in, wait)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/games/"+g.ID+"/kickouts/"+st.ID.String())
	return writeJSON(w, http.StatusCreated, st)
}

// getKickout answers a kick-out's per-player status, at once or, with ?wait=,
// once it is settled or the wait ended.
func (s *Server) getKickout(w http.ResponseWriter, r *http.Request) error {
	wait, err := waitQuery(r)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return kickouts.ErrNotFound
	}
	game := chi.URLParam(r, "game")
	var st kickouts.Status
	if wait > 0 {
		st, err = s.Kickouts.Wait(r.Context(), game, id, wait)
	} else {
		st, err = s.Kickouts.Status(r.Context(), game, id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// waitQuery reads ?wait=, a Go duration such as 5s or 1500ms, 0 to
// kickouts.MaxWait; absent is 0: answer at once.
func waitQuery(r *http.Request) (time.Duration, error) {
	values, ok := r.URL.Query()["wait"]
	if !ok {
		return 0, nil
	}
	if len(values) == 1 {
		if d, err := time.ParseDuration(values[0]); err == nil && d >= 0 && d <= kickouts.MaxWait {
			return d, nil
		}
	}
	return 0, fielderr.New("wait", "must be given once, as a duration from 0s to %s such as 5s or 1500ms", kickouts.MaxWait)
}
