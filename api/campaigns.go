package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/heraldpush/herald/auth"
	"github.com/heraldpush/herald/campaigns"
	"github.com/heraldpush/herald/dispatch"
	"github.com/heraldpush/herald/fielderr"
	"github.com/heraldpush/herald/protocol"
	"github.com/heraldpush/herald/valid"
)

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) error {
	dryRun, err := boolQuery(r, "dry_run")
	if err != nil {
		return err
	}
	var in campaigns.Input
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := mayWrite(r, in.Kind); err != nil {
		return err
	}
	if dryRun {
		preview, err := s.Campaigns.Preview(r.Context(), chi.URLParam(r, "game"), in)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]any{
			"campaign": preview.Campaign, "plan": s.planBody(preview.Campaign.GameID, preview.Plan), "envelope": preview.Envelope,
			"confirm_required": preview.Confirm.Required, "confirm_audience": preview.Confirm.Audience,
		})
	}
	c, err := s.Campaigns.Create(r.Context(), chi.URLParam(r, "game"), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/games/"+c.GameID+"/campaigns/"+c.ID.String())
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) error {
	limit, after, err := idPageParams(r)
	if err != nil {
		return err
	}
	archived, err := boolQuery(r, "archived")
	if err != nil {
		return err
	}
	f := campaigns.Filter{Status: campaigns.Status(r.URL.Query().Get("status")), Kind: protocol.Kind(r.URL.Query().Get("kind")),
		Archived: archived}
	var errs fielderr.List
	switch f.Status {
	case "", campaigns.StatusScheduled, campaigns.StatusPaused, campaigns.StatusLive, campaigns.StatusCompleted,
		campaigns.StatusMissed, campaigns.StatusExpired, campaigns.StatusCanceled:
	default:
		errs.Add("status", "must be scheduled, paused, live, completed, missed, expired or canceled")
	}
	switch f.Kind {
	case "", protocol.KindMarquee, protocol.KindNotice, protocol.KindAd:
	default:
		errs.Add("kind", "must be marquee, notice or ad")
	}
	if len(errs) > 0 {
		return errs
	}
	game := chi.URLParam(r, "game") // liveGame answered 404 or 410 already
	list, more, err := s.Campaigns.List(r.Context(), game, f, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(list, more, func(c campaigns.Campaign) string { return c.ID.String() }))
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaign(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) listDispatches(w http.ResponseWriter, r *http.Request) error {
	c, err := s.campaign(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page[dispatch.Dispatch]{Items: c.Dispatches})
}

// updateCampaignRequest holds what a PATCH may change; absent fields stay.
type updateCampaignRequest struct {
	Name         *string             `json:"name"`
	Audience     *campaigns.Audience `json:"audience"`
	Content      *json.RawMessage    `json:"content"`
	Priority     *int                `json:"priority"`
	StartsAt     *valid.Time         `json:"starts_at"`
	ExpiresAt    *valid.Time         `json:"expires_at"`
	TTL          *string             `json:"ttl"`
	MisfireGrace *string             `json:"misfire_grace"`
	Schedule     *campaigns.Schedule `json:"schedule"`
	// ConfirmAudience confirms a new audience, as on create.
	ConfirmAudience *int64 `json:"confirm_audience"`
}

func (s *Server) updateCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	var req updateCampaignRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.mayWriteCampaign(r); err != nil {
		return err
	}
	c, err := s.Campaigns.Update(r.Context(), chi.URLParam(r, "game"), id, func(in *campaigns.Input) {
		if req.Name != nil {
			in.Name = *req.Name
		}
		if req.Audience != nil {
			in.Audience = req.Audience
		}
		if req.Content != nil {
			in.Content = []byte(*req.Content)
		}
		if req.Priority != nil {
			in.Priority = req.Priority
		}
		if req.StartsAt != nil {
			in.StartsAt = req.StartsAt
		}
		if req.Schedule != nil {
			in.Schedule = req.Schedule
			if req.Schedule.Recurring() {
				in.ExpiresAt = nil // a recurring campaign's sends expire ttl after their fire
			}
		}
		if req.ExpiresAt != nil { // expires_at and ttl replace each other
			in.ExpiresAt, in.TTL = req.ExpiresAt, nil
		}
		if req.TTL != nil {
			in.TTL, in.ExpiresAt = req.TTL, nil
		}
		if req.MisfireGrace != nil {
			in.MisfireGrace = req.MisfireGrace
		}
		in.ConfirmAudience = req.ConfirmAudience
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) cancelCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	if err := s.mayWriteCampaign(r); err != nil {
		return err
	}
	c, err := s.Campaigns.Cancel(r.Context(), chi.URLParam(r, "game"), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) pauseCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.setPaused(w, r, s.Campaigns.Pause)
}

func (s *Server) resumeCampaign(w http.ResponseWriter, r *http.Request) error {
	return s.setPaused(w, r, s.Campaigns.Resume)
}

// setPaused pauses or resumes the campaign of the path with set.
func (s *Server) setPaused(w http.ResponseWriter, r *http.Request,
	set func(context.Context, string, uuid.UUID) (campaigns.Campaign, error)) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	if err := s.mayWriteCampaign(r); err != nil {
		return err
	}
	c, err := set(r.Context(), chi.URLParam(r, "game"), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// deleteCampaign archives a finished campaign: see campaigns.Store.Delete.
func (s *Server) deleteCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	if err := s.mayWriteCampaign(r); err != nil {
		return err
	}
	if err := s.Campaigns.Delete(r.Context(), chi.URLParam(r, "game"), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type testRequest struct {
	Players []string `json:"players"`
}

// testCampaign sends the campaign's envelope, marked as a test, to a few
// players' own topics: see campaigns.Store.SendTest.
func (s *Server) testCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	var req testRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := s.mayWriteCampaign(r); err != nil {
		return err
	}
	if s.Publisher == nil || !s.Broker.Connected() {
		return &httpError{status: http.StatusServiceUnavailable, detail: "the broker is not connected; nothing was sent, try again later"}
	}
	sent, err := s.Campaigns.SendTest(r.Context(), chi.URLParam(r, "game"), id, req.Players, s.Publisher, s.TopicPrefix)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sent)
}

// campaignID reads the {id} path parameter; an id that cannot be a campaign's is
// simply not found.
func campaignID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.Nil, campaigns.ErrNotFound
	}
	return id, nil
}

// mayWrite refuses a campaign of a kind the caller's role may not send.
func mayWrite(r *http.Request, kind protocol.Kind) error {
	role := callerKey(r.Context()).Role
	if kind == protocol.KindMarquee && !role.Can(auth.PermMarquee) {
		return forbidden(role, auth.PermMarquee)
	}
	return nil
}

// mayWriteCampaign is mayWrite for the stored campaign of the path: a marketing
// key may not change or recall a marquee either.
func (s *Server) mayWriteCampaign(r *http.Request) error {
	c, err := s.campaign(r)
	if err != nil {
		return err
	}
	return mayWrite(r, c.Kind)
}

// campaign loads the campaign named by the path ({game}, {id}).
func (s *Server) campaign(r *http.Request) (campaigns.Campaign, error) {
	id, err := campaignID(r)
	if err != nil {
		return campaigns.Campaign{}, err
	}
	return s.Campaigns.Get(r.Context(), chi.URLParam(r, "game"), id)
}
