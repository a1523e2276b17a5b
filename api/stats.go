package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/receipts"
)

// errNoDispatch answers a dispatch id that is not one of the campaign's.
var errNoDispatch = &httpError{status: http.StatusNotFound, detail: "no such dispatch of this campaign"}

// publishes are the broker-level counters of one or more dispatches.
type publishes struct {
	Targets int64 `json:"targets"`
	Acked   int64 `json:"acked"`
	Retried int64 `json:"retried"`
	Failed  int64 `json:"failed"`
}

func (p *publishes) add(d dispatch.Dispatch) {
	p.Targets += d.Topics
	p.Acked += d.Acked
	p.Retried += d.Retried
	p.Failed += d.Failed
}

// statsBody is what the stats routes answer: a campaign's over all its
// dispatches, or one dispatch's.
type statsBody struct {
	Campaign   uuid.UUID  `json:"campaign"`
	Dispatch   *uuid.UUID `json:"dispatch,omitempty"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
	Dispatches int        `json:"dispatches"`
	Publishes  publishes  `json:"publishes"`
	receipts.Stats
}

func (s *Server) campaignStats(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaign(r)
	if err != nil {
		return err
	}
	return s.writeStats(w, r, statsBody{Campaign: c.ID}, c.Dispatches)
}

func (s *Server) dispatchStats(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaign(r)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(chi.URLParam(r, "dispatch"))
	if err != nil {
		return errNoDispatch
	}
	for _, d := range c.Dispatches {
		if d.ID == id {
			return s.writeStats(w, r, statsBody{Campaign: c.ID, Dispatch: &d.ID, SentAt: d.SentAt}, []dispatch.Dispatch{d})
		}
	}
	return errNoDispatch
}

// writeStats completes body with the figures of ds and sends it.
func (s *Server) writeStats(w http.ResponseWriter, r *http.Request, body statsBody, ds []dispatch.Dispatch) error {
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		body.Publishes.add(d)
	}
	body.Dispatches = len(ds)
	st, err := s.Receipts.Stats(r.Context(), ids)
	if err != nil {
		return err
	}
	body.Stats = st
	return writeJSON(w, http.StatusOK, body)
}
